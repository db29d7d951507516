// Kubernetes label selector semantics (apimachinery labels.Requirement): set-based requirements over
// a string map, plus a parser for the `?labelSelector=` text form (`a=b,c!=d,e in (x,y),!f`).
// Hand-written because @kubernetes/client-node ships no selector evaluator and this is small.
import type { LabelSelectorRequirement } from '../api/types.js';

export type RequirementOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface Requirement {
  key: string;
  operator: RequirementOperator;
  values: readonly string[];
}

type StringMap = Readonly<Record<string, string>> | undefined | null;

function has(map: StringMap, key: string): map is Readonly<Record<string, string>> {
  return map !== undefined && map !== null && Object.prototype.hasOwnProperty.call(map, key);
}

/** One requirement against a label (or annotation) map, exactly as apimachinery evaluates it. */
export function requirementMatches(req: Requirement, labels: StringMap): boolean {
  switch (req.operator) {
    case 'In':
      return has(labels, req.key) && req.values.includes(labels[req.key] as string);
    case 'NotIn':
      // A missing key satisfies NotIn, as in Kubernetes.
      return !has(labels, req.key) || !req.values.includes(labels[req.key] as string);
    case 'Exists':
      return has(labels, req.key);
    case 'DoesNotExist':
      return !has(labels, req.key);
  }
}

/** Every `key: value` of `wanted` is present in `actual` (matchLabels / annotationSelectors). */
export function mapMatches(wanted: StringMap, actual: StringMap): boolean {
  if (!wanted) return true;
  for (const [key, value] of Object.entries(wanted)) {
    if (!has(actual, key) || actual[key] !== value) return false;
  }
  return true;
}

export function fromSchemaRequirement(r: LabelSelectorRequirement): Requirement {
  return { key: r.key, operator: r.operator, values: r.values ?? [] };
}

export function requirementsMatch(reqs: readonly Requirement[], labels: StringMap): boolean {
  return reqs.every((r) => requirementMatches(r, labels));
}

export type ParsedLabelSelector = { ok: true; requirements: Requirement[] } | { ok: false; message: string };

const KEY = /^([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?\/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/;

/**
 * Parses the text form used by `kubectl -l` and `?labelSelector=`. `a=b`/`a==b` become `In [b]`,
 * `a!=b` becomes `NotIn [b]`, `a` Exists, `!a` DoesNotExist, `a in (x,y)`, `a notin (x,y)`.
 */
export function parseLabelSelector(text: string): ParsedLabelSelector {
  const requirements: Requirement[] = [];
  const parts = splitTopLevel(text.trim());
  for (const raw of parts) {
    const part = raw.trim();
    if (part === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part))) {
      const values = (m[3] as string).split(',').map((v) => v.trim()).filter((v) => v !== '');
      requirements.push({ key: m[1] as string, operator: m[2] === 'in' ? 'In' : 'NotIn', values });
    } else if ((m = /^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(part))) {
      requirements.push({ key: m[1] as string, operator: m[2] === '!=' ? 'NotIn' : 'In', values: [m[3] as string] });
    } else if ((m = /^!\s*([^\s!=()]+)$/.exec(part))) {
      requirements.push({ key: m[1] as string, operator: 'DoesNotExist', values: [] });
    } else if (KEY.test(part)) {
      requirements.push({ key: part, operator: 'Exists', values: [] });
    } else {
      return { ok: false, message: `cannot parse label selector requirement '${part}' (use key=value, key!=value, key in (a,b), key or !key)` };
    }
    const key = (requirements[requirements.length - 1] as Requirement).key;
    if (!KEY.test(key)) return { ok: false, message: `invalid label key '${key}' in label selector` };
  }
  return { ok: true, requirements };
}

/** Splits on commas that are not inside `( )`. */
function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}
