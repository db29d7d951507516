// `kernelchaos doctor`'s judgement: from the observed KernelFacts (kernel-facts.ts), which failtypes
// can be injected here, through which hook, and if not, exactly why and what to change. Pure.
import { SITE_CONFIG, SITES, type FailType } from './sites.js';
import type { ConfigKey, KernelFacts, SiteName } from './kernel-facts.js';
import type { ProbeOutcome } from './kernel-facts-probe.js';

export type Verdict = 'works' | 'kprobe-only' | 'fails';
export type Hook = 'fmod_ret' | 'kprobe';

export interface FailtypeDiagnosis {
  failtype: FailType;
  site: SiteName;
  verdict: Verdict;
  /** The hook the engine will use (auto mode), null when none works. */
  via: Hook | null;
  /** Why it cannot work (empty when it works). */
  problems: string[];
  /** What to change, one line each, matching the problems. */
  remedies: string[];
  /** Caveats that do not stop injection. */
  warnings: string[];
}

export interface Diagnosis {
  failtypes: [FailtypeDiagnosis, FailtypeDiagnosis, FailtypeDiagnosis];
  overall: { verdict: 'all-work' | 'some-work' | 'none-work'; usable: FailType[]; summary: string };
}

/** A reason a hook cannot be used, with the remedy that removes it. */
interface Blocker { problem: string; remedy: string }

const MIN_FMOD_RET: [number, number] = [5, 7];
const MIN_BPF_CAPS: [number, number] = [5, 8];

function atLeast(v: [number, number] | null, min: [number, number]): boolean | null {
  if (v === null) return null;
  return v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]);
}

/** A config option's state: true/false when the config is known, null when not. */
function configHas(facts: KernelFacts, key: ConfigKey): boolean | null {
  if (!facts.config.known) return null;
  const v = facts.config.options[key];
  return v === 'y' || v === 'm';
}

const CONFIG_OF: Record<SiteName, (typeof SITE_CONFIG)[FailType]> = {
  should_failslab: SITE_CONFIG[0],
  should_fail_alloc_page: SITE_CONFIG[1],
  should_fail_bio: SITE_CONFIG[2],
};

/** What works without a kernel change when failtype 0/1 has no site (engine.ts planForm). */
export const SYSCALL_ENTRY_REMEDY =
  'no kernel change: make the call chain\'s outermost frame a syscall (e.g. __x64_sys_mount); kernelchaos then fails that syscall with ENOMEM at entry (the syscall-entry form, on unless --no-syscall-entry)';

/** Blockers shared by every failtype and hook: no BPF, no privilege, no cgroup v2, no toolchain. */
function commonBlockers(facts: KernelFacts): Blocker[] {
  const out: Blocker[] = [];
  if (configHas(facts, 'CONFIG_BPF_SYSCALL') === false) {
    out.push({ problem: 'kernel built without CONFIG_BPF_SYSCALL: no BPF at all', remedy: 'use a kernel built with CONFIG_BPF_SYSCALL=y' });
  }
  const caps = facts.capabilities;
  if (caps !== null) {
    const split = atLeast(facts.version, MIN_BPF_CAPS) !== false;
    const enough = caps.sysAdmin || (split && caps.bpf && caps.perfmon);
    if (!enough) {
      const missing = split ? ['CAP_BPF', 'CAP_PERFMON'].filter((c) => (c === 'CAP_BPF' ? !caps.bpf : !caps.perfmon)) : ['CAP_SYS_ADMIN'];
      out.push({
        problem: `this process lacks ${missing.join(' and ')} (CapEff ${caps.effectiveHex}): the kernel refuses to load tracing programs`,
        remedy: split
          ? 'run as root, or grant CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); in Kubernetes the companion DaemonSet must be privileged'
          : `run as root or with CAP_SYS_ADMIN (kernel ${facts.release ?? '?'} predates CAP_BPF/CAP_PERFMON)`,
      });
    }
  }
  if (!facts.cgroup.target.ok) {
    out.push({
      problem: `${facts.cgroup.target.reason}: targets are cgroups, so no task can be targeted`,
      remedy: 'boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1), or mount a v1 controller hierarchy such as pids',
    });
  }
  const { clang, bpftool, libbpf } = facts.toolchain;
  if (!clang.found && clang.reason !== 'not checked') {
    out.push({ problem: `clang is missing (${clang.reason}): the fault program cannot be compiled`, remedy: 'install clang and llvm (apt-get install clang llvm)' });
  }
  if (!bpftool.found && bpftool.reason !== 'not checked') {
    out.push({ problem: `bpftool is missing (${bpftool.reason}): vmlinux.h cannot be made from the kernel BTF`, remedy: 'install bpftool (apt-get install bpftool)' });
  }
  if (!libbpf.found && libbpf.reason !== 'not checked') {
    out.push({ problem: `libbpf is missing (${libbpf.reason}): programs cannot be loaded`, remedy: 'install libbpf 1.x (apt-get install libbpf1)' });
  }
  return out;
}

/** Whether the site exists as a probe-able symbol; clones are reported because probes on the name miss them. */
function siteSymbolBlockers(facts: KernelFacts, site: SiteName): Blocker[] {
  if (!facts.kallsyms.readable) return [];
  const sym = facts.kallsyms.sites[site];
  const option = CONFIG_OF[site];
  if (sym.plain) return [];
  const v = facts.version;
  if (sym.clones.length > 0) {
    return [{
      problem: `${site} exists only as the compiler clone${sym.clones.length > 1 ? 's' : ''} ${sym.clones.join(', ')}: a hook on ${site} never sees the calls, and clones are not on the error-injection list`,
      remedy: `use a kernel build where ${site} is not cloned (\`grep ${site} /proc/kallsyms\` shows the plain name), e.g. a distribution LTS kernel or one built with ${option}=y`,
    }];
  }
  const gatedSince611 = site !== 'should_fail_bio' && atLeast(v, [6, 11]) === true;
  return [{
    problem: gatedSince611
      ? `${site} is not in this kernel: from 6.11 it is only built with ${option}=y${configHas(facts, option) === false ? `, which this kernel (${facts.release ?? '?'}) lacks` : ''}`
      : `${site} is not in /proc/kallsyms`,
    // Only what this kernel lacks: CONFIG_FAULT_INJECTION is named when it is not already on.
    remedy: gatedSince611
      ? `use a kernel built with ${configHas(facts, 'CONFIG_FAULT_INJECTION') === true ? '' : 'CONFIG_FAULT_INJECTION=y and '}${option}=y`
      : `use a kernel that has ${site}`,
  }];
}

/** Whether the site is on the error-injection list (both hooks need it). */
function errorInjectionBlockers(facts: KernelFacts, site: SiteName): Blocker[] {
  const remedy = 'use a kernel built with CONFIG_FUNCTION_ERROR_INJECTION=y';
  if (facts.errorInjection.readable) {
    if (facts.errorInjection.listed[site] !== undefined) return [];
    return [{ problem: `${site} is not on the error-injection list (/sys/kernel/debug/error_injection/list)`, remedy }];
  }
  if (configHas(facts, 'CONFIG_FUNCTION_ERROR_INJECTION') === false) {
    return [{ problem: 'kernel built without CONFIG_FUNCTION_ERROR_INJECTION: no function may have its result overridden', remedy }];
  }
  return [];
}

function probeBlocker(hook: Hook, site: SiteName, outcome: ProbeOutcome | undefined, facts: KernelFacts): Blocker | 'attached' | null {
  if (outcome === undefined || outcome.status === 'not-run') return null;
  if (outcome.status === 'attached') return 'attached';
  const what = hook === 'fmod_ret' ? 'an fmod_ret test program' : 'a kprobe test program calling bpf_override_return';
  const log = outcome.verifierLog ? ` (verifier: ${outcome.verifierLog.split('\n').find((l) => /cannot|unknown|invalid|not /i.test(l)) ?? outcome.verifierLog.split('\n')[0]})` : '';
  const problem = `the kernel refused to ${outcome.step} ${what} on ${site}: ${outcome.errno} (${outcome.message})${log}`;
  let remedy: string;
  if (outcome.errno === 'EPERM') {
    const lock = facts.lockdown.mode !== null && facts.lockdown.mode !== 'none' ? `kernel lockdown is '${facts.lockdown.mode}'; ` : '';
    remedy = `${lock}the kernel or a security module (lockdown, a BPF LSM, a seccomp profile) denies it despite the capabilities: boot with lockdown=none / run outside the sandbox that forbids bpf()`;
  } else if (hook === 'kprobe' && outcome.step === 'load') {
    remedy = 'use a kernel built with CONFIG_BPF_KPROBE_OVERRIDE=y';
  } else if (outcome.errno === 'ENOENT') {
    remedy = `use a kernel that has ${site}`;
  } else {
    remedy = 'use a kernel built with CONFIG_FUNCTION_ERROR_INJECTION=y whose error-injection list includes the site';
  }
  return { problem, remedy };
}

/** `generic`: only what does not depend on the site itself (used when the site is absent). */
function fmodRetBlockers(facts: KernelFacts, site: SiteName, generic = false): Blocker[] {
  const probe = generic ? null : probeBlocker('fmod_ret', site, facts.probes?.fmodRet[site], facts);
  if (probe === 'attached') return [];
  const out: Blocker[] = [];
  if (atLeast(facts.version, MIN_FMOD_RET) === false) {
    out.push({ problem: `kernel ${facts.release ?? '?'} predates fmod_ret (5.7)`, remedy: 'use a kernel >= 5.7 for BPF trampolines (or rely on kprobes)' });
  }
  if (!facts.btf.vmlinux) {
    out.push({ problem: `no kernel BTF (${facts.btf.reason})`, remedy: 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y' });
  } else if (!generic && facts.btf.functions[site] === undefined) {
    out.push({ problem: `${site} is not a function in the kernel BTF, so no trampoline can attach to it`, remedy: `use a kernel whose BTF describes ${site}` });
  }
  if (configHas(facts, 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS') === false) {
    out.push({ problem: 'kernel built without CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS: no BPF trampolines', remedy: 'use a kernel with BPF trampolines (x86_64, or arm64 >= 6.0)' });
  }
  if (probe !== null) out.push(probe);
  return out;
}

function kprobeBlockers(facts: KernelFacts, site: SiteName, generic = false): Blocker[] {
  const probe = generic ? null : probeBlocker('kprobe', site, facts.probes?.kprobeOverride[site], facts);
  if (probe === 'attached') return [];
  const out: Blocker[] = [];
  const kprobesConfig = configHas(facts, 'CONFIG_KPROBES');
  if (kprobesConfig === false) {
    out.push({ problem: `kernel built without CONFIG_KPROBES: no kprobes at all (no kprobe PMU, no kprobe_events)`, remedy: 'use a kernel built with CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y' });
  } else if (facts.kprobes.pmuType === null && kprobesConfig === null) {
    out.push({ problem: 'no kprobe PMU in /sys/bus/event_source/devices: the kernel offers no kprobes', remedy: 'use a kernel built with CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y' });
  } else if (facts.kprobes.pmuType === null && configHas(facts, 'CONFIG_KPROBE_EVENTS') === false) {
    out.push({ problem: 'kernel built without CONFIG_KPROBE_EVENTS: BPF cannot attach to kprobes', remedy: 'use a kernel built with CONFIG_KPROBE_EVENTS=y' });
  }
  if (configHas(facts, 'CONFIG_BPF_KPROBE_OVERRIDE') === false) {
    out.push({ problem: 'kernel built without CONFIG_BPF_KPROBE_OVERRIDE: kprobe programs cannot call bpf_override_return', remedy: 'use a kernel built with CONFIG_BPF_KPROBE_OVERRIDE=y' });
  }
  if (facts.lockdown.mode === 'integrity' || facts.lockdown.mode === 'confidentiality') {
    out.push({
      problem: `kernel lockdown is '${facts.lockdown.mode}' (from ${facts.lockdown.source}): kprobes are forbidden`,
      remedy: 'boot with lockdown=none (or disable Secure Boot enforcement of lockdown)',
    });
  }
  if (probe !== null) out.push(probe);
  return out;
}

function dedupe(items: string[]): string[] {
  return [...new Set(items)];
}

function diagnoseFailtype(facts: KernelFacts, failtype: FailType, common: Blocker[]): FailtypeDiagnosis {
  const site = SITES[failtype].funcname;
  const symbol = siteSymbolBlockers(facts, site);
  if (symbol.length > 0) {
    // The site's own findings (error-injection list, BTF entry, probes) follow from its absence:
    // remedy that and what the kernel lacks in general, the change-nothing option first when the
    // kernel can fail a syscall instead.
    const injection = facts.errorInjection.readable ? [] : errorInjectionBlockers(facts, site);
    const fmodGeneric = fmodRetBlockers(facts, site, true);
    const kprobeGeneric = kprobeBlockers(facts, site, true);
    const hookable = fmodGeneric.length === 0 || kprobeGeneric.length === 0;
    const first = failtype !== 2 && common.length === 0 && injection.length === 0 && hookable ? [SYSCALL_ENTRY_REMEDY] : [];
    const all = [...common, ...symbol, ...injection];
    const problems = [...all.map((b) => b.problem), ...fmodGeneric.map((b) => `fmod_ret: ${b.problem}`), ...kprobeGeneric.map((b) => `kprobe: ${b.problem}`)];
    return {
      failtype, site, verdict: 'fails', via: null,
      problems: dedupe(problems),
      remedies: dedupe([...first, ...[...all, ...fmodGeneric, ...kprobeGeneric].map((b) => b.remedy)]),
      warnings: [],
    };
  }
  const shared = errorInjectionBlockers(facts, site);
  const fmod = fmodRetBlockers(facts, site);
  const kprobe = kprobeBlockers(facts, site);
  // A successful live probe outranks anything inferred from files.
  const fmodLive = facts.probes?.fmodRet[site]?.status === 'attached';
  const kprobeLive = facts.probes?.kprobeOverride[site]?.status === 'attached';
  const fmodOk = common.length === 0 && fmod.length === 0 && (fmodLive || shared.length === 0);
  const kprobeOk = common.length === 0 && kprobe.length === 0 && (kprobeLive || shared.length === 0);

  const warnings: string[] = [];
  if (facts.cgroup.target.ok && facts.cgroup.target.hierarchy.kind === 'hybrid') {
    warnings.push(
      `hybrid cgroups: targets are v2 cgroups in the unified hierarchy at ${facts.cgroup.target.hierarchy.root}; containers are there only with runc >= 1.0 (or the systemd driver), older runtimes leave them at its root`,
    );
  }
  if (facts.lockdown.mode === 'confidentiality') {
    warnings.push("lockdown 'confidentiality' forbids bpf_probe_read_kernel: predicates that read kernel memory (member access, STRCMP) are refused by the verifier");
  }
  if (facts.lockdown.mode === null) warnings.push(`lockdown mode unknown: ${facts.lockdown.reason}`);
  if (facts.kallsyms.readable && facts.kallsyms.sites[site].plain && facts.kallsyms.sites[site].clones.length > 0) {
    warnings.push(`${site} also has the clone${facts.kallsyms.sites[site].clones.length > 1 ? 's' : ''} ${facts.kallsyms.sites[site].clones.join(', ')}: calls that reach a clone are not faulted`);
  }
  if (!facts.errorInjection.readable && (fmodOk || kprobeOk) && !(fmodLive || kprobeLive)) {
    warnings.push(`could not read the error-injection list (${facts.errorInjection.reason}); assuming ${site} is on it`);
  }

  if (fmodOk) {
    if (!kprobeOk) warnings.push('kprobes are unavailable: every call-chain frame must be a function in the kernel BTF (fentry/fexit)');
    return { failtype, site, verdict: 'works', via: 'fmod_ret', problems: [], remedies: [], warnings };
  }
  if (kprobeOk) {
    return { failtype, site, verdict: 'kprobe-only', via: 'kprobe', problems: fmod.map((b) => `fmod_ret: ${b.problem}`), remedies: dedupe(fmod.map((b) => b.remedy)), warnings };
  }
  const all = [...common, ...shared];
  const problems = [
    ...all.map((b) => b.problem),
    ...fmod.map((b) => `fmod_ret: ${b.problem}`),
    ...kprobe.map((b) => `kprobe: ${b.problem}`),
  ];
  return {
    failtype, site, verdict: 'fails', via: null,
    problems: dedupe(problems),
    remedies: dedupe([...all, ...fmod, ...kprobe].map((b) => b.remedy)),
    warnings,
  };
}

export function diagnose(facts: KernelFacts): Diagnosis {
  const common = commonBlockers(facts);
  const failtypes: Diagnosis['failtypes'] = [
    diagnoseFailtype(facts, 0, common),
    diagnoseFailtype(facts, 1, common),
    diagnoseFailtype(facts, 2, common),
  ];
  const usable = failtypes.filter((f) => f.verdict !== 'fails').map((f) => f.failtype);
  const verdict = usable.length === 3 ? 'all-work' : usable.length > 0 ? 'some-work' : 'none-work';
  const summary = verdict === 'all-work'
    ? 'all three failtypes can be injected on this kernel'
    : verdict === 'some-work'
      ? `only failtype ${usable.join(', ')} can be injected on this kernel`
      : 'no failtype can be injected on this kernel';
  return { failtypes, overall: { verdict, usable, summary } };
}

/** A problem with one call-chain frame on this kernel, with the manifest field to change. */
export interface FrameProblem { path: string; message: string }

/**
 * Whether each call-chain frame can be hooked here, given how the site will be hooked (`via`).
 * Needs facts gathered with `functions` naming the frames; frames not gathered are skipped.
 */
export function diagnoseChain(facts: KernelFacts, failtype: FailType, chain: readonly string[], via: Hook | null): { problems: FrameProblem[]; warnings: string[] } {
  const problems: FrameProblem[] = [];
  const warnings: string[] = [];
  const site = SITES[failtype].funcname;
  const kprobesUsable = kprobeBlockers(facts, site).length === 0;
  chain.forEach((name, i) => {
    const path = `spec.failKernRequest.callchain[${i}].funcname`;
    const info = facts.chainFunctions?.[name];
    if (!info) return;
    if (info.symbol !== null && !info.symbol.plain) {
      problems.push({
        path,
        message: info.symbol.clones.length > 0
          ? `${name} exists on this kernel only as the compiler clone${info.symbol.clones.length > 1 ? 's' : ''} ${info.symbol.clones.join(', ')}: a hook on ${name} never fires; list a caller of it instead`
          : `${name} is not a function of this kernel${facts.release ? ` (${facts.release})` : ''}: not in /proc/kallsyms; check the spelling, or whether it was renamed or inlined`,
      });
      return;
    }
    if (info.symbol !== null && info.symbol.clones.length > 0) {
      warnings.push(`${path}: ${name} also has the clone${info.symbol.clones.length > 1 ? 's' : ''} ${info.symbol.clones.join(', ')}; calls that go through a clone do not count as entering the frame`);
    }
    if (via === 'fmod_ret' && facts.btf.vmlinux && info.btfId === null) {
      if (kprobesUsable) warnings.push(`${path}: ${name} has no BTF entry (static or inlined), so this fault is hooked with kprobes instead of trampolines`);
      else problems.push({ path, message: `${name} has no BTF entry (static or inlined) and this kernel has no usable kprobes, so the frame cannot be hooked` });
    }
  });
  return { problems, warnings };
}

/** A problem with the remedy that removes it, and which hook it blocks ('both': the failtype as a whole). */
export interface PairedBlocker { problem: string; remedy: string; blocks: 'both' | Hook }

/**
 * The blockers behind one failtype's diagnosis, each with its own remedy (diagnose() lists problems
 * and remedies apart): for presenting them side by side. Empty when the failtype works; with
 * kprobes working, only what keeps trampolines out.
 */
export function pairedBlockers(facts: KernelFacts, diagnosis: FailtypeDiagnosis): PairedBlocker[] {
  if (diagnosis.verdict === 'works') return [];
  const site = diagnosis.site;
  if (siteSymbolBlockers(facts, site).length > 0) {
    // The site is absent: everything else follows from that. Its problem once, then each remedy
    // the diagnosis gives, in its order (the change-nothing syscall-entry option first).
    return diagnosis.remedies.map((remedy, i) => ({ problem: i === 0 ? diagnosis.problems[0] ?? '' : '', remedy, blocks: 'both' as const }));
  }
  const tag = (blocks: PairedBlocker['blocks']) => (b: Blocker): PairedBlocker => ({ ...b, blocks });
  const fmod = fmodRetBlockers(facts, site).map(tag('fmod_ret'));
  if (diagnosis.verdict === 'kprobe-only') return fmod;
  const both = [...commonBlockers(facts), ...siteSymbolBlockers(facts, site), ...errorInjectionBlockers(facts, site)].map(tag('both'));
  return [...both, ...fmod, ...kprobeBlockers(facts, site).map(tag('kprobe'))];
}
