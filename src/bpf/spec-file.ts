// Reads a KernelChaos manifest for the local commands (`render`, `run`): the one KernelChaos
// document in a YAML/JSON file, validated exactly as the cluster would (validateKernelChaos), with its failKernRequest parsed for the generator.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { experimentDuration } from '../api/duration.js';
import type { ParsedFailKernRequest } from '../api/predicate/ast.js';
import type { FieldError } from '../api/types.js';
import { validateKernelChaos } from '../api/validate.js';

export interface LocalSpec {
  /** namespace/name, for messages. */
  name: string;
  request: ParsedFailKernRequest;
  /** spec.duration in ms, or null when the fault lasts until the command ends. */
  durationMs: number | null;
  /** Fields that only mean something in a cluster and are ignored locally. */
  clusterOnly: string[];
  /** Validation warnings (valid, but worth saying). */
  warnings: string[];
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

/** Loads the one KernelChaos in `file` (or in `text`, naming it `file`), validated as the cluster would. */
export function loadSpecFile(file: string, text?: string): LocalSpec {
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
  const verdict = validateKernelChaos(chaos[0], { context: 'local' });
  if (!verdict.valid) throw new SpecFileError(file, verdict.errors);
  const spec = verdict.chaos.spec;
  const meta = verdict.chaos.metadata as { name?: unknown; namespace?: unknown } | undefined;
  const name = `${typeof meta?.namespace === 'string' ? meta.namespace : 'default'}/${typeof meta?.name === 'string' ? meta.name : '(unnamed)'}`;
  const present = spec as unknown as Record<string, unknown>;
  const clusterOnly = ['selector', 'mode', 'value', 'containerNames', 'scheduler', 'remoteCluster'].filter((k) => present[k] !== undefined);
  const d = experimentDuration(spec.duration);
  const durationMs = d.kind === 'ms' ? d.ms : null;
  return { name, request: verdict.parsed, durationMs, clusterOnly, warnings: verdict.warnings };
}
