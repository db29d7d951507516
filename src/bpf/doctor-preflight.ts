// One-call check for commands about to arm a fault (`run`, the companion): can this failtype work
// on this kernel, and if not, what the user should read. Reuses the doctor's facts and judgement;
// skips the toolchain probes (clang/bpftool versions), which the compile step reports itself.
import { gatherKernelFacts, type GatherOptions } from './kernel-facts.js';
import { diagnose, diagnoseChain, type FailtypeDiagnosis, type FrameProblem } from './doctor.js';
import type { FailType } from './sites.js';
import type { ParsedFailKernRequest } from '../api/predicate/ast.js';

export type Preflight =
  | { ok: true; diagnosis: FailtypeDiagnosis; warnings: string[] }
  | { ok: false; diagnosis: FailtypeDiagnosis; frameProblems: FrameProblem[]; warnings: string[]; message: string };

/** Gathers the kernel facts (live probes included unless told otherwise) and judges one failtype. */
export async function preflightFailtype(failtype: FailType, options: GatherOptions = {}): Promise<Preflight> {
  return preflightRequest({ failtype, callchain: [] }, options);
}

/**
 * Judges a whole request: its failtype's site, and every call-chain frame (is it a function of
 * this kernel; can it be hooked the way the site will be). `message` names the manifest fields.
 */
export async function preflightRequest(
  request: Pick<ParsedFailKernRequest, 'failtype' | 'callchain'>,
  options: GatherOptions = {},
): Promise<Preflight> {
  const chain = request.callchain.map((f) => f.funcname);
  const facts = await gatherKernelFacts({ toolchain: false, ...options, functions: chain });
  const diagnosis = diagnose(facts).failtypes[request.failtype];
  const frames = diagnoseChain(facts, request.failtype, chain, diagnosis.via);
  const warnings = [...diagnosis.warnings, ...frames.warnings];
  if (diagnosis.verdict !== 'fails' && frames.problems.length === 0) return { ok: true, diagnosis, warnings };
  const lines: string[] = [];
  if (diagnosis.verdict === 'fails') {
    lines.push(
      `failtype ${request.failtype} (${diagnosis.site}) cannot be injected on this kernel (${facts.release ?? 'unknown release'}):`,
      ...diagnosis.problems.map((p) => `  - ${p}`),
      'remedies:',
      ...diagnosis.remedies.map((r) => `  - ${r}`),
    );
  }
  for (const p of frames.problems) lines.push(`${p.path}: ${p.message}`);
  lines.push('run `kernelchaos doctor` for the full report');
  return { ok: false, diagnosis, frameProblems: frames.problems, warnings, message: lines.join('\n') };
}
