// Turns manifest text into the objects the stores keep: the CLI's manifest reader, then shape checks
// against the schemas. Bad documents become problems naming the file and
// document, never exceptions.
import { parseManifestText } from '../api/manifests.js';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { KernelChaosPolicySchema, KernelChaosSchema } from '../api/schema.js';
import type { KindMap, WatchedKind } from './store.js';
import { effectiveNamespace, isWatchedKind, KIND_INFO } from './objects.js';

export interface StoredObject {
  kind: WatchedKind;
  object: KindMap[WatchedKind];
  /** file:line of the document, for messages. */
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

/**
 * Parses one file's text with the CLI's reader (src/api/manifests.ts: multi-document YAML or JSON,
 * `kind: List` expanded, alias and nesting limits) and keeps the kinds the stores hold.
 * Sources read `file:line` so a user can jump to the document.
 */
export function parseManifestDocuments(text: string, file: string): ParsedText {
  const out: ParsedText = { objects: [], problems: [], ignored: 0 };
  for (const doc of parseManifestText(text, file)) {
    const source = `${file}:${doc.line}`;
    if (!doc.ok) {
      out.problems.push({ source, message: doc.message });
      continue;
    }
    const r = toStored(doc.object, source);
    if (r === undefined) out.ignored++;
    else if ('kind' in r) out.objects.push(r);
    else out.problems.push(r);
  }
  return out;
}
