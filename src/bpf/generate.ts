// KernelChaos failKernRequest -> one BPF C program (libbpf CO-RE style). Pure: no I/O.
//
// Order of checks at the injection site, cheapest rejection first for everyone who is not a target:
//   0. with a call chain: does any target thread have the whole chain active? (one load from an
//      array map; the frame programs only track target threads, so this gate is itself
//      cgroup-filtered and lets every task, target or not, leave at once while no chain is complete);
//   1. target cgroup (a cached per-cgroup verdict: one helper call and one hash lookup);
//      for bio also the bio's own blkcg, so writeback submitted by a kworker for the target counts;
//   2. not in interrupt context (there `current` is a bystander);
//   3. never an allocation the kernel may not fail (__GFP_NOFAIL);
//   4. the call chain (per-thread state kept by the frame programs);
//   5. probability; 6. `times` (an exact atomic cap); then the fault, counted.
import type { ParsedFailKernRequest, ParsedFrame, SitePredicate } from '../api/predicate/ast.js';
import {
  GenerateError,
  checkIdentifier,
  describeExpr,
  emitCType,
  emitPredicate,
  emitStringCompareFunction,
  paramVar,
  printable,
  type StringCompare,
} from './emit-predicate.js';
import { siteFor, syscallEntrySite, type InjectionSite, type SiteForm } from './sites.js';
import { V1_SUBSYS_ENUMERATOR, type BpfTargetHierarchy } from './cgroup-hierarchy.js';

export { GenerateError } from './emit-predicate.js';

export type ProgramMode = 'trampoline' | 'kprobe';
export type HookKind = 'fentry' | 'fexit' | 'fmod_ret' | 'kprobe' | 'kretprobe' | 'raw_tp';

export interface ProgramHook {
  /** The BPF program's name in the object (bpf_object__find_program_by_name). */
  program: string;
  /** Its ELF section, which also tells libbpf how to attach it. */
  section: string;
  kind: HookKind;
  /** The kernel function it attaches to. */
  funcname: string;
  role: 'site' | 'frame-entry' | 'frame-exit' | 'thread-exit';
}

/**
 * Attach order: exits before entries (a thread already inside a frame when its entry program
 * attaches would otherwise be pushed and never popped), the thread-exit cleanup with the exits,
 * the site last so it never runs without its chain tracking. Detach is the reverse.
 */
export const ATTACH_ORDER: readonly ProgramHook['role'][] = ['frame-exit', 'thread-exit', 'frame-entry', 'site'];

/** Map names in the object; the loader and `doctor`/bench find them by these names. */
export const MAP_NAMES = {
  /** HASH u64 cgroup id -> u8: the target cgroups (their descendants are targets too). */
  targets: 'kc_targets',
  /** LRU_HASH u64 cgroup id -> struct kc_verdict: cached "is this cgroup under a target". */
  verdicts: 'kc_verdicts',
  /** ARRAY[1] struct kc_config: generation (bumped on every target change) and target count. */
  config: 'kc_config',
  /** PERCPU_ARRAY[1] struct kc_counters: calls seen, faults injected (sum over CPUs). */
  counters: 'kc_counters',
  /** ARRAY[1] struct kc_claims: faults claimed against `times`. */
  claims: 'kc_claims',
  /** HASH u64 pid_tgid -> struct kc_thread: call-chain state (only with a non-empty chain). */
  threads: 'kc_threads',
  /** ARRAY[1] struct kc_chain: how many target threads have the whole chain active (only with a non-empty chain). */
  chain: 'kc_chain',
} as const;

/** Byte layouts of the map values, shared with the loader (little-endian x86-64). */
export const MAP_LAYOUT = {
  /** struct kc_config { __u32 generation; __u32 target_count; } */
  config: { size: 8, generation: 0, targetCount: 4 },
  /** struct kc_counters { __u64 calls; __u64 faults; } */
  counters: { size: 16, calls: 0, faults: 8 },
  /** struct kc_claims { __u64 claimed; } */
  claims: { size: 8, claimed: 0 },
} as const;

export interface GeneratedProgram {
  source: string;
  mode: ProgramMode;
  failtype: 0 | 1 | 2;
  site: InjectionSite;
  /** Every program, site first. */
  hooks: ProgramHook[];
  /** Kernel functions hooked, site first, each once (not the sched_process_exit tracepoint). */
  functions: string[];
  /** Maps present in this object (kc_threads and kc_chain only with a chain). */
  maps: string[];
}

export interface GenerateOptions {
  /**
   * 'empty-site': only a site program that returns 0 at once (the cost floor, for the benchmark).
   * Default 'full'.
   */
  variant?: 'full' | 'empty-site';
  /** 'syscall-entry': fail the chain's outermost frame at entry instead of the failtype's site (see sites.ts). Default 'site'. */
  form?: SiteForm;
  /** Which hierarchy target cgroup ids are in (cgroup-hierarchy.ts). Default: the default (v2) hierarchy. */
  target?: BpfTargetHierarchy;
}

/** The header with the v1 target check and the hierarchy check for cgroups found elsewhere (src/bpf). */
export const TARGET_V1_HEADER = 'kc_target_v1.bpf.h';

/**
 * Most target threads with chain state at once (kc_threads). A HASH, not an LRU: an LRU would evict
 * live state silently. State exists only while a target thread is inside a frame that made the
 * chain advance, and is freed on the frame's exit, by healing, or when the thread exits; when the
 * map is full a new thread is simply not tracked (it gets no fault, never a wrong one).
 */
export const MAX_CHAIN_THREADS = 16384;
/** Cgroup v2 nesting levels walked when a cgroup's verdict is not cached yet. */
export const MAX_CGROUP_LEVELS = 32;
export const MAX_FRAMES = 16;
const MAX_KPROBE_ARGS = 6;

export function generateProgram(req: ParsedFailKernRequest, mode: ProgramMode, options: GenerateOptions = {}): GeneratedProgram {
  const base = 'spec.failKernRequest';
  if (req.failtype !== 0 && req.failtype !== 1 && req.failtype !== 2) {
    throw new GenerateError(`${base}.failtype`, `must be 0, 1 or 2, got ${String(req.failtype)}`);
  }
  if (mode !== 'trampoline' && mode !== 'kprobe') {
    throw new GenerateError('mode', `must be trampoline or kprobe, got ${String(mode)}`);
  }
  const probability = checkRange(req.probability, 0, 100, `${base}.probability`);
  const times = checkRange(req.times, 0, 4294967295, `${base}.times`);
  if (req.callchain.length > MAX_FRAMES) {
    throw new GenerateError(`${base}.callchain`, `has ${req.callchain.length} frames; at most ${MAX_FRAMES}`);
  }
  const entryForm = options.form === 'syscall-entry';
  const site = entryForm ? entrySiteFor(req) : siteFor(req.failtype);
  req.callchain.forEach((f, i) => {
    checkIdentifier(f.funcname, `${base}.callchain[${i}].funcname`, 'function name');
    if (!entryForm && f.funcname === site.funcname) {
      throw new GenerateError(`${base}.callchain[${i}].funcname`, `${site.funcname} is the injection site itself; list only its callers`);
    }
    if (mode === 'kprobe') {
      for (const p of f.parameters) {
        if (p.index >= MAX_KPROBE_ARGS) {
          throw new GenerateError(`${base}.callchain[${i}].parameters`, `parameter ${p.index + 1} is passed on the stack; kprobes read only the first ${MAX_KPROBE_ARGS}`);
        }
      }
    }
  });

  const out = new Writer(mode, options.target ?? { kind: 'default' });
  if (options.variant === 'empty-site') return out.emptySite(req, site);
  if (entryForm) return out.entry(req, site, probability, times);
  return out.full(req, site, probability, times);
}

/** The syscall-entry site for `req`, or why this chain cannot be honoured that way. */
function entrySiteFor(req: ParsedFailKernRequest): InjectionSite {
  const base = 'spec.failKernRequest';
  if (req.failtype === 2) throw new GenerateError(`${base}.failtype`, 'the syscall-entry form is for failtype 0 and 1; failtype 2 always has should_fail_bio');
  const outer = req.callchain[0];
  if (!outer) {
    throw new GenerateError(`${base}.callchain`, 'is empty: the syscall-entry form fails the outermost frame of the call chain (e.g. __x64_sys_mount), so it needs one');
  }
  req.callchain.forEach((f, i) => {
    if (i > 0 && f.predicate) {
      throw new GenerateError(
        `${base}.callchain[${i}].predicate`,
        `cannot be honoured by the syscall-entry form: ${outer.funcname} fails at entry, before ${f.funcname} runs; only a predicate on the outermost frame can be checked`,
      );
    }
  });
  if (req.site) {
    throw new GenerateError(
      `${base}.callchain[${req.callchain.length}].predicate`,
      `cannot be honoured by the syscall-entry form: it reads the arguments of ${siteFor(req.failtype).funcname}, which this kernel does not have`,
    );
  }
  return syscallEntrySite(req.failtype, outer.funcname);
}

function checkRange(value: number, min: number, max: number, path: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new GenerateError(path, `must be an integer ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

/** Frames grouped by kernel function: one entry and one exit program per distinct function. */
interface FunctionGroup {
  funcname: string;
  frames: { index: number; frame: ParsedFrame }[];
}

function groupFrames(chain: ParsedFrame[]): FunctionGroup[] {
  const groups: FunctionGroup[] = [];
  chain.forEach((frame, index) => {
    let g = groups.find((x) => x.funcname === frame.funcname);
    if (!g) {
      g = { funcname: frame.funcname, frames: [] };
      groups.push(g);
    }
    g.frames.push({ index, frame });
  });
  return groups;
}

/** libbpf 1.1 (Debian 12) has PT_REGS_PARM1..5 only: the sixth argument register per architecture. */
const SIXTH_ARG_MACRO = [
  '#if defined(PT_REGS_PARM6)',
  '#define KC_PT_REGS_PARM6(x) PT_REGS_PARM6(x)',
  '#elif defined(__TARGET_ARCH_x86)',
  '#define KC_PT_REGS_PARM6(x) (((const struct pt_regs *)(x))->r9)',
  '#elif defined(__TARGET_ARCH_arm64)',
  '#define KC_PT_REGS_PARM6(x) (((const struct user_pt_regs *)(x))->regs[5])',
  '#else',
  '#error kernelchaos knows no sixth-argument register for this architecture',
  '#endif',
];

class Writer {
  private readonly lines: string[] = [];
  private readonly hooks: ProgramHook[] = [];

  constructor(
    private readonly mode: ProgramMode,
    private readonly target: BpfTargetHierarchy,
  ) {}

  private get ctxParam(): string {
    return this.mode === 'trampoline' ? 'unsigned long long *ctx' : 'struct pt_regs *ctx';
  }

  /** C expression for argument `index` of the hooked function. */
  private arg(index: number): string {
    if (this.mode === 'trampoline') return `ctx[${index}]`;
    return index < 5 ? `PT_REGS_PARM${index + 1}(ctx)` : 'KC_PT_REGS_PARM6(ctx)';
  }

  private emit(...text: string[]): void {
    this.lines.push(...text);
  }

  private section(kind: HookKind, funcname: string): string {
    return `${kind}/${funcname}`;
  }

  /** `returns`: long for an fmod_ret whose function returns long (a syscall): r0 is its whole result. */
  private program(kind: HookKind, funcname: string, program: string, role: ProgramHook['role'], returns: 'int' | 'long' = 'int'): void {
    const section = this.section(kind, funcname);
    this.hooks.push({ program, section, kind, funcname, role });
    const param = kind === 'raw_tp' ? 'void *ctx' : this.ctxParam;
    this.emit(`SEC("${section}")`, `${returns} ${program}(${param})`, '{');
  }

  private result(req: ParsedFailKernRequest, site: InjectionSite, maps: string[]): GeneratedProgram {
    const functions = [...new Set(this.hooks.filter((h) => h.kind !== 'raw_tp').map((h) => h.funcname))];
    return {
      source: this.lines.join('\n') + '\n',
      mode: this.mode,
      failtype: req.failtype,
      site,
      hooks: this.hooks,
      functions,
      maps,
    };
  }

  private header(req: ParsedFailKernRequest, site: InjectionSite): void {
    this.emit(
      '// SPDX-License-Identifier: GPL-2.0',
      '// Generated by kernelchaos from a KernelChaos failKernRequest. Do not edit.',
      `// failtype ${req.failtype}: ${site.effect}, at ${site.funcname} (${this.mode === 'trampoline' ? 'fmod_ret' : 'kprobe + bpf_override_return'}).`,
      ...(req.callchain.length === 0
        ? ['// call chain: none (every call of the site in a target cgroup)']
        : req.callchain.map((f, i) => `// frame ${i}: ${printable(f.funcname)}${f.predicate ? ` if ${describeExpr(f.predicate)}` : ''}`)),
      `// probability: ${req.probability === 0 ? 'every call' : `${req.probability}%`}; times: ${req.times === 0 ? 'no limit' : req.times}`,
      '#include "vmlinux.h"',
      '#include <bpf/bpf_helpers.h>',
      '#include <bpf/bpf_tracing.h>',
      '#include <bpf/bpf_core_read.h>',
      ...SIXTH_ARG_MACRO,
      '',
      'char LICENSE[] SEC("license") = "GPL";',
      '',
    );
  }

  emptySite(req: ParsedFailKernRequest, site: InjectionSite): GeneratedProgram {
    this.header({ ...req, callchain: [], probability: 0, times: 0 }, site);
    const kind: HookKind = this.mode === 'trampoline' ? 'fmod_ret' : 'kprobe';
    this.emit('/* The cost floor: a site program that does nothing. */');
    this.program(kind, site.funcname, 'kc_site', 'site');
    this.emit('\treturn 0;', '}');
    return this.result(req, site, []);
  }

  full(req: ParsedFailKernRequest, site: InjectionSite, probability: number, times: number): GeneratedProgram {
    const hasChain = req.callchain.length > 0;
    this.header(req, site);
    this.constants(req, probability, times);
    this.maps(hasChain);
    this.helpers(site);

    const groups = groupFrames(req.callchain);
    const compares: string[] = [];
    const frameBlocks = groups.map((g, k) => this.entryBody(g, k, compares));
    // String compare helpers must precede their use.
    if (compares.length > 0) this.emit(...compares, '');

    groups.forEach((g, k) => {
      this.emit(`/* Entering ${printable(g.funcname)}: frame ${g.frames.map((f) => f.index).join(', ')} of the chain. */`);
      this.program(this.mode === 'trampoline' ? 'fentry' : 'kprobe', g.funcname, `kc_enter_${k}`, 'frame-entry');
      this.emit(...(frameBlocks[k] ?? []), '}', '');
      this.emit(`/* Leaving ${printable(g.funcname)}: pop this call; it clears the frame it made active. */`);
      this.program(this.mode === 'trampoline' ? 'fexit' : 'kretprobe', g.funcname, `kc_exit_${k}`, 'frame-exit');
      this.emit('\tkc_chain_leave(KC_EXIT_FRAME_ADDR);', '\treturn 0;', '}', '');
    });

    if (hasChain) {
      this.emit('/* A thread that exits inside a frame leaves no state behind. */');
      this.program('raw_tp', 'sched_process_exit', 'kc_thread_exit', 'thread-exit');
      this.emit('\tkc_thread_gone();', '\treturn 0;', '}', '');
    }
    this.site(site, hasChain, probability, times, [], req.site, `spec.failKernRequest.callchain[${req.callchain.length}].predicate`);
    const maps: string[] = [MAP_NAMES.targets, MAP_NAMES.verdicts, MAP_NAMES.config, MAP_NAMES.counters, MAP_NAMES.claims];
    if (hasChain) maps.push(MAP_NAMES.threads, MAP_NAMES.chain);
    // Site first in the hook list (for `render --hooks`); the loader attaches by ATTACH_ORDER.
    const siteHook = this.hooks.pop();
    if (siteHook) this.hooks.unshift(siteHook);
    return this.result(req, site, maps);
  }

  /** The syscall-entry form: one program on the outermost frame that fails it (its predicate, if any, checked there). */
  entry(req: ParsedFailKernRequest, site: InjectionSite, probability: number, times: number): GeneratedProgram {
    const outer = req.callchain[0];
    this.header(req, site);
    this.constants({ ...req, callchain: [] }, probability, times);
    this.maps(false);
    this.helpers(site);
    const check: string[] = [];
    if (outer?.predicate) {
      const pred = emitPredicate(outer, 'spec.failKernRequest.callchain[0].predicate', 'kc_streq_0_0');
      if (pred) {
        if (pred.compares.length > 0) this.emit(...pred.compares.map((c: StringCompare) => emitStringCompareFunction(c) + '\n'), '');
        check.push(`\t/* 4. frame 0: ${describeExpr(outer.predicate)} */`);
        for (const p of pred.params) {
          const type = emitCType(p.type, 'spec.failKernRequest.callchain[0].parameters');
          check.push(`\t${type} ${paramVar(p.name)} = (${type})${this.arg(p.index)};`);
        }
        check.push(`\tif (!(${pred.code}))`, '\t\treturn 0;');
      }
    }
    this.site(site, false, probability, times, check);
    const maps: string[] = [MAP_NAMES.targets, MAP_NAMES.verdicts, MAP_NAMES.config, MAP_NAMES.counters, MAP_NAMES.claims];
    return this.result(req, site, maps);
  }

  private constants(req: ParsedFailKernRequest, probability: number, times: number): void {
    this.emit(
      '/* errno values (vmlinux.h has types, not macros) */',
      '#define KC_ENOMEM 12',
      '#define KC_EIO 5',
      '/* ___GFP_NOFAIL: the compiler passes the value from this kernel\'s BTF when it has the',
      '   ___GFP_NOFAIL_BIT enum (6.10+); older kernels define it as 0x8000, the same bit 15. */',
      '#ifndef KC_GFP_NOFAIL',
      '#define KC_GFP_NOFAIL 0x8000U',
      '#endif',
      '/* preempt_count bits outside task context (kernel in_task()): NMI, hardirq, serving softirq */',
      '#define KC_NOT_TASK_MASK (0x00f00000 | 0x000f0000 | 0x00000100)',
      `#define KC_CHAIN_LENGTH ${req.callchain.length}`,
      `#define KC_MAX_FRAMES ${MAX_FRAMES}`,
      `#define KC_MAX_THREADS ${MAX_CHAIN_THREADS}`,
      ...this.frameAddress(),
      `#define KC_MAX_CGROUP_LEVELS ${MAX_CGROUP_LEVELS}`,
      `#define KC_PROBABILITY ${probability}`,
      `#define KC_TIMES ${times}ULL`,
      '',
      '/* A pointer field is read; an array field (e.g. task->comm) is addressed. */',
      '#define KC_FIELD_IS_ARRAY(b, f) (!__builtin_types_compatible_p(typeof((b)->f), typeof(&(b)->f[0])))',
      '#define KC_STR_ADDR(b, f) __builtin_choose_expr(KC_FIELD_IS_ARRAY(b, f), \\',
      '\t(const void *)__builtin_preserve_access_index(&(b)->f), (const void *)BPF_CORE_READ(b, f))',
      '',
    );
  }

  private maps(hasChain: boolean): void {
    this.emit(
      'struct kc_config {',
      '\t__u32 generation;   /* bumped by user space after every change of kc_targets */',
      '\t__u32 target_count; /* 0: nobody is a target, reject at once */',
      '};',
      '',
      'struct kc_verdict {',
      '\t__u32 generation;',
      '\t__u32 targeted;',
      '};',
      '',
      'struct kc_counters {',
      '\t__u64 calls;  /* site calls seen from target tasks (before chain, probability, times) */',
      '\t__u64 faults; /* faults injected */',
      '};',
      '',
      'struct kc_claims {',
      '\t__u64 claimed; /* faults claimed against KC_TIMES */',
      '};',
      '',
      'struct {',
      '\t__uint(type, BPF_MAP_TYPE_HASH);',
      '\t__uint(max_entries, 1024);',
      '\t__type(key, __u64);',
      '\t__type(value, __u8);',
      `} ${MAP_NAMES.targets} SEC(".maps");`,
      '',
      '/* Cgroup ids are never reused, so a verdict stays right until the targets change (generation). */',
      'struct {',
      '\t__uint(type, BPF_MAP_TYPE_LRU_HASH);',
      '\t__uint(max_entries, 8192);',
      '\t__type(key, __u64);',
      '\t__type(value, struct kc_verdict);',
      `} ${MAP_NAMES.verdicts} SEC(".maps");`,
      '',
      'struct {',
      '\t__uint(type, BPF_MAP_TYPE_ARRAY);',
      '\t__uint(max_entries, 1);',
      '\t__type(key, __u32);',
      '\t__type(value, struct kc_config);',
      `} ${MAP_NAMES.config} SEC(".maps");`,
      '',
      'struct {',
      '\t__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);',
      '\t__uint(max_entries, 1);',
      '\t__type(key, __u32);',
      '\t__type(value, struct kc_counters);',
      `} ${MAP_NAMES.counters} SEC(".maps");`,
      '',
      'struct {',
      '\t__uint(type, BPF_MAP_TYPE_ARRAY);',
      '\t__uint(max_entries, 1);',
      '\t__type(key, __u32);',
      '\t__type(value, struct kc_claims);',
      `} ${MAP_NAMES.claims} SEC(".maps");`,
      '',
    );
    if (hasChain) {
      this.emit(
        '/* Per-thread chain state. Only calls that made a frame active are recorded, each with its',
        '   stack address: a caller\'s frame always lies above (at a higher address than) everything it',
        '   calls, so a recorded call at or below the current stack address has returned, whether or not',
        '   its exit program ran (a miss, a kretprobe without a free instance, a function that never',
        '   returns). Every program heals the state by that rule before using it. */',
        'struct kc_thread {',
        '\t__u32 active; /* frames 0..active-1 hold */',
        '\t__u32 pad;',
        '\t__u64 sp[KC_MAX_FRAMES]; /* sp[i]: stack address of the call that made frame i active */',
        '};',
        '',
        '/* Keyed by pid_tgid so threads never mix. A HASH so live state is never evicted; see MAX_CHAIN_THREADS. */',
        'struct {',
        '\t__uint(type, BPF_MAP_TYPE_HASH);',
        '\t__uint(max_entries, KC_MAX_THREADS);',
        '\t__type(key, __u64);',
        '\t__type(value, struct kc_thread);',
        `} ${MAP_NAMES.threads} SEC(".maps");`,
        '',
        'struct kc_chain {',
        '\t__u64 complete; /* target threads whose whole chain is active right now */',
        '};',
        '',
        'struct {',
        '\t__uint(type, BPF_MAP_TYPE_ARRAY);',
        '\t__uint(max_entries, 1);',
        '\t__type(key, __u32);',
        '\t__type(value, struct kc_chain);',
        `} ${MAP_NAMES.chain} SEC(".maps");`,
        '',
        'static __always_inline struct kc_chain *kc_chain_get(void)',
        '{',
        '\t__u32 zero = 0;',
        '',
        `\treturn bpf_map_lookup_elem(&${MAP_NAMES.chain}, &zero);`,
        '}',
        '',
        '/* A thread whose whole chain became active (+1) or stopped being (-1). */',
        'static __always_inline void kc_chain_complete(__s64 delta)',
        '{',
        '\tstruct kc_chain *chain = kc_chain_get();',
        '',
        '\tif (chain)',
        '\t\t__sync_fetch_and_add(&chain->complete, delta);',
        '}',
        '',
        '/* Drops the recorded calls at or below stack address `here`: they have returned. */',
        'static __always_inline void kc_heal(struct kc_thread *st, __u64 here)',
        '{',
        '\tfor (int i = 0; i < KC_MAX_FRAMES; i++) {',
        '\t\t__u32 active = st->active;',
        '',
        '\t\tif (!active || active > KC_MAX_FRAMES)',
        '\t\t\tbreak;',
        '\t\tif (st->sp[(active - 1) & (KC_MAX_FRAMES - 1)] > here)',
        '\t\t\tbreak;',
        '\t\tif (active == KC_CHAIN_LENGTH)',
        '\t\t\tkc_chain_complete(-1);',
        '\t\tst->active = active - 1;',
        '\t}',
        '}',
        '',
      );
    }
  }

  private helpers(site: InjectionSite): void {
    this.emit(
      '/* preempt_count lives in __preempt_count (<= 6.1, >= 6.15) or pcpu_hot (6.2 .. 6.14) on x86. */',
      'extern const int __preempt_count __ksym __weak;',
      'struct pcpu_hot___kc {',
      '\tint preempt_count;',
      '} __attribute__((preserve_access_index));',
      'extern struct pcpu_hot___kc pcpu_hot __ksym __weak;',
      '',
      'static __always_inline bool kc_in_task(void)',
      '{',
      '\tint pc;',
      '',
      '\tif (&__preempt_count)',
      '\t\tpc = *(const int *)bpf_this_cpu_ptr(&__preempt_count);',
      '\telse if (bpf_core_field_exists(pcpu_hot.preempt_count))',
      '\t\tpc = ((struct pcpu_hot___kc *)bpf_this_cpu_ptr(&pcpu_hot))->preempt_count;',
      '\telse',
      '\t\treturn true; /* cannot tell: treat as task context */',
      '\treturn !(pc & KC_NOT_TASK_MASK);',
      '}',
      '',
      'static __always_inline struct kc_config *kc_config_get(void)',
      '{',
      '\t__u32 zero = 0;',
      '',
      `\treturn bpf_map_lookup_elem(&${MAP_NAMES.config}, &zero);`,
      '}',
      '',
      '/* 1/0 when the cached verdict for cgroup `id` is current, -1 when it must be computed. */',
      'static __always_inline int kc_cached_verdict(__u64 id, __u32 generation)',
      '{',
      `\tstruct kc_verdict *v = bpf_map_lookup_elem(&${MAP_NAMES.verdicts}, &id);`,
      '',
      '\tif (v && v->generation == generation)',
      '\t\treturn v->targeted;',
      '\treturn -1;',
      '}',
      '',
      'static __always_inline bool kc_store_verdict(__u64 id, __u32 generation, bool targeted)',
      '{',
      '\tstruct kc_verdict v = { .generation = generation, .targeted = targeted };',
      '',
      `\tbpf_map_update_elem(&${MAP_NAMES.verdicts}, &id, &v, BPF_ANY);`,
      '\treturn targeted;',
      '}',
      '',
    );
    if (this.target.kind === 'v1' || site.bioArgIndex !== null) {
      this.emit(
        ...(this.target.kind === 'v1'
          ? [`/* Targets are cgroups of the v1 ${this.target.controller} hierarchy (kc_task_targeted is the header's). */`, `#define KC_TARGET_V1_SUBSYS ${V1_SUBSYS_ENUMERATOR[this.target.controller]}`]
          : []),
        `#include "${TARGET_V1_HEADER}"`,
        '',
      );
    }
    if (this.target.kind === 'default') {
      this.emit(
        '/* Is the current task in a target cgroup or below one? */',
        'static __always_inline bool kc_task_targeted(void)',
        '{',
        '\tstruct kc_config *cfg = kc_config_get();',
        '',
        '\tif (!cfg || !cfg->target_count)',
        '\t\treturn false;',
        '\t__u32 generation = cfg->generation;',
        '\t__u64 id = bpf_get_current_cgroup_id();',
        '\tint cached = kc_cached_verdict(id, generation);',
        '',
        '\tif (cached >= 0)',
        '\t\treturn cached;',
        '\tfor (int level = 0; level < KC_MAX_CGROUP_LEVELS; level++) {',
        '\t\t__u64 ancestor = bpf_get_current_ancestor_cgroup_id(level);',
        '',
        '\t\tif (!ancestor)',
        '\t\t\tbreak;',
        `\t\tif (bpf_map_lookup_elem(&${MAP_NAMES.targets}, &ancestor))`,
        '\t\t\treturn kc_store_verdict(id, generation, true);',
        '\t\tif (ancestor == id)',
        '\t\t\tbreak;',
        '\t}',
        '\treturn kc_store_verdict(id, generation, false);',
        '}',
        '',
      );
    }
    if (site.bioArgIndex !== null) {
      this.emit(
        '/* Is the bio charged to a target cgroup (bio->bi_blkg->blkcg->css.cgroup) or below one? */',
        'static __always_inline bool kc_bio_targeted(struct bio *bio)',
        '{',
        '\tstruct kc_config *cfg = kc_config_get();',
        '',
        '\tif (!cfg || !cfg->target_count || !bio)',
        '\t\treturn false;',
        '\tif (!bpf_core_field_exists(bio->bi_blkg))',
        '\t\treturn false; /* kernel without CONFIG_BLK_CGROUP */',
        '\t__u32 generation = cfg->generation;',
        '\tstruct cgroup *cg = BPF_CORE_READ(bio, bi_blkg, blkcg, css.cgroup);',
        '',
        '\t/* ids are unique only within a hierarchy: on v1 and hybrid nodes the blkcg is in blkio\'s */',
        '\tif (!cg || !kc_in_target_hierarchy(cg))',
        '\t\treturn false;',
        '\t__u64 id = BPF_CORE_READ(cg, kn, id);',
        '\tint cached = kc_cached_verdict(id, generation);',
        '',
        '\tif (cached >= 0)',
        '\t\treturn cached;',
        '\tfor (int level = 0; level < KC_MAX_CGROUP_LEVELS && cg; level++) {',
        '\t\t__u64 ancestor = BPF_CORE_READ(cg, kn, id);',
        '',
        `\t\tif (bpf_map_lookup_elem(&${MAP_NAMES.targets}, &ancestor))`,
        '\t\t\treturn kc_store_verdict(id, generation, true);',
        '\t\tcg = BPF_CORE_READ(cg, self.parent, cgroup);',
        '\t}',
        '\treturn kc_store_verdict(id, generation, false);',
        '}',
        '',
      );
    }
    this.emit(
      'static __always_inline void kc_count(bool fault)',
      '{',
      '\t__u32 zero = 0;',
      `\tstruct kc_counters *c = bpf_map_lookup_elem(&${MAP_NAMES.counters}, &zero);`,
      '',
      '\tif (!c)',
      '\t\treturn;',
      '\t/* per-CPU, but programs are preemptible: add atomically */',
      '\tif (fault)',
      '\t\t__sync_fetch_and_add(&c->faults, 1);',
      '\telse',
      '\t\t__sync_fetch_and_add(&c->calls, 1);',
      '}',
      '',
    );
  }

  /** The body of the entry program for one function: which frame (if any) this call makes active. */
  private entryBody(g: FunctionGroup, k: number, compares: string[]): string[] {
    const body: string[] = [
      '\tif (!kc_task_targeted() || !kc_in_task())',
      '\t\treturn 0;',
      '\t__u64 tid = bpf_get_current_pid_tgid();',
      '\t__u64 here = KC_FRAME_ADDR;',
      `\tstruct kc_thread *st = bpf_map_lookup_elem(&${MAP_NAMES.threads}, &tid);`,
      '',
      '\tif (st)',
      '\t\tkc_heal(st, here);',
      '\t__u32 active = st ? st->active : 0;',
      '\tbool mark = false;',
      '',
    ];
    g.frames.forEach(({ index, frame }, j) => {
      const path = `spec.failKernRequest.callchain[${index}].predicate`;
      const pred = emitPredicate(frame, path, `kc_streq_${k}_${j}`);
      body.push(`\t${j === 0 ? '' : 'else '}if (active == ${index}) {`);
      body.push(`\t\t/* frame ${index}${frame.predicate ? `: ${describeExpr(frame.predicate)}` : ''} */`);
      if (pred) {
        for (const p of pred.params) {
          const type = emitCType(p.type, `spec.failKernRequest.callchain[${index}].parameters`);
          body.push(`\t\t${type} ${paramVar(p.name)} = (${type})${this.arg(p.index)};`);
        }
        body.push(`\t\tmark = ${pred.code};`);
        compares.push(...pred.compares.map((c: StringCompare) => emitStringCompareFunction(c) + '\n'));
      } else {
        body.push('\t\tmark = true;');
      }
      body.push('\t}');
    });
    body.push(
      '',
      '\tif (!mark) {',
      '\t\tif (st && !active)',
      `\t\t\tbpf_map_delete_elem(&${MAP_NAMES.threads}, &tid);`,
      '\t\treturn 0; /* this call starts no frame: nothing to record */',
      '\t}',
      '\tif (!st) {',
      '\t\tstruct kc_thread fresh = {};',
      '',
      `\t\tif (bpf_map_update_elem(&${MAP_NAMES.threads}, &tid, &fresh, BPF_NOEXIST))`,
      '\t\t\treturn 0; /* full: this thread is not tracked, so it gets no fault */',
      `\t\tst = bpf_map_lookup_elem(&${MAP_NAMES.threads}, &tid);`,
      '\t\tif (!st)',
      '\t\t\treturn 0;',
      '\t}',
      '\tif (active >= KC_MAX_FRAMES)',
      '\t\treturn 0;',
      '\tst->sp[active & (KC_MAX_FRAMES - 1)] = here;',
      '\tst->active = active + 1;',
      '\tif (active + 1 == KC_CHAIN_LENGTH)',
      '\t\tkc_chain_complete(1);',
      '\treturn 0;',
    );
    return body;
  }

  /** How a program finds its own stack address (see struct kc_thread). */
  private frameAddress(): string[] {
    if (this.mode === 'trampoline') {
      return [
        '/* fentry, fexit and fmod_ret get ctx on their trampoline\'s stack frame: one address per call,',
        '   the same for a call\'s entry and exit, below every caller\'s. */',
        '#define KC_FRAME_ADDR ((__u64)ctx)',
        '#define KC_EXIT_FRAME_ADDR ((__u64)ctx)',
      ];
    }
    return [
      '/* A kprobe at function entry sees sp at the return address; its kretprobe sees sp just above it. */',
      '#define KC_FRAME_ADDR ((__u64)PT_REGS_SP(ctx))',
      '#define KC_EXIT_FRAME_ADDR ((__u64)PT_REGS_SP(ctx))',
    ];
  }

  private site(site: InjectionSite, hasChain: boolean, probability: number, times: number, check: string[] = [], sitePredicate?: SitePredicate, sitePath = 'spec.failKernRequest.callchain[0].predicate'): void {
    // A site predicate (a last frame without funcname) reads the site's own arguments.
    const pred = sitePredicate
      ? emitPredicate({ funcname: site.funcname, ...sitePredicate }, sitePath, 'kc_streq_site')
      : null;
    if (pred) this.emit(...pred.compares.map((c: StringCompare) => emitStringCompareFunction(c) + '\n'));
    if (hasChain) {
      // Shared by every exit program: emitted once, before the first program that uses it.
      const at = this.lines.findIndex((l) => l.startsWith('/* Entering '));
      this.lines.splice(at, 0, ...CHAIN_LEAVE);
    }
    const kind: HookKind = this.mode === 'trampoline' ? 'fmod_ret' : 'kprobe';
    this.emit(`/* The injection site: ${site.prototype} */`);
    // A syscall returns long: an int program's -ENOMEM would reach user space as 4294967284.
    this.program(kind, site.funcname, 'kc_site', 'site', site.form === 'syscall-entry' && kind === 'fmod_ret' ? 'long' : 'int');
    if (hasChain) {
      this.emit(
        '\t/* 0. no target thread has the whole chain active: nothing can fail (one load, no hashing) */',
        '\tstruct kc_chain *chain = kc_chain_get();',
        '',
        '\tif (!chain || !chain->complete)',
        '\t\treturn 0;',
      );
    }
    if (site.bioArgIndex !== null) {
      this.emit(
        `\tstruct bio *bio = (struct bio *)${this.arg(site.bioArgIndex)};`,
        '',
        '\t/* 1. target: the task, or the cgroup the bio is charged to (writeback) */',
        '\tif (!kc_task_targeted() && !kc_bio_targeted(bio))',
        '\t\treturn 0;',
      );
    } else {
      this.emit('\t/* 1. target cgroup: the cheapest per-task rejection for every other task */', '\tif (!kc_task_targeted())', '\t\treturn 0;');
    }
    this.emit('\t/* 2. interrupt context: current is a bystander */', '\tif (!kc_in_task())', '\t\treturn 0;');
    if (site.gfpArgIndex !== null) {
      this.emit(
        '\t/* 3. the kernel may not fail a __GFP_NOFAIL allocation */',
        `\tif ((__u64)${this.arg(site.gfpArgIndex)} & KC_GFP_NOFAIL)`,
        '\t\treturn 0;',
      );
    }
    this.emit('\tkc_count(false);', ...check);
    if (hasChain) {
      this.emit(
        '\t/* 4. the whole call chain must be active in this thread */',
        '\t__u64 tid = bpf_get_current_pid_tgid();',
        `\tstruct kc_thread *st = bpf_map_lookup_elem(&${MAP_NAMES.threads}, &tid);`,
        '',
        '\tif (!st)',
        '\t\treturn 0;',
        '\tkc_heal(st, KC_FRAME_ADDR);',
        '\tif (st->active != KC_CHAIN_LENGTH)',
        '\t\treturn 0;',
      );
    }
    if (pred && sitePredicate) {
      this.emit(`\t/* 4b. the site predicate: ${describeExpr(sitePredicate.predicate)} */`);
      for (const p of pred.params) {
        const type = emitCType(p.type, 'spec.failKernRequest.callchain[-1].parameters');
        this.emit(`\t${type} ${paramVar(p.name)} = (${type})${this.arg(p.index)};`);
      }
      this.emit(`\tif (!(${pred.code}))`, '\t\treturn 0;');
    }
    if (probability > 0 && probability < 100) {
      this.emit('\t/* 5. probability */', '\tif (bpf_get_prandom_u32() % 100 >= KC_PROBABILITY)', '\t\treturn 0;');
    }
    if (times > 0) {
      this.emit(
        '\t/* 6. times: an exact cap, claimed atomically */',
        '\t__u32 zero = 0;',
        `\tstruct kc_claims *claims = bpf_map_lookup_elem(&${MAP_NAMES.claims}, &zero);`,
        '',
        '\tif (!claims || claims->claimed >= KC_TIMES)',
        '\t\treturn 0;',
        '\tif (__sync_fetch_and_add(&claims->claimed, 1) >= KC_TIMES)',
        '\t\treturn 0;',
      );
    }
    this.emit('\tkc_count(true);');
    if (this.mode === 'trampoline') {
      this.emit(`\treturn ${site.failValue};`, '}');
    } else {
      this.emit(`\tbpf_override_return(ctx, (unsigned long)(${site.failValue}));`, '\treturn 0;', '}');
    }
  }
}

const CHAIN_LEAVE = [
  '/* Leaving a chain function: drops its own call and any deeper one whose exit was missed. */',
  'static __always_inline void kc_chain_leave(__u64 here)',
  '{',
  '\tif (!kc_in_task())',
  '\t\treturn; /* interrupt stacks are not the task\'s: entries there were never recorded */',
  '\t__u64 tid = bpf_get_current_pid_tgid();',
  `\tstruct kc_thread *st = bpf_map_lookup_elem(&${MAP_NAMES.threads}, &tid);`,
  '',
  '\tif (!st)',
  '\t\treturn;',
  '\tkc_heal(st, here);',
  '\tif (!st->active)',
  `\t\tbpf_map_delete_elem(&${MAP_NAMES.threads}, &tid);`,
  '}',
  '',
  '/* The current thread is exiting: forget its state, whatever frames it was inside. */',
  'static __always_inline void kc_thread_gone(void)',
  '{',
  '\t__u64 tid = bpf_get_current_pid_tgid();',
  `\tstruct kc_thread *st = bpf_map_lookup_elem(&${MAP_NAMES.threads}, &tid);`,
  '',
  '\tif (!st)',
  '\t\treturn;',
  '\tif (st->active == KC_CHAIN_LENGTH)',
  '\t\tkc_chain_complete(-1);',
  `\tbpf_map_delete_elem(&${MAP_NAMES.threads}, &tid);`,
  '}',
  '',
];
