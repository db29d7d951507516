// `kernelchaos validate -f FILE|DIR|- [-f ...] [--output text|json]`: checks KernelChaos and
// KernelChaosPolicy manifests offline with exactly the validation the webhook applies.
// Exit codes: 0 all valid, 1 any invalid (including unparseable YAML), 2 usage or read errors.
import { Command, CommanderError, Option } from 'commander';
import { readManifestSources, type ManifestDocument } from '../api/manifests.js';
import { validateKernelChaos, validateKernelChaosPolicy } from '../api/validate.js';
import { validateSchedule, validateWorkflow, type ChaosMeshVerdict } from '../api/validate-chaos-mesh.js';
import { nearMiss } from '../api/validation/unknown-fields.js';
import type { FieldError } from '../api/types.js';

export interface ValidateIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin?: AsyncIterable<string | Buffer>;
}

type Kind = 'KernelChaos' | 'KernelChaosPolicy' | 'Schedule' | 'Workflow';

/** One document's outcome, as `--output json` prints it. */
export type DocumentReport = {
  source: string;
  index: number;
  line: number;
  kind: string;
  namespace: string;
  name: string;
} & (
  | { status: 'valid'; warnings: string[] }
  /** Each error with the line it refers to in the source, when the source is YAML. */
  | { status: 'invalid'; errors: (FieldError & { line?: number })[]; warnings: string[] }
  | { status: 'skipped'; reason: string }
  /** A Schedule or Workflow carrying chaos kernelchaos does not validate: never reported as valid. */
  | { status: 'unchecked'; reason: string; warnings: string[] }
  /** The source could not be read. */
  | { status: 'error'; message: string }
);

export interface ValidateSummary {
  valid: number;
  invalid: number;
  skipped: number;
  unchecked: number;
  readErrors: number;
  warnings: number;
}

const KINDS: readonly Kind[] = ['KernelChaos', 'KernelChaosPolicy', 'Schedule', 'Workflow'];

export async function main(argv: string[]): Promise<number> {
  // `kernelchaos validate ... | head` closes the pipe early; that is not a failure worth a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
  return runValidate(argv, {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
  });
}

export async function runValidate(argv: string[], io: ValidateIo): Promise<number> {
  const command = new Command('kernelchaos validate')
    .description(
      'Check KernelChaos, KernelChaosPolicy, and Schedule/Workflow (of KernelChaos) manifests offline, with the validation the admission webhook applies.\n' +
        'Prints each problem as FILE: KIND/NAMESPACE/NAME: FIELD: message. Other kinds are skipped.\n' +
        'Exit status: 0 all valid, 1 any invalid, 2 usage or read errors.',
    )
    .option('-f, --filename <path>', 'a manifest file, a directory (*.yaml, *.yml, *.json, recursively) or - for stdin; repeatable', collect, [])
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .argument('[extra...]')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  try {
    command.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const opts = command.opts<{ filename: string[]; output: 'text' | 'json' }>();
  const extra = command.args;
  if (extra.length > 0) {
    io.stderr(`kernelchaos validate: unexpected argument '${extra[0]}': pass manifests with -f (e.g. -f ${extra[0]})\n`);
    return 2;
  }
  if (opts.filename.length === 0) {
    io.stderr('kernelchaos validate: no manifests given: use -f FILE, -f DIR or -f - (stdin)\n');
    return 2;
  }
  const documents = await readManifestSources(opts.filename, io.stdin ? { stdin: io.stdin } : {});
  const reports = documents.map(reportDocument);
  const summary = summarize(reports);
  if (opts.output === 'json') {
    io.stdout(`${JSON.stringify({ valid: summary.invalid === 0 && summary.unchecked === 0 && summary.readErrors === 0, summary, documents: reports }, null, 2)}\n`);
  } else {
    const lines = reports.flatMap(textLines);
    const out = lines.filter((l) => l.stream === 'stdout').map((l) => l.text);
    const err = lines.filter((l) => l.stream === 'stderr').map((l) => l.text);
    out.push(summaryLine(summary));
    if (err.length > 0) io.stderr(`${err.join('\n')}\n`);
    io.stdout(`${out.join('\n')}\n`);
  }
  if (summary.readErrors > 0) return 2;
  return summary.invalid > 0 || summary.unchecked > 0 ? 1 : 0;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function field(object: unknown, key: string): unknown {
  return typeof object === 'object' && object !== null && !Array.isArray(object) ? (object as Record<string, unknown>)[key] : undefined;
}

/** Which validator a document gets: its kind, or a near miss of one of ours (a typo is reported, not skipped). */
function kindOf(object: unknown): { kind: Kind; declared: string } | { skip: string; declared: string } {
  const kind = field(object, 'kind');
  const apiVersion = field(object, 'apiVersion');
  if (typeof kind === 'string') {
    if ((KINDS as readonly string[]).includes(kind)) return { kind: kind as Kind, declared: kind };
    const near = nearMiss(kind, KINDS);
    if (near) return { kind: near as Kind, declared: kind };
    return { skip: `kind ${kind} is not validated by kernelchaos`, declared: kind };
  }
  if (typeof apiVersion === 'string' && apiVersion.startsWith('kernelchaos.dev/')) return { kind: 'KernelChaosPolicy', declared: '-' };
  // Without a kind, a document is most likely a KernelChaos missing a line: validating reports it.
  return { kind: 'KernelChaos', declared: '-' };
}

function identity(object: unknown): { namespace: string; name: string } {
  const metadata = field(object, 'metadata');
  const namespace = field(metadata, 'namespace');
  const name = field(metadata, 'name');
  const generateName = field(metadata, 'generateName');
  return {
    // The namespace kubectl would use comes from the context; `-` says the manifest sets none.
    namespace: typeof namespace === 'string' && namespace !== '' ? namespace : '-',
    name: typeof name === 'string' && name !== '' ? name : typeof generateName === 'string' ? `${generateName}*` : '-',
  };
}

function reportDocument(doc: ManifestDocument): DocumentReport {
  const base = { source: doc.source, index: doc.index, line: doc.line };
  if (!doc.ok) {
    if (doc.error === 'read') return { ...base, kind: '-', namespace: '-', name: '-', status: 'error', message: doc.message };
    return {
      ...base,
      kind: '-',
      namespace: '-',
      name: '-',
      status: 'invalid',
      errors: [{ path: '', message: `line ${doc.line}: ${doc.message}` }],
      warnings: [],
    };
  }
  const who = identity(doc.object);
  const kind = kindOf(doc.object);
  if ('skip' in kind) return { ...base, kind: kind.declared, ...who, status: 'skipped', reason: kind.skip };
  const verdict = validatorOf(kind.kind)(doc.object);
  const shownKind = kind.declared === '-' ? kind.kind : kind.declared;
  if (verdict.valid === 'unchecked') return { ...base, kind: shownKind, ...who, status: 'unchecked', reason: verdict.reason, warnings: verdict.warnings };
  if (verdict.valid) return { ...base, kind: shownKind, ...who, status: 'valid', warnings: verdict.warnings };
  const locate = doc.locate;
  const errors = locate ? verdict.errors.map((e) => ({ ...e, line: locate(e.path) })) : verdict.errors;
  return { ...base, kind: shownKind, ...who, status: 'invalid', errors, warnings: verdict.warnings };
}

function validatorOf(kind: Kind): (object: unknown) => ChaosMeshVerdict | ReturnType<typeof validateKernelChaos> | ReturnType<typeof validateKernelChaosPolicy> {
  switch (kind) {
    case 'KernelChaos':
      return validateKernelChaos;
    case 'KernelChaosPolicy':
      return validateKernelChaosPolicy;
    case 'Schedule':
      return validateSchedule;
    case 'Workflow':
      return validateWorkflow;
  }
}

function summarize(reports: readonly DocumentReport[]): ValidateSummary {
  const summary: ValidateSummary = { valid: 0, invalid: 0, skipped: 0, unchecked: 0, readErrors: 0, warnings: 0 };
  for (const r of reports) {
    if (r.status === 'valid') summary.valid++;
    else if (r.status === 'invalid') summary.invalid++;
    else if (r.status === 'skipped') summary.skipped++;
    else if (r.status === 'unchecked') summary.unchecked++;
    else summary.readErrors++;
    if (r.status === 'valid' || r.status === 'invalid' || r.status === 'unchecked') summary.warnings += r.warnings.length;
  }
  return summary;
}

function textLines(r: DocumentReport): { stream: 'stdout' | 'stderr'; text: string }[] {
  const who = `${r.source}: ${r.kind}/${r.namespace}/${r.name}`;
  switch (r.status) {
    case 'error':
      return [{ stream: 'stderr', text: `${r.source}: ${r.message}` }];
    case 'skipped':
      return [];
    case 'unchecked':
      return [
        { stream: 'stdout', text: `${who}: not checked: ${r.reason}` },
        ...r.warnings.map((w) => ({ stream: 'stdout' as const, text: `${who}: warning: ${w}` })),
      ];
    case 'valid':
      return r.warnings.map((w) => ({ stream: 'stdout', text: `${who}: warning: ${w}` }));
    case 'invalid':
      return [
        ...r.errors.map((e) => ({
          stream: 'stdout' as const,
          text: r.kind === '-' ? `${r.source}: ${e.message}` : e.path === '' ? `${who}: ${e.message}` : `${who}: ${e.path}: ${e.message}`,
        })),
        ...r.warnings.map((w) => ({ stream: 'stdout' as const, text: `${who}: warning: ${w}` })),
      ];
  }
}

function summaryLine(s: ValidateSummary): string {
  const parts = [`${s.valid} valid`, `${s.invalid} invalid`];
  if (s.unchecked > 0) parts.push(`${s.unchecked} not checked (Chaos Mesh kinds only its webhook validates)`);
  if (s.skipped > 0) parts.push(`${s.skipped} skipped (other kinds)`);
  if (s.readErrors > 0) parts.push(`${s.readErrors} unreadable`);
  if (s.warnings > 0) parts.push(`${s.warnings} warning${s.warnings === 1 ? '' : 's'}`);
  return parts.join(', ');
}
