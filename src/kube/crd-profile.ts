// Which KernelChaos CRD the cluster has, read from its schema at start-up: kernelchaos's own
// (standalone profile: status subresource, value int-or-string, scheduler) or Chaos Mesh's as its
// Helm chart installs it (beside-Chaos-Mesh profile: no status subresource, so status is written by
// updating the whole object; value a string; no scheduler). Pure: the CRD object in, the facts out.
// `prunedPaths` says which fields of an object such a CRD's structural schema would drop.
export type ProfileName = 'standalone' | 'chaos-mesh';
/** --crd-profile: detect, or insist on one (then detection must agree). */
export type ProfileChoice = 'auto' | ProfileName;
export const PROFILE_CHOICES: readonly ProfileChoice[] = ['auto', 'standalone', 'chaos-mesh'];

export type CrdProfile =
  | {
      profile: ProfileName;
      /** false: status is written with an update of the main resource, as Chaos Mesh does. */
      statusSubresource: boolean;
      valueType: 'int-or-string' | 'string';
      scheduler: boolean;
      schema: Schema;
    }
  | { profile: 'unknown'; reason: string };

export interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

export function detectProfile(crd: unknown): CrdProfile {
  const spec = record(record(crd)?.spec);
  if (!spec || spec.group !== 'chaos-mesh.org') return { profile: 'unknown', reason: 'not the kernelchaos.chaos-mesh.org CRD' };
  const versions = Array.isArray(spec.versions) ? spec.versions.map(record) : [];
  const v1 = versions.find((v) => v?.name === 'v1alpha1');
  const schema = record(record(v1?.schema)?.openAPIV3Schema) as Schema | undefined;
  if (!v1 || !schema) return { profile: 'unknown', reason: 'no v1alpha1 schema' };
  const statusSubresource = record(record(v1.subresources)?.status) !== undefined;
  const kernelSpec = schema.properties?.spec;
  const value = kernelSpec?.properties?.value;
  const valueType = value?.['x-kubernetes-int-or-string'] === true ? 'int-or-string' : 'string';
  const scheduler = kernelSpec?.properties?.scheduler !== undefined;
  // Ours has all three; Chaos Mesh's has none. A mix is someone else's edit: say so, do not guess.
  const ours = [statusSubresource, valueType === 'int-or-string', scheduler];
  if (ours.every(Boolean)) return { profile: 'standalone', statusSubresource, valueType, scheduler, schema };
  if (ours.every((x) => !x)) return { profile: 'chaos-mesh', statusSubresource, valueType, scheduler, schema };
  return { profile: 'unknown', reason: `a KernelChaos CRD of neither profile (status subresource ${statusSubresource}, value ${valueType}, scheduler ${scheduler})` };
}

/** The paths in `value` a structural schema would prune (unknown fields), as `status.a[0].b`. */
export function prunedPaths(schema: Schema, value: unknown): string[] {
  const out: string[] = [];
  prune(schema, value, '', out);
  return out;
}

/** `value` as the apiserver stores it under `schema`: unknown fields dropped (a copy; the input is untouched). */
export function pruneToSchema<T>(schema: Schema, value: T): T {
  return prune(schema, value, '', []) as T;
}

function prune(schema: Schema, value: unknown, path: string, pruned: string[]): unknown {
  if (schema['x-kubernetes-preserve-unknown-fields'] === true) return structuredClone(value);
  if (Array.isArray(value)) {
    const items = schema.items;
    return items ? value.map((v, i) => prune(items, v, `${path}[${i}]`, pruned)) : structuredClone(value);
  }
  const obj = record(value);
  if (!obj) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const child = schema.properties?.[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
    const p = path === '' ? k : `${path}.${k}`;
    if (!child) {
      if (schema.additionalProperties !== true && (schema.properties !== undefined || schema.type === 'object')) pruned.push(p);
      else out[k] = structuredClone(v);
      continue;
    }
    out[k] = prune(child, v, p, pruned);
  }
  return out;
}
