// Validation of KernelChaos and KernelChaosPolicy documents: the same verdict offline (the CLI),
// in the admission webhook and in the companion. Every error at once, each with the JSON path the
// user wrote and what would be valid; never throws, whatever the input.
import type { FieldError, KernelChaos, KernelChaosPolicy } from './types.js';
import type { ParsedFailKernRequest } from './predicate/ast.js';
import { KernelChaosPolicySchema, KernelChaosSchema } from './schema.js';
import { applyKernelChaosDefaults } from './defaults.js';
import { parseFailKernRequest } from './predicate/index.js';
import { structuralErrors } from './validation/structural.js';
import { kernelChaosRules, type ValidationContext } from './validation/kernelchaos-rules.js';
import { policyRules } from './validation/policy-rules.js';
import { describeValue, isRecord, joinIndex, joinKey } from './validation/paths.js';
export type { ValidationContext } from './validation/kernelchaos-rules.js';

export type KernelChaosVerdict =
  | { valid: true; chaos: KernelChaos; parsed: ParsedFailKernRequest; warnings: string[] }
  | { valid: false; errors: FieldError[]; warnings: string[] };

export type KernelChaosPolicyVerdict =
  | { valid: true; policy: KernelChaosPolicy; warnings: string[] }
  | { valid: false; errors: FieldError[]; warnings: string[] };

export { MAX_CALLCHAIN_FRAMES, MAX_WARNING_LENGTH, headerProblem } from './validation/kernelchaos-rules.js';

/** Objects nested deeper than this are refused before any schema walk (no manifest nests past ~10). */
const MAX_NESTING = 64;
/** Fields and list items in one object: a real manifest has hundreds; this bounds the work per object. */
const MAX_VALUES = 50_000;
/** Errors reported per object; the rest are counted, so a garbage object cannot produce megabytes of them. */
const MAX_ERRORS = 100;

/** `context: 'local'` relaxes only what has no meaning outside a cluster (see ValidationContext). */
export function validateKernelChaos(input: unknown, options: { context?: ValidationContext } = {}): KernelChaosVerdict {
  try {
    const guard = topLevelProblem(input, 'KernelChaos', 'chaos-mesh.org/v1alpha1');
    if (guard) return { valid: false, errors: [guard], warnings: [] };
    const object = input as Record<string, unknown>;
    const rules = kernelChaosRules(object, options.context ?? 'cluster');
    const structure = structuralErrors(KernelChaosSchema, object);
    const errors = [...structure.errors, ...rules.errors];
    if (errors.length > 0) return { valid: false, errors: capErrors(errors, structure.omitted), warnings: rules.warnings };
    const chaos = applyKernelChaosDefaults(object as unknown as KernelChaos);
    return { valid: true, chaos, parsed: parseFailKernRequest(chaos.spec.failKernRequest), warnings: rules.warnings };
  } catch (e) {
    return { valid: false, errors: [internalError(e)], warnings: [] };
  }
}

export function validateKernelChaosPolicy(input: unknown): KernelChaosPolicyVerdict {
  try {
    const guard = topLevelProblem(input, 'KernelChaosPolicy', 'kernelchaos.dev/v1alpha1');
    if (guard) return { valid: false, errors: [guard], warnings: [] };
    const object = input as Record<string, unknown>;
    const structure = structuralErrors(KernelChaosPolicySchema, object);
    const errors = [...structure.errors, ...policyRules(object)];
    if (errors.length > 0) return { valid: false, errors: capErrors(errors, structure.omitted), warnings: [] };
    return { valid: true, policy: object as unknown as KernelChaosPolicy, warnings: [] };
  } catch (e) {
    return { valid: false, errors: [internalError(e)], warnings: [] };
  }
}

/** What must hold before a schema walk: an object, not absurdly nested. */
export function topLevelProblem(input: unknown, kind: string, apiVersion: string): FieldError | null {
  if (!isRecord(input)) {
    return { path: '', message: `expected a ${kind} object (apiVersion: ${apiVersion}, kind, metadata, spec), got ${describeValue(input)}` };
  }
  const shape = shapeProblem(input);
  if (shape !== null) return shape;
  return null;
}

/** A value nested deeper than MAX_NESTING, or more than MAX_VALUES values in all. Iterative: no stack overflow. */
function shapeProblem(root: object): FieldError | null {
  const stack: { value: object; depth: number; path: string }[] = [{ value: root, depth: 0, path: '' }];
  // A cycle (possible only for programmatic input) ends at the value limit instead of looping.
  let values = 0;
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop() as { value: object; depth: number; path: string };
    if (depth > MAX_NESTING) return { path, message: `nests deeper than ${MAX_NESTING} levels` };
    const isArray = Array.isArray(value);
    for (const [k, v] of Object.entries(value)) {
      if (++values > MAX_VALUES) return { path: '', message: `has more than ${MAX_VALUES} fields and list items: far more than any manifest` };
      if (typeof v === 'object' && v !== null) {
        stack.push({ value: v as object, depth: depth + 1, path: isArray ? joinIndex(path, Number(k)) : joinKey(path, k) });
      }
    }
  }
  return null;
}

/** Sorted, at most MAX_ERRORS, and a last line counting the rest. */
export function capErrors(errors: FieldError[], omitted: number): FieldError[] {
  const sorted = sortErrors(errors);
  const more = Math.max(0, sorted.length - MAX_ERRORS) + omitted;
  const shown = sorted.slice(0, MAX_ERRORS);
  return more > 0 ? [...shown, { path: '', message: `and ${more} more errors` }] : shown;
}

/** Stable order: by path as written (document order is lost in maps), then message. */
function sortErrors(errors: FieldError[]): FieldError[] {
  return errors.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.message < b.message ? -1 : a.message > b.message ? 1 : 0));
}

export function internalError(e: unknown): FieldError {
  // Reached only through a bug or an exotic object (a throwing getter); still an answer, not a crash.
  const why = e instanceof Error ? e.message : String(e);
  return { path: '', message: `could not be validated: ${why.slice(0, 200)}` };
}
