// Shared vocabulary of the companion: who an experiment is, which container a record is about,
// and how a manifest is validated (the webhook's validation, injected so this code stays pure).
import { createHash } from 'node:crypto';
import type { ParsedFailKernRequest } from '../api/predicate/ast.js';
import type { FieldError, KernelChaos } from '../api/types.js';

export interface ExperimentId {
  namespace: string;
  name: string;
  /** metadata.uid, or `namespace/name` for manifest files that carry none. */
  uid: string;
}

export interface ContainerKey {
  namespace: string;
  pod: string;
  container: string;
}

/** `namespace/pod/container`, the id Chaos Mesh's container records use. */
export function containerRecordId(c: ContainerKey): string {
  return `${c.namespace}/${c.pod}/${c.container}`;
}

export function experimentIdOf(chaos: KernelChaos): ExperimentId {
  const namespace = chaos.metadata.namespace ?? 'default';
  const name = chaos.metadata.name ?? '';
  return { namespace, name, uid: chaos.metadata.uid ?? `${namespace}/${name}` };
}

/** What src/api/validate.ts answers; the companion arms only `valid` experiments. */
export type ValidationOutcome =
  | { valid: true; chaos: KernelChaos; parsed: ParsedFailKernRequest; warnings: readonly unknown[] }
  | { valid: false; errors: readonly FieldError[]; warnings: readonly unknown[] };

export type Validate = (input: unknown) => ValidationOutcome;

/**
 * A stable digest of what the fault depends on: spec and generation. Any edit (manifest files have
 * no generation) gives a new key, so the old program is detached and a new one armed.
 */
export function injectionKey(chaos: KernelChaos): string {
  const id = experimentIdOf(chaos);
  const digest = createHash('sha256').update(canonicalJson(chaos.spec)).digest('hex').slice(0, 16);
  return `${id.uid}@${chaos.metadata.generation ?? 0}#${digest}`;
}

/** JSON with sorted object keys, so equal specs hash equally whatever order the YAML had. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
