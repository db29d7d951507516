// Turns manifest text into the objects the stores keep: multi-document YAML or JSON, `kind: List`
// wrappers, shape checks against the schemas. Bad documents become problems naming the file and
// document, never exceptions.
import { parseAllDocuments } from 'yaml';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { KernelChaosPolicySchema, KernelChaosSchema } from '../api/schema.js';
import type { KindMap, WatchedKind } from './store.js';
import { effectiveNamespace, isWatchedKind, KIND_INFO } from './objects.js';

export interface StoredObject {
  kind: WatchedKind;
  object: KindMap[WatchedKind];
  /** file#document (1-based), for messages. */
  source: string;
}

export interface DocumentProblem {
  source: string;
  message: string;
}

export interface ParsedText {
  objects: StoredObject[];
  problems: DocumentProblem[];
  /** Documents of kinds the stores do not keep (Deployments, Services...): skipped silently. */
  ignored: number;
}

const checkKernelChaos = TypeCompiler.Compile(KernelChaosSchema);
const checkPolicy = TypeCompiler.Compile(KernelChaosPolicySchema);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why `value` does not have the schema's shape (first error, field-pathed), or undefined when it does. */
export function schemaProblem(kind: 'KernelChaos' | 'KernelChaosPolicy', value: unknown): string | undefined {
  const check = kind === 'KernelChaos' ? checkKernelChaos : checkPolicy;
  if (check.Check(value)) return undefined;
  const first = check.Errors(value).First();
  if (!first) return `not a valid ${kind}`;
  const path = first.path.replace(/^\//, '').replace(/\//g, '.') || '(document)';
  return `invalid ${kind}: ${path}: ${first.message}`;
}

/** One decoded document -> a stored object, a problem, or ignored (undefined). */
function toStored(value: unknown, source: string): StoredObject | DocumentProblem | undefined {
  if (!isRecord(value)) return { source, message: 'document is not an object' };
  const kind = value.kind;
  if (typeof kind !== 'string') return { source, message: 'missing kind' };
  if (!isWatchedKind(kind)) return undefined;
  const info = KIND_INFO[kind];
  if (value.apiVersion !== info.apiVersion) {
    return { source, message: `${kind} must have apiVersion ${info.apiVersion}, got ${JSON.stringify(value.apiVersion)}` };
  }
  const metadata = value.metadata;
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || metadata.name === '') {
    return { source, message: `${kind} needs metadata.name` };
  }
  // kubectl puts namespaced objects without a namespace into `default`; so do we.
  const namespace = effectiveNamespace(kind, typeof metadata.namespace === 'string' ? metadata.namespace : undefined);
  const object = { ...value, metadata: namespace === undefined ? { ...metadata } : { ...metadata, namespace } };
  if (kind === 'KernelChaos' || kind === 'KernelChaosPolicy') {
    const problem = schemaProblem(kind, object);
    if (problem) return { source: `${source} (${kind} ${namespace}/${metadata.name})`, message: problem };
  }
  return { kind, object: object as KindMap[WatchedKind], source };
}

export function parseManifestDocuments(text: string, file: string): ParsedText {
  const out: ParsedText = { objects: [], problems: [], ignored: 0 };
  let docs;
  try {
    docs = parseAllDocuments(text);
  } catch (error) {
    out.problems.push({ source: file, message: `cannot parse: ${String(error)}` });
    return out;
  }
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, i) => {
    const source = list.length > 1 ? `${file}#${i + 1}` : file;
    if (doc.errors.length > 0) {
      out.problems.push({ source, message: `YAML error: ${doc.errors[0]?.message.split('\n')[0] ?? 'unknown'}` });
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // an empty document (e.g. a trailing ---)
    const items = isRecord(value) && value.kind === 'List' && Array.isArray(value.items) ? value.items : [value];
    items.forEach((item: unknown, j: number) => {
      const r = toStored(item, items.length > 1 || item !== value ? `${source} items[${j}]` : source);
      if (r === undefined) out.ignored++;
      else if ('kind' in r) out.objects.push(r);
      else out.problems.push(r);
    });
  });
  return out;
}
