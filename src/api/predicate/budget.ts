// What a call chain's predicates cost once compiled, checked at validation so the webhook never
// admits a program the BPF verifier (or clang, in reasonable time) cannot take. Every STRCMP is
// unrolled into one compare per byte, and all frames on one kernel function share one program, so
// the cost is counted per function and for the whole request.
//
// Calibrated in the test VM (Linux 6.1, clang 14; test/vm/budget-calibration.ts, table in
// test/fixtures/budget-calibration.json): a program takes 1.8-2.2 BPF instructions per cost unit
// (a 255-byte STRCMP 561 instructions, an 8-byte one 38, `name->len == n ||` 9) plus ~200 of its
// own. The verifier refuses a program once one jump spans more than 32767 instructions (BPF jump
// offsets are 16-bit: "jump out of range"): 29446 instructions (13932 units) loaded, 53557
// (30224 units) did not. MAX_PROGRAM_COST is about 22000 instructions, two thirds of that range.
import type { Expr } from './ast.js';

/** Cost units one program (all frames on one kernel function) may take: about 22000 BPF instructions. */
export const MAX_PROGRAM_COST = 10_000;
/**
 * Cost units a whole request may take: its programs are compiled together in one clang run, which
 * took 17-47 s for 27000 units on a loaded 2-core machine (CLANG_TIMEOUT_MS is 120 s).
 */
export const MAX_REQUEST_COST = 20_000;
/** A STRCMP's own instructions besides its byte compares (the bounded string read and its checks), in cost units. */
export const STRCMP_COST = 8;

/** A predicate's cost: one unit per expression node, plus STRCMP_COST and one per compared byte of each STRCMP/STRNCMP. */
export function predicateCost(e: Expr): number {
  // Iterative: a predicate is bounded in depth, but nothing here should depend on that.
  let cost = 0;
  const stack: Expr[] = [e];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    cost += 1;
    switch (node.kind) {
      case 'member': stack.push(node.object); break;
      case 'unary': stack.push(node.operand); break;
      case 'binary': stack.push(node.left, node.right); break;
      case 'conditional': stack.push(node.test, node.then, node.otherwise); break;
      case 'strcmp': {
        const bytes = Buffer.byteLength(node.literal, 'utf8') + 1;
        cost += STRCMP_COST + (node.length === null ? bytes : Math.min(node.length, bytes));
        stack.push(node.subject);
        break;
      }
      default: break;
    }
  }
  return cost;
}

export interface CostedFrame {
  index: number;
  funcname: string;
  predicate: Expr | null;
}

/** Why the chain is over budget (naming the cost and the limit), or null. */
export function budgetProblem(frames: readonly CostedFrame[]): string | null {
  const perFunction = new Map<string, { cost: number; frames: number[] }>();
  let total = 0;
  for (const f of frames) {
    const cost = f.predicate ? predicateCost(f.predicate) : 0;
    total += cost;
    const entry = perFunction.get(f.funcname) ?? { cost: 0, frames: [] };
    entry.cost += cost;
    entry.frames.push(f.index);
    perFunction.set(f.funcname, entry);
  }
  const unit = `(one per expression node and per compared string byte, ${STRCMP_COST} per STRCMP)`;
  for (const [funcname, { cost, frames: idx }] of perFunction) {
    if (cost > MAX_PROGRAM_COST) {
      const which = idx.length > 1 ? `the predicates of frames ${idx.join(', ')} (all on ${funcname}, one BPF program) cost` : `the predicate of frame ${idx[0]} (on ${funcname}) costs`;
      return `${which} ${cost} ${unit}; ` +
        `one program may cost at most ${MAX_PROGRAM_COST}, more than the BPF verifier accepts: use shorter literals, fewer STRCMPs, or STRNCMP with a short length`;
    }
  }
  if (total > MAX_REQUEST_COST) {
    return `the predicates cost ${total} ${unit} over ${frames.length} frames; a request may cost at most ${MAX_REQUEST_COST}: use shorter literals, fewer STRCMPs, or STRNCMP with a short length`;
  }
  return null;
}
