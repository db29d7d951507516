// Builders for KernelChaos manifests in tests: the seed example, and a deep-merge to vary it.
import type { FieldError } from '../../src/api/types.js';
import type { KernelChaosVerdict } from '../../src/api/validate.js';
import { seedChaos } from '../fixtures/seed.js';

export type Json = Record<string, unknown>;

/** Chaos Mesh's documented KernelChaos example (the seed). */
export function seed(): Json {
  return seedChaos() as unknown as Json;
}

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge; a key set to undefined is deleted. */
export function merge(base: Json, patch: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete out[k];
    else if (isRecord(v) && isRecord(out[k])) out[k] = merge(out[k] as Json, v);
    else out[k] = v;
  }
  return out;
}

/** The seed with `spec` patched. */
export function withSpec(spec: Json): Json {
  return merge(seed(), { spec });
}

export function errorsOf(verdict: KernelChaosVerdict | { valid: boolean; errors?: FieldError[] }): FieldError[] {
  if (verdict.valid) throw new Error(`expected invalid, got valid`);
  return (verdict as { errors: FieldError[] }).errors;
}

export function paths(verdict: KernelChaosVerdict | { valid: boolean; errors?: FieldError[] }): string[] {
  return errorsOf(verdict).map((e) => e.path);
}

/** The message for `path`, failing when there is none. */
export function messageAt(verdict: KernelChaosVerdict | { valid: boolean; errors?: FieldError[] }, path: string): string {
  const found = errorsOf(verdict).filter((e) => e.path === path);
  if (found.length === 0) throw new Error(`no error at ${path}; errors: ${JSON.stringify(errorsOf(verdict))}`);
  return found.map((e) => e.message).join(' | ');
}
