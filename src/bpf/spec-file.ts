// Reads a KernelChaos manifest for the local commands (`render`, `run`): the one KernelChaos
// document in a YAML/JSON file, validated, with its failKernRequest parsed for the generator.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { parseGoDuration } from '../api/duration.js';
import { parseFailKernRequest, PredicateError } from '../api/predicate/index.js';
import type { ParsedFailKernRequest } from '../api/predicate/ast.js';
import type { FailKernRequest, FieldError } from '../api/types.js';

export interface LocalSpec {
  /** namespace/name, for messages. */
  name: string;
  request: ParsedFailKernRequest;
  /** spec.duration in ms, or null when the fault lasts until the command ends. */
  durationMs: number | null;
  /** Fields that only mean something in a cluster and are ignored locally. */
  clusterOnly: string[];
}

/** Problems with a spec file, each with its field path. */
export class SpecFileError extends Error {
  constructor(
    readonly file: string,
    readonly errors: FieldError[],
  ) {
    super(errors.map((e) => `${file}: ${e.path}: ${e.message}`).join('\n'));
    this.name = 'SpecFileError';
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A validator with validateKernelChaos's shape: every problem at once, each with its JSON path. */
export type ManifestValidator = (doc: unknown) => FieldError[];

/**
 * The checks `run` and `render` need when no full validator is given: the failKernRequest parses
 * (funcnames, parameters, predicates), numbers are in range and the duration is Go syntax.
 */
export function basicProblems(doc: unknown): FieldError[] {
  if (!isRecord(doc) || !isRecord(doc.spec)) return [{ path: 'spec', message: 'a KernelChaos needs a spec object' }];
  const fkr = doc.spec.failKernRequest;
  if (!isRecord(fkr)) return [{ path: 'spec.failKernRequest', message: 'is required: the kernel fault to inject' }];
  const errors: FieldError[] = [];
  if (fkr.failtype !== 0 && fkr.failtype !== 1 && fkr.failtype !== 2) {
    errors.push({ path: 'spec.failKernRequest.failtype', message: `must be 0 (slab), 1 (page) or 2 (bio), got ${JSON.stringify(fkr.failtype)}` });
  }
  for (const [field, max] of [['probability', 100], ['times', 4294967295]] as const) {
    const v = fkr[field];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)) {
      errors.push({ path: `spec.failKernRequest.${field}`, message: `must be an integer 0..${max}, got ${JSON.stringify(v)}` });
    }
  }
  const d = doc.spec.duration;
  if (d !== undefined && (typeof d !== 'string' || parseGoDuration(d) === null || (parseGoDuration(d) ?? 0) <= 0)) {
    errors.push({ path: 'spec.duration', message: `must be a positive Go duration such as 30s or 1m30s, got ${JSON.stringify(d)}` });
  }
  return errors;
}

export function loadSpecFile(file: string, validate: ManifestValidator = basicProblems, text?: string): LocalSpec {
  let source: string;
  try {
    source = text ?? readFileSync(file, 'utf8');
  } catch (err) {
    throw new SpecFileError(file, [{ path: '(file)', message: `cannot read: ${(err as Error).message}` }]);
  }
  const docs = parseAllDocuments(source);
  const values: unknown[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new SpecFileError(file, [{ path: '(yaml)', message: d.errors[0]?.message ?? 'invalid YAML' }]);
    values.push(d.toJS());
  }
  const chaos = values.filter((v) => isRecord(v) && v.kind === 'KernelChaos');
  if (chaos.length !== 1) {
    throw new SpecFileError(file, [{ path: 'kind', message: `expected exactly one KernelChaos document, found ${chaos.length}` }]);
  }
  const doc = chaos[0] as Record<string, unknown>;
  const problems = validate(doc);
  if (problems.length > 0) throw new SpecFileError(file, problems);
  const spec = doc.spec as Record<string, unknown>;
  let request: ParsedFailKernRequest;
  try {
    request = parseFailKernRequest(spec.failKernRequest as FailKernRequest);
  } catch (err) {
    if (err instanceof PredicateError) {
      throw new SpecFileError(file, [{ path: `spec.failKernRequest.${err.field}`, message: err.describe() }]);
    }
    throw err;
  }
  const meta = isRecord(doc.metadata) ? doc.metadata : {};
  const name = `${typeof meta.namespace === 'string' ? meta.namespace : 'default'}/${typeof meta.name === 'string' ? meta.name : '(unnamed)'}`;
  const clusterOnly = ['selector', 'mode', 'value', 'containerNames', 'scheduler', 'remoteCluster'].filter((k) => spec[k] !== undefined);
  const durationMs = typeof spec.duration === 'string' ? parseGoDuration(spec.duration) : null;
  return { name, request, durationMs, clusterOnly };
}
