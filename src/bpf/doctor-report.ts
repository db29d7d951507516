// Turns KernelFacts and their Diagnosis into the rows and text `kernelchaos doctor` prints. Pure.
import { describeTargetHierarchy } from './cgroup-hierarchy.js';
import type { KernelFacts, SiteName } from './kernel-facts.js';
import { SITE_NAMES } from './kernel-facts.js';
import type { ProbeOutcome } from './kernel-facts-probe.js';
import { ARCH_TESTED, bpfTargetArch } from './compile.js';
import { pairedBlockers, type Diagnosis, type FailtypeDiagnosis, type PairedBlocker } from './doctor.js';
import type { FailType } from './sites.js';

export type CheckStatus = 'ok' | 'warn' | 'missing' | 'info';
export interface CheckRow { check: string; status: CheckStatus; detail: string }

function cfg(facts: KernelFacts, key: string): string {
  if (!facts.config.known) return '?';
  return (facts.config.options as Record<string, string | undefined>)[key] ?? 'not set';
}

function probeRow(check: string, outcome: ProbeOutcome): CheckRow {
  switch (outcome.status) {
    case 'attached': return { check, status: 'ok', detail: 'a test program loaded and attached' };
    case 'refused': return { check, status: 'missing', detail: `${outcome.step} refused: ${outcome.errno} (${outcome.message})${outcome.verifierLog ? `; verifier: ${outcome.verifierLog.replace(/\n/g, ' | ')}` : ''}` };
    case 'not-run': return { check, status: 'info', detail: `not run: ${outcome.reason}` };
  }
}

function siteRow(facts: KernelFacts, site: SiteName): CheckRow {
  const parts: string[] = [];
  let status: CheckStatus = 'ok';
  if (facts.kallsyms.readable) {
    const s = facts.kallsyms.sites[site];
    if (s.plain) parts.push('in kallsyms');
    else { parts.push('NOT in kallsyms'); status = 'missing'; }
    if (s.clones.length > 0) { parts.push(`clones: ${s.clones.join(', ')}`); if (status === 'ok') status = 'warn'; }
  } else parts.push(`kallsyms unreadable (${facts.kallsyms.reason})`);
  if (facts.btf.vmlinux) parts.push(facts.btf.functions[site] !== undefined ? `BTF id ${facts.btf.functions[site]}` : 'not in BTF');
  if (facts.errorInjection.readable) {
    const t = facts.errorInjection.listed[site];
    parts.push(t !== undefined ? `error-injectable (${t})` : 'NOT on error-injection list');
    if (t === undefined) status = 'missing';
  }
  return { check: `site ${site}`, status, detail: parts.join('; ') };
}

export function doctorChecks(facts: KernelFacts): CheckRow[] {
  const rows: CheckRow[] = [];
  rows.push({ check: 'kernel', status: facts.release ? 'info' : 'warn', detail: `${facts.release ?? 'unknown release'} (${facts.arch})` });
  const target = bpfTargetArch(facts.arch);
  rows.push(target
    ? { check: 'architecture', status: target === 'x86' ? 'ok' : 'warn', detail: `${facts.arch}: programs built with __TARGET_ARCH_${target}; ${ARCH_TESTED[target] ?? 'untested'}` }
    : { check: 'architecture', status: 'missing', detail: `${facts.arch}: kernelchaos cannot build BPF programs for this architecture` });
  rows.push(facts.config.known
    ? { check: 'kernel config', status: 'info', detail: facts.config.source }
    : { check: 'kernel config', status: 'warn', detail: facts.config.reason });
  rows.push(facts.btf.vmlinux
    ? { check: 'BTF', status: 'ok', detail: '/sys/kernel/btf/vmlinux' }
    : { check: 'BTF', status: 'missing', detail: facts.btf.reason });
  const kp = facts.kprobes;
  const kprobesOn = kp.pmuType !== null;
  rows.push({
    check: 'kprobes',
    status: kprobesOn ? 'ok' : 'missing',
    detail: [
      `CONFIG_KPROBES=${cfg(facts, 'CONFIG_KPROBES')}`,
      kprobesOn ? `kprobe PMU type ${kp.pmuType}` : 'no kprobe PMU',
      kp.tracefsKprobeEvents === null ? 'tracefs not mounted' : kp.tracefsKprobeEvents ? 'kprobe_events present' : 'no kprobe_events in tracefs',
      kp.debugfsKprobes === null ? 'debugfs not mounted' : kp.debugfsKprobes ? 'debugfs kprobes/ present' : 'no debugfs kprobes/',
    ].join('; '),
  });
  const override = cfg(facts, 'CONFIG_BPF_KPROBE_OVERRIDE');
  rows.push({ check: 'bpf_override_return', status: override === 'y' ? 'ok' : override === '?' ? 'info' : 'missing', detail: `CONFIG_BPF_KPROBE_OVERRIDE=${override}` });
  const fei = cfg(facts, 'CONFIG_FUNCTION_ERROR_INJECTION');
  rows.push({
    check: 'error injection',
    status: facts.errorInjection.readable ? 'ok' : fei === 'not set' ? 'missing' : 'warn',
    detail: `CONFIG_FUNCTION_ERROR_INJECTION=${fei}; ${facts.errorInjection.readable ? 'list readable' : `list: ${facts.errorInjection.reason}`}`,
  });
  for (const site of SITE_NAMES) rows.push(siteRow(facts, site));
  const trampolines = cfg(facts, 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS');
  rows.push({
    check: 'BPF trampolines',
    status: trampolines === 'not set' ? 'missing' : 'info',
    detail: `CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=${trampolines}; fmod_ret needs kernel >= 5.7`,
  });
  if (facts.probes) {
    for (const site of SITE_NAMES) rows.push(probeRow(`probe fmod_ret ${site}`, facts.probes.fmodRet[site]));
    for (const site of SITE_NAMES) rows.push(probeRow(`probe kprobe+override ${site}`, facts.probes.kprobeOverride[site]));
  } else {
    rows.push({ check: 'live probes', status: 'info', detail: 'not run' });
  }
  const cg = facts.cgroup;
  rows.push({
    check: 'cgroup targets',
    status: !cg.target.ok ? 'missing' : cg.target.hierarchy.kind === 'v2' ? 'ok' : 'warn',
    detail: cg.target.ok
      ? `by ${describeTargetHierarchy(cg.target.hierarchy)}; layout ${cg.layout}${cg.v2Mount ? `, cgroup2 at ${cg.v2Mount} (controllers: ${cg.controllers.join(' ') || 'none'})` : ''}`
      : cg.target.reason,
  });
  rows.push({
    check: 'bpffs',
    status: facts.mounts.bpffs.includes('/sys/fs/bpf') ? 'ok' : 'info',
    detail: facts.mounts.bpffs.length > 0 ? `mounted at ${facts.mounts.bpffs.join(', ')}` : 'not mounted at /sys/fs/bpf (not needed: links are owned by the process)',
  });
  rows.push(facts.lockdown.mode === null
    ? { check: 'lockdown', status: 'warn', detail: facts.lockdown.reason }
    : { check: 'lockdown', status: facts.lockdown.mode === 'none' ? 'ok' : 'warn', detail: `${facts.lockdown.mode} (from ${facts.lockdown.source})` });
  const caps = facts.capabilities;
  rows.push(caps === null
    ? { check: 'capabilities', status: 'warn', detail: 'CapEff not readable' }
    : {
        check: 'capabilities',
        status: caps.sysAdmin || (caps.bpf && caps.perfmon) ? 'ok' : 'missing',
        detail: `CapEff ${caps.effectiveHex}: CAP_BPF ${caps.bpf ? 'yes' : 'no'}, CAP_PERFMON ${caps.perfmon ? 'yes' : 'no'}, CAP_SYS_ADMIN ${caps.sysAdmin ? 'yes' : 'no'}`,
      });
  rows.push({ check: 'unprivileged_bpf_disabled', status: 'info', detail: facts.unprivilegedBpfDisabled === null ? 'unknown' : String(facts.unprivilegedBpfDisabled) });
  for (const [name, tool] of Object.entries(facts.toolchain)) {
    rows.push(tool.found
      ? { check: name, status: 'ok', detail: tool.version }
      : { check: name, status: tool.reason === 'not checked' ? 'info' : 'missing', detail: tool.reason });
  }
  return rows;
}

const VERDICT_TEXT = { works: 'WORKS', 'kprobe-only': 'WORKS (kprobe only)', fails: 'FAILS' } as const;

/** What to do first: the remedy needed by the most failtypes that cannot work, else null. */
export interface FirstStep { remedy: string; failtypes: FailType[] }

function pairsOf(facts: KernelFacts | undefined, f: FailtypeDiagnosis): PairedBlocker[] {
  if (facts) return pairedBlockers(facts, f);
  // Without the facts only the diagnosis' own lists are known: unpaired, in its order.
  return [...f.problems.map((problem, i) => ({ problem, remedy: f.remedies[i] ?? '', blocks: 'both' as const }))];
}

/**
 * The first thing to do: among the failtypes that fail, the remedy of a blocker that stops both
 * hooks (it must be fixed whichever hook is used) that most failtypes share; failing that, the
 * most shared trampoline remedy. Ties go to the earlier one.
 */
export function firstStep(facts: KernelFacts | undefined, diagnosis: Diagnosis): FirstStep | null {
  const failing = diagnosis.failtypes.filter((f) => f.verdict === 'fails');
  if (failing.length === 0) return null;
  for (const scope of ['both', 'fmod_ret', 'kprobe'] as const) {
    const count = new Map<string, FailType[]>();
    for (const f of failing) {
      for (const b of pairsOf(facts, f)) {
        if (b.blocks !== scope || b.remedy === '') continue;
        const list = count.get(b.remedy) ?? [];
        if (!list.includes(f.failtype)) count.set(b.remedy, [...list, f.failtype]);
      }
    }
    let best: FirstStep | null = null;
    for (const [remedy, failtypes] of count) if (!best || failtypes.length > best.failtypes.length) best = { remedy, failtypes };
    if (best) return best;
  }
  return null;
}

/** One failtype: its verdict, then each problem with its remedy right under it, the most shared first. */
function failtypeLines(facts: KernelFacts | undefined, f: FailtypeDiagnosis, weight: (remedy: string) => number): string[] {
  const out = [`failtype ${f.failtype} (${f.site}): ${VERDICT_TEXT[f.verdict]}${f.via ? ` via ${f.via}` : ''}`];
  const pairs = pairsOf(facts, f);
  const section = (blocks: PairedBlocker['blocks']): PairedBlocker[] =>
    pairs.filter((b) => b.blocks === blocks).map((b, i) => ({ b, i })).sort((x, y) => weight(y.b.remedy) - weight(x.b.remedy) || x.i - y.i).map((x) => x.b);
  const emit = (list: PairedBlocker[]): void => {
    list.forEach((b, i) => {
      if (b.problem !== '') out.push(`  problem: ${b.blocks === 'both' ? '' : `${b.blocks}: `}${b.problem}`);
      // Problems sharing a remedy get it once, after the last of them.
      if (b.remedy !== '' && list[i + 1]?.remedy !== b.remedy) out.push(`  remedy:  ${b.remedy}`);
    });
  };
  emit(section('both'));
  const fmod = section('fmod_ret');
  const kprobe = section('kprobe');
  if (fmod.length > 0 && kprobe.length > 0) out.push('  then either, for trampolines (preferred):');
  else if (fmod.length > 0 && f.verdict === 'kprobe-only') out.push('  works with kprobes; for trampolines (faster):');
  emit(fmod);
  if (fmod.length > 0 && kprobe.length > 0) out.push('  or, for kprobes:');
  emit(kprobe);
  if (!facts) for (const r of f.remedies.slice(f.problems.length)) out.push(`  remedy:  ${r}`);
  for (const w of f.warnings) out.push(`  note:    ${w}`);
  return out;
}

/**
 * The text report: a one-line verdict and the first thing to do on top, then per failtype each
 * problem next to its remedy, then every check. `facts` pairs problems with their remedies.
 */
export function formatDoctorReport(rows: CheckRow[], diagnosis: Diagnosis, facts?: KernelFacts): string {
  const first = firstStep(facts, diagnosis);
  const kernel = facts ? ` (kernel ${facts.release ?? 'unknown'}, ${facts.arch})` : '';
  const out: string[] = [`verdict: ${diagnosis.overall.summary}${kernel}`];
  if (first) out.push(`first:   ${first.remedy} (needed by failtype${first.failtypes.length > 1 ? 's' : ''} ${first.failtypes.join(', ')})`);
  const shared = new Map<string, number>();
  for (const f of diagnosis.failtypes) for (const b of pairsOf(facts, f)) shared.set(b.remedy, (shared.get(b.remedy) ?? 0) + 1);
  const weight = (remedy: string): number => (first && remedy === first.remedy ? 1000 : 0) + (shared.get(remedy) ?? 0);
  out.push('');
  for (const f of diagnosis.failtypes) out.push(...failtypeLines(facts, f, weight));
  const w1 = Math.max(5, ...rows.map((r) => r.check.length));
  const w2 = 7;
  out.push('', `${'CHECK'.padEnd(w1)}  ${'STATUS'.padEnd(w2)}  DETAIL`);
  for (const r of rows) out.push(`${r.check.padEnd(w1)}  ${r.status.padEnd(w2)}  ${r.detail}`);
  return out.join('\n');
}
