// The fault engine: parsed failKernRequest -> generated C -> compiled object -> loaded and attached
// programs that fail the site for the target cgroups only. Implements FaultEngine (types.ts).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errorInjectionList, KERNEL_BTF_PATH, kernelBtfFunctions, requestTypeProblems } from './btf.js';
import { scanSymbols } from './kernel-facts.js';
import { compileProgram, defaultCacheDir } from './compile.js';
import { ATTACH_ORDER, GenerateError, generateProgram, type GeneratedProgram, type ProgramMode } from './generate.js';
import { encodeSettings, LIMITS, MAP_LAYOUT, MAP_NAMES, SETTINGS_SECTION } from './layout.js';
import { BpfObject, possibleCpus, type BpfLink, type BpfMap } from './libbpf.js';
import { SITE_CONFIG, siteFor, type SiteForm } from './sites.js';
import { bpfTargetOf, withHierarchy } from './cgroup-hierarchy.js';
import type { ParsedFailKernRequest } from '../api/predicate/ast.js';
import { EngineError, type ArmedFault, type ArmOptions, type FaultCounters, type FaultEngine } from './types.js';

/** Most target cgroups one armed fault can hold (kc_targets max_entries). */
export const MAX_TARGET_CGROUPS = LIMITS.targets;

/** Names of the kretprobe return trampoline, newest first (rethook from 5.19 on x86). */
const KRETPROBE_TRAMPOLINES = ['arch_rethook_trampoline', '__kretprobe_trampoline', 'kretprobe_trampoline'];

/**
 * The kretprobe trampoline's address in kallsyms text, or 0n when absent or hidden (kptr_restrict
 * shows zeros to the unprivileged). Pure; exported for tests.
 */
export function kretprobeTrampolineFrom(kallsyms: string): bigint {
  const found = new Map<string, bigint>();
  for (const line of kallsyms.split('\n')) {
    const [address, , name] = line.split(/\s+/);
    if (address && name && KRETPROBE_TRAMPOLINES.includes(name) && !found.has(name)) found.set(name, BigInt(`0x${address}`));
  }
  for (const name of KRETPROBE_TRAMPOLINES) {
    const address = found.get(name);
    if (address) return address;
  }
  return 0n;
}

let trampolineMemo: bigint | undefined;
/** The running kernel's kretprobe trampoline (fixed for the boot: read once). */
function kretprobeTrampoline(kallsymsPath = '/proc/kallsyms'): bigint {
  if (trampolineMemo !== undefined) return trampolineMemo;
  try {
    trampolineMemo = kretprobeTrampolineFrom(readFileSync(kallsymsPath, 'utf8'));
  } catch {
    trampolineMemo = 0n;
  }
  return trampolineMemo;
}

export interface AttachModePlan {
  mode: ProgramMode;
  /** Why this mode: shown by `run` and `doctor`. */
  reason: string;
}

export interface KernelFacts {
  /** Which of the functions asked about have BTF entries, or null without BTF. */
  btfFunctions: ReadonlySet<string> | null;
  /** The error-injection list, or null when debugfs is not readable. */
  errorInjection: ReadonlySet<string> | null;
  /** The failtype's site is neither in BTF nor in /proc/kallsyms (absent: assume present). */
  siteMissing?: boolean;
  /**
   * Compiler clones of the site in /proc/kallsyms (`should_failslab.constprop.0` on 6.8-6.10):
   * callers reach the clone, which no hook on the plain name sees and which is not error-injectable.
   */
  siteClones?: string[];
}

/** Site facts from kallsyms text (null: unreadable) and the BTF functions. Pure; exported for tests. */
export function siteFactsFromKallsyms(kallsyms: string | null, site: string, btf: ReadonlySet<string> | null): Pick<KernelFacts, 'siteMissing' | 'siteClones'> {
  if (kallsyms === null) return { siteMissing: false, siteClones: [] };
  const presence = scanSymbols(kallsyms, [site])[site];
  const plain = (presence?.plain ?? false) || (btf?.has(site) ?? false);
  return { siteMissing: !plain, siteClones: presence?.clones ?? [] };
}

/** The running kernel's facts about the functions a request hooks. */
export function readKernelFacts(req: ParsedFailKernRequest, kallsymsPath = '/proc/kallsyms'): KernelFacts {
  const site = siteFor(req.failtype).funcname;
  const names = [site, ...req.callchain.map((f) => f.funcname)];
  const btfFunctions = kernelBtfFunctions(names);
  let kallsyms: string | null = null;
  try {
    // Read for every failtype 0/1 arm: a clone hides behind a plain name that BTF still lists.
    if (req.failtype !== 2 || !btfFunctions?.has(site)) kallsyms = readFileSync(kallsymsPath, 'utf8');
  } catch {
    kallsyms = null;
  }
  return { btfFunctions, errorInjection: errorInjectionList(), ...siteFactsFromKallsyms(kallsyms, site, btfFunctions) };
}

export interface FormPlan {
  form: SiteForm;
  /** How the fault is injected, in words for `run`, status and Events. */
  mechanism: string;
}

/**
 * The failtype's own site when the kernel has it; otherwise, for failtype 0/1 with a call chain
 * whose outermost frame is error-injectable, the syscall-entry form; otherwise an error naming
 * what is missing (the site, its config option) and what would work.
 */
export function planForm(req: ParsedFailKernRequest, facts: KernelFacts, syscallEntry: boolean, mode?: ProgramMode): FormPlan {
  const site = siteFor(req.failtype);
  const how = (m: ProgramMode | undefined): string => (m === undefined ? '' : m === 'trampoline' ? ' (fmod_ret)' : ' (kprobe + bpf_override_return)');
  const clones = facts.siteClones ?? [];
  if (!facts.siteMissing && clones.length === 0) return { form: 'site', mechanism: `${site.funcname}${how(mode)}` };
  const config = SITE_CONFIG[req.failtype];
  const missing = facts.siteMissing
    ? `${site.funcname} is not in this kernel (not in BTF nor /proc/kallsyms; kernels from 6.11 build it only with ${config}=y)`
    : `this kernel calls ${site.funcname} through its compiler clone${clones.length > 1 ? 's' : ''} ${clones.join(', ')}, which no hook on ${site.funcname} sees and which cannot be made to fail (not on the error-injection list)`;
  const outer = req.callchain[0]?.funcname;
  if (req.failtype === 2) throw new EngineError('missing-symbol', `failtype 2 cannot work on this kernel: ${missing}; a kernel with ${config}=y would work`);
  if (!syscallEntry) {
    throw new EngineError(
      'missing-symbol',
      `failtype ${req.failtype} cannot work on this kernel: ${missing}; the syscall-entry form${outer ? `, which would fail ${outer} with ENOMEM at entry,` : ''} is turned off (--no-syscall-entry); a kernel with ${config}=y would work`,
    );
  }
  if (!outer) {
    throw new EngineError(
      'missing-symbol',
      `failtype ${req.failtype} cannot work on this kernel: ${missing}; what would work: a call chain whose outermost frame is error-injectable (a syscall such as __x64_sys_mount: the syscall-entry form fails it with ENOMEM), or a kernel with ${config}=y`,
    );
  }
  if (facts.errorInjection && !facts.errorInjection.has(outer)) {
    throw new EngineError(
      'missing-symbol',
      `failtype ${req.failtype} cannot work on this kernel: ${missing}; spec.failKernRequest.callchain[0].funcname: ${outer} is not on the error-injection list, so the syscall-entry form cannot fail it either; what would work: a syscall (__x64_sys_*) as the outermost frame, or a kernel with ${config}=y`,
    );
  }
  return { form: 'syscall-entry', mechanism: `syscall-entry form: ${outer}${how(mode)} fails with ENOMEM at entry, because ${missing}` };
}

/**
 * Trampolines when the kernel has BTF for the site and every frame (fentry/fexit/fmod_ret attach by
 * BTF id) and the site is on the error-injection list (fmod_ret needs it); kprobes otherwise.
 */
export function planAttachMode(req: ParsedFailKernRequest, facts: KernelFacts, form: SiteForm = 'site'): AttachModePlan {
  // In the syscall-entry form the outermost frame is the site and the only function hooked.
  const site = form === 'syscall-entry' ? (req.callchain[0]?.funcname ?? '') : siteFor(req.failtype).funcname;
  if (!facts.btfFunctions) return { mode: 'kprobe', reason: 'the kernel has no BTF (/sys/kernel/btf/vmlinux)' };
  const hooked = form === 'syscall-entry' ? [site] : [site, ...req.callchain.map((f) => f.funcname)];
  const missing = hooked.filter((fn) => !facts.btfFunctions?.has(fn));
  if (missing.length > 0) return { mode: 'kprobe', reason: `no BTF entry for ${missing.join(', ')} (inlined or static)` };
  if (facts.errorInjection && !facts.errorInjection.has(site)) {
    return { mode: 'kprobe', reason: `${site} is not on the error-injection list, fmod_ret cannot change it` };
  }
  return { mode: 'trampoline', reason: 'BTF covers the site and every frame' };
}

function u64Key(value: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, value));
  return b;
}

const ZERO_KEY = Buffer.alloc(4);

/** Extra facts about an armed fault, for the CLI summary and the benchmark. */
export interface ArmedDetails {
  program: GeneratedProgram;
  objectPath: string;
  /** The object came from the compile cache. */
  cached: boolean;
  /** Why this attach mode. */
  modeReason: string;
  /** Milliseconds from arm() to armed (generate + compile + load + attach). */
  armMs: number;
  /** How the fault is injected (the site, or the syscall-entry form and why). */
  mechanism: string;
}

class ArmedBpfFault implements ArmedFault {
  readonly id = randomUUID();
  private state: { kind: 'armed'; links: BpfLink[] } | { kind: 'disarmed'; last: FaultCounters } = { kind: 'armed', links: [] };
  private targets = new Set<bigint>();
  private generation = 0;
  private readonly counterMap: BpfMap;
  private readonly targetMap: BpfMap;
  private readonly configMap: BpfMap;
  private readonly claimsMap: BpfMap;
  private readonly cpus = possibleCpus();

  get mechanism(): string {
    return this.details.mechanism;
  }

  constructor(
    private readonly object: BpfObject,
    readonly mode: ProgramMode,
    readonly details: ArmedDetails,
  ) {
    this.counterMap = object.map(MAP_NAMES.counters);
    this.targetMap = object.map(MAP_NAMES.targets);
    this.configMap = object.map(MAP_NAMES.config);
    this.claimsMap = object.map(MAP_NAMES.claims);
  }

  /** Starts the `times` counter at `claimed` (before attach: no fault is counted from 0). */
  setClaimed(claimed: number): void {
    if (!Number.isInteger(claimed) || claimed < 0) throw new EngineError('unsupported-kernel', `claimed must be a whole number >= 0, got ${claimed}`);
    const value = Buffer.alloc(MAP_LAYOUT.claims.size);
    value.writeBigUInt64LE(BigInt(claimed), MAP_LAYOUT.claims.claimed);
    this.claimsMap.update(ZERO_KEY, value);
  }

  /** Attaches in ATTACH_ORDER: exits, thread-exit cleanup, entries, the site last. */
  attachAll(): void {
    if (this.state.kind !== 'armed') return;
    const hooks = this.details.program.hooks;
    for (const role of ATTACH_ORDER) {
      for (const hook of hooks.filter((h) => h.role === role)) this.state.links.push(this.object.attach(hook.program));
    }
  }

  counters(): FaultCounters {
    if (this.state.kind === 'disarmed') return this.state.last;
    const stride = Math.ceil(MAP_LAYOUT.counters.size / 8) * 8;
    const value = this.counterMap.lookup(ZERO_KEY, stride * this.cpus);
    let calls = 0n;
    let faults = 0n;
    for (let cpu = 0; value && cpu < this.cpus; cpu++) {
      calls += value.readBigUInt64LE(cpu * stride + MAP_LAYOUT.counters.calls);
      faults += value.readBigUInt64LE(cpu * stride + MAP_LAYOUT.counters.faults);
    }
    return { calls, faults };
  }

  setTargetCgroups(ids: readonly bigint[]): void {
    if (this.state.kind !== 'armed') throw new EngineError('unsupported-kernel', 'this fault is disarmed; arm a new one');
    const next = new Set(ids);
    if (next.size > MAX_TARGET_CGROUPS) {
      throw new EngineError('unsupported-kernel', `${next.size} target cgroups; one fault holds at most ${MAX_TARGET_CGROUPS}`);
    }
    for (const id of next) if (!this.targets.has(id)) this.targetMap.update(u64Key(id), Buffer.from([1]));
    for (const id of this.targets) if (!next.has(id)) this.targetMap.delete(u64Key(id));
    this.targets = next;
    // A new generation invalidates every cached per-cgroup verdict; written after the targets so a
    // program that sees the new generation also sees the new targets.
    this.generation = (this.generation + 1) >>> 0 || 1;
    const config = Buffer.alloc(MAP_LAYOUT.config.size);
    config.writeUInt32LE(this.generation, MAP_LAYOUT.config.generation);
    config.writeUInt32LE(next.size, MAP_LAYOUT.config.targetCount);
    this.configMap.update(ZERO_KEY, config);
  }

  disarm(): void {
    if (this.state.kind === 'disarmed') return;
    let last: FaultCounters = { calls: 0n, faults: 0n };
    try {
      last = this.counters();
    } catch {
      // keep zeros: the maps are going away anyway
    }
    const links = this.state.links;
    this.state = { kind: 'disarmed', last };
    // Reverse attach order, the site first: from here on nothing fails, whatever the frames' state.
    for (const link of [...links].reverse()) link.destroy();
    this.object.close();
  }
}

/**
 * Names among `names` that are neither in the kernel's BTF nor in /proc/kallsyms, or null when
 * kallsyms cannot be read. Only the BTF misses are looked up, so the usual case reads no file.
 */
export function functionsMissingFromKernel(names: readonly string[], btf: ReadonlySet<string> | null, kallsymsPath = '/proc/kallsyms'): string[] | null {
  const unknown = names.filter((n) => !btf?.has(n));
  if (unknown.length === 0) return [];
  let text: string;
  try {
    text = readFileSync(kallsymsPath, 'utf8');
  } catch {
    return null;
  }
  const present = new Set<string>();
  const wanted = new Set(unknown);
  for (const line of text.split('\n')) {
    const name = line.split(' ', 4)[2]?.split('\t', 1)[0];
    if (name !== undefined && wanted.has(name)) present.add(name);
  }
  return unknown.filter((n) => !present.has(n));
}

/**
 * Refuses, before any compile, a request whose site or frames this kernel does not have, naming
 * the field: otherwise the user would read a verifier or attach error about something else.
 */
function checkFunctionsExist(request: ParsedFailKernRequest, btf: ReadonlySet<string> | null, form: SiteForm): void {
  const site = siteFor(request.failtype);
  const frames = request.callchain.map((f) => f.funcname);
  const missing = functionsMissingFromKernel(form === 'site' ? [site.funcname, ...frames] : frames, btf);
  if (!missing || missing.length === 0) return;
  if (form === 'site' && missing.includes(site.funcname)) {
    throw new EngineError(
      'missing-symbol',
      `failtype ${request.failtype} cannot work on this kernel: ${site.funcname} is not in it ` +
        `(not in BTF nor /proc/kallsyms; kernels from 6.11 build should_failslab/should_fail_alloc_page only with CONFIG_FAILSLAB/CONFIG_FAIL_PAGE_ALLOC); run \`kernelchaos doctor\``,
    );
  }
  const problems = request.callchain
    .map((f, i) => (missing.includes(f.funcname) ? `spec.failKernRequest.callchain[${i}].funcname: ${f.funcname} is not a function of this kernel (not in BTF nor /proc/kallsyms)` : null))
    .filter((p): p is string => p !== null);
  throw new EngineError('missing-symbol', problems.join('; '));
}

/**
 * Refuses, before any C is generated, parameters and predicates that do not match this kernel's
 * BTF: a wrong prototype would let a predicate read any kernel address.
 */
function checkRequestTypes(request: ParsedFailKernRequest, btfPath: string): void {
  const problems = requestTypeProblems(request, btfPath);
  if (problems.length > 0) throw new EngineError('invalid-request', problems.map((p) => `${p.path}: ${p.message}`).join('; '));
}

export interface EngineOptions {
  /** Kernel BTF used for vmlinux.h (default /sys/kernel/btf/vmlinux). */
  btfPath?: string;
  /** Facts about the kernel for `auto` (default: read from this kernel). */
  facts?: (req: ParsedFailKernRequest) => KernelFacts;
}

export class BpfFaultEngine implements FaultEngine {
  constructor(private readonly options: EngineOptions = {}) {}

  async arm(request: ParsedFailKernRequest, targetCgroupIds: readonly bigint[], options: ArmOptions = {}): Promise<ArmedFault & { details: ArmedDetails }> {
    const started = performance.now();
    checkRequestTypes(request, this.options.btfPath ?? KERNEL_BTF_PATH);
    const requested = options.attachMode ?? 'auto';
    const facts = (this.options.facts ?? readKernelFacts)(request);
    const form = planForm(request, facts, options.syscallEntry !== false).form;
    if (requested !== 'auto') return this.armIn(requested, `forced by attachMode=${requested}`, request, targetCgroupIds, options, started, facts, form);
    const plan = planAttachMode(request, facts, form);
    try {
      return await this.armIn(plan.mode, plan.reason, request, targetCgroupIds, options, started, facts, form);
    } catch (err) {
      // A kernel that advertises BTF may still refuse a trampoline (no ftrace direct calls, a
      // lockdown); kprobes are the fallback. Compile errors would fail the same way again.
      if (plan.mode !== 'trampoline' || !(err instanceof EngineError) || err.reason === 'compile-failed') throw err;
      try {
        return await this.armIn('kprobe', `trampolines failed (${err.message}); fell back to kprobes`, request, targetCgroupIds, options, started, facts, form);
      } catch (second) {
        if (second instanceof EngineError) {
          throw new EngineError(second.reason, `${second.message} (trampolines failed first: ${err.message})`, [err.detail, second.detail].filter(Boolean).join('\n---\n'));
        }
        throw second;
      }
    }
  }

  private async armIn(
    mode: ProgramMode,
    modeReason: string,
    request: ParsedFailKernRequest,
    targets: readonly bigint[],
    options: ArmOptions,
    started: number,
    facts: KernelFacts,
    form: SiteForm,
  ): Promise<ArmedBpfFault> {
    let program: GeneratedProgram;
    try {
      program = generateProgram(request, mode, { form, ...(options.hierarchy ? { target: bpfTargetOf(options.hierarchy) } : {}) });
    } catch (err) {
      // The webhook validates first, so this is a request the parser accepted but C cannot express.
      if (err instanceof GenerateError) throw new EngineError('compile-failed', `the fault program cannot be generated: ${err.message}`);
      throw err;
    }
    // Injected facts describe a pretend kernel (tests); only the real one is checked against kallsyms.
    if (!this.options.facts) checkFunctionsExist(request, facts.btfFunctions, form);
    const mechanism = withHierarchy(planForm(request, facts, true, mode).mechanism, options.hierarchy);
    const compiled = await compileProgram(program.source, {
      cacheDir: options.cacheDir ?? defaultCacheDir(),
      ...(this.options.btfPath ? { btfPath: this.options.btfPath } : {}),
    });
    // kprobe mode: with the trampoline's address a frame whose kretprobe missed is dropped (kc_drop_unhooked).
    const dropUnhooked = mode === 'kprobe' && program.maps.includes(MAP_NAMES.threads);
    const retTrampoline = dropUnhooked ? kretprobeTrampoline() : 0n;
    if (dropUnhooked && retTrampoline === 0n) {
      modeReason += '; the kretprobe trampoline is not in /proc/kallsyms, so a frame whose kretprobe missed is dropped only when the thread next runs a hooked function above it';
    }
    const object = BpfObject.load(compiled.objectPath, { rodata: { section: SETTINGS_SECTION, data: encodeSettings({ ...program.settings, retTrampoline }) } });
    let fault: ArmedBpfFault | undefined;
    try {
      fault = new ArmedBpfFault(object, mode, { program, objectPath: compiled.objectPath, cached: compiled.cached, modeReason, armMs: 0, mechanism });
      // Targets before attach: the programs are live for exactly these cgroups from the first call.
      fault.setTargetCgroups(targets);
      if (options.claimed) fault.setClaimed(options.claimed);
      fault.attachAll();
      fault.details.armMs = performance.now() - started;
      return fault;
    } catch (err) {
      if (fault) fault.disarm();
      else object.close();
      throw err;
    }
  }
}
