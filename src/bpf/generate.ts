// KernelChaos failKernRequest -> one BPF C program (libbpf CO-RE style). Pure: no I/O.
//
// Order of checks at the injection site, cheapest rejection first for everyone who is not a target:
//   0. is `times` used up? (one load; gone when times is 0: the verifier sees the setting)
//   0b. with a call chain: does any target thread have the whole chain active? (one load from an
//      array map; the frame programs only track target threads, so this gate is itself
//      cgroup-filtered and lets every task, target or not, leave at once while no chain is complete);
//   0c. in the syscall-entry form, a predicate on that frame (the call's own arguments);
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
import { LIMITS, MAP_NAMES, type ProgramSettings } from './layout.js';
import { RUNTIME_INCLUDE } from './runtime-headers.js';
import { V1_SUBSYS_ENUMERATOR, type BpfTargetHierarchy } from './cgroup-hierarchy.js';
import { siteFor, syscallEntrySite, type InjectionSite, type SiteForm } from './sites.js';

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
  /** The numbers the loader writes into kc_settings (.rodata) before load: not in `source`. */
  settings: Omit<ProgramSettings, 'retTrampoline'>;
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
  if (req.callchain.length > LIMITS.frames) {
    throw new GenerateError(`${base}.callchain`, `has ${req.callchain.length} frames; at most ${LIMITS.frames}`);
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
  const settings = { probability, times, chainLength: entryForm ? 0 : req.callchain.length };
  if (entryForm) return out.entry(req, site, settings);
  return out.full(req, site, settings);
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

type Settings = GeneratedProgram['settings'];

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

  /** `returns`: long for an fmod_ret whose function returns long (a syscall): r0 is its whole result. */
  private program(kind: HookKind, funcname: string, program: string, role: ProgramHook['role'], returns: 'int' | 'long' = 'int'): void {
    const section = `${kind}/${funcname}`;
    this.hooks.push({ program, section, kind, funcname, role });
    const param = kind === 'raw_tp' ? 'void *ctx' : this.ctxParam;
    this.emit(`SEC("${section}")`, `${returns} ${program}(${param})`, '{');
  }

  private result(req: ParsedFailKernRequest, site: InjectionSite, maps: string[], settings: Settings): GeneratedProgram {
    const functions = [...new Set(this.hooks.filter((h) => h.kind !== 'raw_tp').map((h) => h.funcname))];
    return { source: this.lines.join('\n') + '\n', mode: this.mode, failtype: req.failtype, site, hooks: this.hooks, functions, maps, settings };
  }

  /** What this file is, then the defines kc_runtime.bpf.h reads and the include. No per-spec numbers. */
  private header(req: ParsedFailKernRequest, site: InjectionSite, hasChain: boolean): void {
    this.emit(
      '// SPDX-License-Identifier: GPL-2.0',
      '// Generated by kernelchaos from a KernelChaos failKernRequest. Do not edit.',
      `// failtype ${req.failtype}: ${site.effect}, at ${site.funcname} (${this.mode === 'trampoline' ? 'fmod_ret' : 'kprobe + bpf_override_return'}).`,
      ...(req.callchain.length === 0
        ? ['// call chain: none (every call of the site in a target cgroup)']
        : req.callchain.map((f, i) => `// frame ${i}: ${printable(f.funcname)}${f.predicate ? ` if ${describeExpr(f.predicate)}` : ''}`)),
      '// probability, times and the chain length are not in this file: the loader writes them into',
      '// kc_settings (.rodata) before load, so one object serves every spec with this chain.',
      `#define ${this.mode === 'trampoline' ? 'KC_ATTACH_TRAMPOLINE' : 'KC_ATTACH_KPROBE'} 1`,
      `#define KC_CHAIN ${hasChain ? 1 : 0}`,
      ...(this.target.kind === 'v1'
        ? [`/* targets are cgroups of the v1 ${this.target.controller} hierarchy (kc_target_v1.bpf.h) */`, `#define KC_TARGET_V1_SUBSYS ${V1_SUBSYS_ENUMERATOR[this.target.controller]}`]
        : []),
      `#include "${RUNTIME_INCLUDE}" /* maps, helpers, chain bookkeeping: kernelchaos src/bpf/ */`,
      '',
    );
  }

  emptySite(req: ParsedFailKernRequest, site: InjectionSite): GeneratedProgram {
    this.header({ ...req, callchain: [] }, site, false);
    const kind: HookKind = this.mode === 'trampoline' ? 'fmod_ret' : 'kprobe';
    this.emit('/* The cost floor: a site program that does nothing. */');
    this.program(kind, site.funcname, 'kc_site', 'site');
    this.emit('\treturn 0;', '}');
    return this.result(req, site, [], { probability: 0, times: 0, chainLength: 0 });
  }

  full(req: ParsedFailKernRequest, site: InjectionSite, settings: Settings): GeneratedProgram {
    const hasChain = req.callchain.length > 0;
    this.header(req, site, hasChain);

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
    this.site(site, hasChain, [], req.site, `spec.failKernRequest.callchain[${req.callchain.length}].predicate`);
    const maps: string[] = [MAP_NAMES.targets, MAP_NAMES.verdicts, MAP_NAMES.config, MAP_NAMES.counters, MAP_NAMES.claims];
    if (hasChain) maps.push(MAP_NAMES.threads, MAP_NAMES.chain);
    // Site first in the hook list (for `render --hooks`); the loader attaches by ATTACH_ORDER.
    const siteHook = this.hooks.pop();
    if (siteHook) this.hooks.unshift(siteHook);
    return this.result(req, site, maps, settings);
  }

  /** The syscall-entry form: one program on the outermost frame that fails it (its predicate, if any, checked there). */
  entry(req: ParsedFailKernRequest, site: InjectionSite, settings: Settings): GeneratedProgram {
    const outer = req.callchain[0];
    this.header(req, site, false);
    const check: string[] = [];
    if (outer?.predicate) {
      const pred = emitPredicate(outer, 'spec.failKernRequest.callchain[0].predicate', 'kc_streq_0_0');
      if (pred) {
        if (pred.compares.length > 0) this.emit(...pred.compares.map((c: StringCompare) => emitStringCompareFunction(c) + '\n'), '');
        // Before the target check: reading the syscall's own arguments is the cheaper rejection.
        check.push(`\t/* 0c. frame 0: ${describeExpr(outer.predicate)} (the call's own arguments: cheaper than the target check) */`);
        for (const p of pred.params) {
          const type = emitCType(p.type, 'spec.failKernRequest.callchain[0].parameters');
          check.push(`\t${type} ${paramVar(p.name)} = (${type})${this.arg(p.index)};`);
        }
        check.push(`\tif (!(${pred.code}))`, '\t\treturn 0;');
      }
    }
    this.site(site, false, check);
    const maps: string[] = [MAP_NAMES.targets, MAP_NAMES.verdicts, MAP_NAMES.config, MAP_NAMES.counters, MAP_NAMES.claims];
    return this.result(req, site, maps, settings);
  }

  /** The body of the entry program for one function: which frame (if any) this call makes active. */
  private entryBody(g: FunctionGroup, k: number, compares: string[]): string[] {
    const body: string[] = [
      '\tif (!kc_task_targeted() || !kc_in_task())',
      '\t\treturn 0;',
      '\t__u64 tid = bpf_get_current_pid_tgid();',
      '\t__u64 here = KC_FRAME_ADDR;',
      '\t__u32 active;',
      '\tstruct kc_thread *st = kc_frame_begin(tid, here, &active);',
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
    body.push('\tkc_frame_mark(tid, st, active, here, mark);', '\treturn 0;');
    return body;
  }

  private site(site: InjectionSite, hasChain: boolean, check: string[] = [], sitePredicate?: SitePredicate, sitePath = 'spec.failKernRequest.callchain[0].predicate'): void {
    // A site predicate (a last frame without funcname) reads the site's own arguments.
    const pred = sitePredicate
      ? emitPredicate({ funcname: site.funcname, ...sitePredicate }, sitePath, 'kc_streq_site')
      : null;
    if (pred) this.emit(...pred.compares.map((c: StringCompare) => emitStringCompareFunction(c) + '\n'));
    const kind: HookKind = this.mode === 'trampoline' ? 'fmod_ret' : 'kprobe';
    this.emit(`/* The injection site: ${site.prototype} */`);
    // A syscall returns long: an int program's -ENOMEM would reach user space as 4294967284.
    this.program(kind, site.funcname, 'kc_site', 'site', site.form === 'syscall-entry' && kind === 'fmod_ret' ? 'long' : 'int');
    this.emit('\t/* 0. `times` used up: nothing can fail any more (one load; the verifier drops it without times) */', '\tif (kc_budget_spent())', '\t\treturn 0;');
    if (hasChain) {
      this.emit('\t/* 0b. no target thread has the whole chain active: nothing can fail (one load, no hashing) */', '\tif (kc_chain_none_complete())', '\t\treturn 0;');
    }
    this.emit(...check);
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
      this.emit('\t/* 3. the kernel may not fail a __GFP_NOFAIL allocation */', `\tif ((__u64)${this.arg(site.gfpArgIndex)} & KC_GFP_NOFAIL)`, '\t\treturn 0;');
    }
    this.emit('\tkc_count(false);');
    if (hasChain) {
      this.emit('\t/* 4. the whole call chain must be active in this thread */', '\tif (!kc_chain_holds(KC_FRAME_ADDR))', '\t\treturn 0;');
    }
    if (pred && sitePredicate) {
      this.emit(`\t/* 4b. the site predicate: ${describeExpr(sitePredicate.predicate)} */`);
      for (const p of pred.params) {
        const type = emitCType(p.type, 'spec.failKernRequest.callchain[-1].parameters');
        this.emit(`\t${type} ${paramVar(p.name)} = (${type})${this.arg(p.index)};`);
      }
      this.emit(`\tif (!(${pred.code}))`, '\t\treturn 0;');
    }
    this.emit(
      '\t/* 5. probability, 6. times: kc_settings, constants to the verifier (it drops what they rule out) */',
      '\tif (!kc_roll() || !kc_claim())',
      '\t\treturn 0;',
      '\tkc_count(true);',
    );
    if (this.mode === 'trampoline') {
      this.emit(`\treturn ${site.failValue};`, '}');
    } else {
      this.emit(`\tbpf_override_return(ctx, (unsigned long)(${site.failValue}));`, '\treturn 0;', '}');
    }
  }
}
