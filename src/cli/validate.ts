// `kernelchaos validate -f FILE|DIR|- [...]`: what the cluster would answer for each manifest, offline:
// the webhook's validation and its KernelChaosPolicy checks (policies from the inputs, --policy and,
// with --cluster, the cluster), and with -o yaml the object the mutating webhook would store.
import { Option, type Command } from 'commander';
import { readManifestSources, type ManifestDocument } from '../api/manifests.js';
import type { KernelChaosPolicy } from '../api/types.js';
import { addFilenameOption, filenames, parseCli, positiveSeconds, processIo, subcommand, usageError, type CliIo } from './commander.js';
import { judgeContext, judgeDocument, namespacesIn, policiesIn } from './validate/judge.js';
import { FORMATS, render, useColor, type Format } from './validate/format.js';
import { exitCode, type DocumentReport } from './validate/report.js';
import type { ClusterState } from './validate/cluster.js';
import { kernelBtf } from '../bpf/btf.js';

export interface ValidateIo extends CliIo {
  stdin?: AsyncIterable<string | Buffer>;
  /** Whether stdout is a terminal (colour). */
  isTTY?: boolean;
  env?: NodeJS.ProcessEnv;
}

export const EXIT_CODES = [
  { code: 0, meaning: 'every manifest is valid and allowed by every policy' },
  { code: 1, meaning: 'a manifest is invalid, unparseable or denied by a policy (with --strict: or has a warning)' },
  { code: 2, meaning: 'usage error, an unreadable file, or --cluster could not read the cluster' },
];

interface Options {
  policy: string[];
  output: Format;
  quiet?: boolean;
  warnings: boolean;
  strict?: boolean;
  cluster?: boolean;
  kubeconfig?: string;
  namespace?: string;
  now?: Date;
  timeout: number;
  btf?: string;
}

export function command(io: CliIo = processIo): Command {
  const cmd = subcommand({
    name: 'validate',
    description:
      'Check manifests offline as the cluster would: KernelChaos through the admission webhook\'s own validation and\n' +
      'KernelChaosPolicy checks, KernelChaosPolicy documents as the webhook validates them. Other kinds are skipped.\n' +
      'Policies come from the inputs, from --policy and, with --cluster, from the cluster.\n' +
      'Text output: FILE:LINE:COL: KIND/NAMESPACE/NAME: FIELD: message, then a summary line.',
    exitCodes: EXIT_CODES,
    io,
  });
  addFilenameOption(cmd, { what: 'a manifest file or directory (*.yaml, *.yml, *.json, recursively)', repeatable: true })
    .addOption(new Option('--policy <path>', 'KernelChaosPolicy file or directory to apply (not reported unless invalid); repeatable').argParser(collect).default([]))
    .addOption(new Option('-o, --output <format>', 'text, json, yaml (the defaulted objects the cluster would store) or junit').choices(FORMATS).default('text'))
    .option('-q, --quiet', 'print only what fails: no summary, nothing for passing manifests')
    .option('--no-warnings', 'leave warnings out (they no longer count, even with --strict)')
    .option('--strict', 'warnings fail too (exit 1)')
    .option('--btf <file>', "also check parameters and predicates against a kernel's BTF (a copy of a node's /sys/kernel/btf/vmlinux)")
    .option('--cluster', "also apply the cluster's KernelChaosPolicies, check namespaces exist, and use its context namespace")
    .option('--kubeconfig <file>', 'with --cluster: the kubeconfig (default $KUBECONFIG, ~/.kube/config)')
    .option('-n, --namespace <ns>', 'namespace for manifests that set none (default: the kubeconfig context\'s with --cluster, else default)')
    .addOption(new Option('--now <time>', 'judge policy schedule windows at this time (RFC 3339) instead of now').argParser(parseTime))
    .addOption(new Option('--timeout <seconds>', 'with --cluster: per API call').argParser(positiveSeconds).default(10_000, '10'))
    .argument('[extra...]');
  return cmd;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseTime(value: string): Date {
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(d.getTime())) {
    throw new InvalidTime(`--now: expected an RFC 3339 time such as 2025-01-06T10:00:00Z, got '${value}'`);
  }
  return d;
}

class InvalidTime extends Error {}

export async function main(argv: string[]): Promise<number> {
  // `kernelchaos validate ... | head` closes the pipe early; that is not a failure worth a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
  return runValidate(argv, {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    isTTY: process.stdout.isTTY,
    env: process.env,
  });
}

export async function runValidate(argv: string[], io: ValidateIo): Promise<number> {
  const cmd = command(io);
  let parsed: number | null;
  try {
    parsed = parseCli(cmd, argv);
  } catch (err) {
    if (err instanceof InvalidTime) return usageError(cmd, err.message);
    throw err;
  }
  if (parsed !== null) return parsed;
  const opts = cmd.opts<Options>();
  const sources = filenames(cmd);
  const extra = cmd.args;
  if (extra.length > 0) return usageError(cmd, `unexpected argument '${extra[0]}': pass manifests with -f (e.g. -f ${extra[0]})`);
  if (sources.length === 0) return usageError(cmd, 'no manifests given: use -f FILE, -f DIR or -f - (stdin)');
  if (opts.kubeconfig && !opts.cluster) return usageError(cmd, '--kubeconfig needs --cluster');
  if (opts.btf !== undefined && !kernelBtf(opts.btf)) {
    io.stderr(`kernelchaos validate: --btf ${opts.btf}: not a readable BTF file (copy a node's /sys/kernel/btf/vmlinux)\n`);
    return 2;
  }

  const read = io.stdin ? { stdin: io.stdin } : {};
  let cluster: ClusterState | undefined;
  if (opts.cluster) {
    const { readClusterState } = await import('./validate/cluster.js');
    try {
      cluster = await readClusterState(opts.kubeconfig, opts.timeout);
    } catch (err) {
      io.stderr(`kernelchaos validate: --cluster: ${err instanceof Error ? err.message : String(err)}\n`);
      return 2;
    }
  }
  const namespace = opts.namespace ?? cluster?.namespace ?? 'default';
  const documents = await readManifestSources(sources, read);
  const policyDocs = opts.policy.length > 0 ? await readManifestSources(opts.policy, read) : [];
  // Later sources win for the same namespace/name, as a later `kubectl apply` would.
  const policies: KernelChaosPolicy[] = [...(cluster?.policies ?? []), ...policiesIn(policyDocs, namespace), ...policiesIn(documents, namespace)];
  const ctx = judgeContext({
    policies,
    namespace,
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.btf !== undefined ? { btf: opts.btf } : {}),
    ...(cluster ? { namespaces: [...cluster.namespaces, ...namespacesIn(documents)] } : {}),
  });

  let reports: DocumentReport[] = [...documents.map((d) => judgeDocument(d, ctx)), ...policyProblems(policyDocs, ctx)];
  if (!opts.warnings) reports = reports.map(withoutWarnings);
  const out = render(opts.output, reports, {
    strict: opts.strict === true,
    quiet: opts.quiet === true,
    color: useColor(io.isTTY, io.env ?? {}),
  });
  if (out.stderr) io.stderr(out.stderr);
  if (out.stdout) io.stdout(out.stdout);
  return exitCode(reports, { strict: opts.strict === true });
}

/** --policy sources are reported only where they fail: unreadable, unparseable or invalid policies. */
function policyProblems(docs: readonly ManifestDocument[], ctx: ReturnType<typeof judgeContext>): DocumentReport[] {
  return docs
    .filter((d) => !d.ok || (typeof d.object === 'object' && d.object !== null && (d.object as { kind?: unknown }).kind === 'KernelChaosPolicy'))
    .map((d) => judgeDocument(d, ctx))
    .filter((r) => r.status === 'error' || r.status === 'invalid');
}

function withoutWarnings(r: DocumentReport): DocumentReport {
  return r.status === 'valid' || r.status === 'invalid' || r.status === 'denied' ? { ...r, warnings: [] } : r;
}
