// Pod field selectors with the apiserver's semantics: only the fields the apiserver indexes for
// pods, compared as strings, `=`/`==` equal and `!=` not equal (kubectl --field-selector).
import type { V1Pod } from '@kubernetes/client-node';

/** The pod fields the apiserver accepts in a field selector (pkg/registry/core/pod: PodToSelectableFields). */
export const POD_SELECTABLE_FIELDS = [
  'metadata.name',
  'metadata.namespace',
  'spec.nodeName',
  'spec.restartPolicy',
  'spec.schedulerName',
  'spec.serviceAccountName',
  'spec.hostNetwork',
  'status.phase',
  'status.podIP',
  'status.nominatedNodeName',
] as const;
export type PodSelectableField = (typeof POD_SELECTABLE_FIELDS)[number];

export interface FieldRequirement {
  field: string;
  operator: '=' | '!=';
  value: string;
}

export function isPodSelectableField(field: string): field is PodSelectableField {
  return (POD_SELECTABLE_FIELDS as readonly string[]).includes(field);
}

/** The string value(s) a field has on this pod. */
export function podFieldValues(pod: V1Pod, field: PodSelectableField): string[] {
  switch (field) {
    case 'metadata.name':
      return [pod.metadata?.name ?? ''];
    case 'metadata.namespace':
      return [pod.metadata?.namespace ?? ''];
    case 'spec.nodeName':
      return [pod.spec?.nodeName ?? ''];
    case 'spec.restartPolicy':
      return [pod.spec?.restartPolicy ?? ''];
    case 'spec.schedulerName':
      return [pod.spec?.schedulerName ?? ''];
    case 'spec.serviceAccountName':
      return [pod.spec?.serviceAccountName ?? ''];
    case 'spec.hostNetwork':
      return [String(pod.spec?.hostNetwork ?? false)];
    case 'status.phase':
      return [pod.status?.phase ?? ''];
    case 'status.podIP':
      // The apiserver uses podIPs[0] (falling back to podIP for objects that only carry that).
      return [pod.status?.podIPs?.[0]?.ip ?? pod.status?.podIP ?? ''];
    case 'status.nominatedNodeName':
      return [pod.status?.nominatedNodeName ?? ''];
  }
}

/**
 * Chaos Mesh's `fieldSelectors` is a map of field -> value (equality). As an extension a key may
 * carry kubectl's operator (`status.phase!`: `Running` or `status.phase!=`: `Running` means not
 * equal), so every kubectl field selector can be written in the map.
 */
export function fieldRequirementsFromMap(map: Readonly<Record<string, string>>): FieldRequirement[] {
  return Object.entries(map).map(([rawKey, value]) => {
    const key = rawKey.trim();
    if (key.endsWith('!=')) return { field: key.slice(0, -2).trim(), operator: '!=', value };
    if (key.endsWith('!')) return { field: key.slice(0, -1).trim(), operator: '!=', value };
    if (key.endsWith('==')) return { field: key.slice(0, -2).trim(), operator: '=', value };
    if (key.endsWith('=')) return { field: key.slice(0, -1).trim(), operator: '=', value };
    return { field: key, operator: '=', value };
  });
}

export type ParsedFieldSelector = { ok: true; requirements: FieldRequirement[] } | { ok: false; message: string };

/** Parses `a=b,c!=d` (kubectl --field-selector / `?fieldSelector=`), checking the fields are selectable. */
export function parseFieldSelector(text: string): ParsedFieldSelector {
  const requirements: FieldRequirement[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) return { ok: false, message: `invalid field selector '${part}': use field=value or field!=value` };
    requirements.push({ field: m[1] as string, operator: m[2] === '!=' ? '!=' : '=', value: (m[3] as string).trim() });
  }
  const bad = unsupportedFields(requirements);
  if (bad.length > 0) return { ok: false, message: unsupportedMessage(bad) };
  return { ok: true, requirements };
}

export function unsupportedFields(reqs: readonly FieldRequirement[]): string[] {
  return reqs.map((r) => r.field).filter((f) => !isPodSelectableField(f));
}

export function unsupportedMessage(fields: readonly string[]): string {
  return `field label not supported for pods: ${fields.join(', ')} (supported: ${POD_SELECTABLE_FIELDS.join(', ')})`;
}

/** All requirements hold. An unsupported field never matches (the apiserver rejects the list). */
export function fieldRequirementsMatch(reqs: readonly FieldRequirement[], pod: V1Pod): boolean {
  return reqs.every((r) => {
    if (!isPodSelectableField(r.field)) return false;
    const values = podFieldValues(pod, r.field);
    const equal = values.includes(r.value);
    return r.operator === '=' ? equal : !equal;
  });
}
