// `kernelchaos companion`: the node agent (a privileged DaemonSet). Watches this node's targeted
// pods and their KernelChaos objects, attaches each experiment's fault to its containers' cgroups
// while the schedule is open, removes it after, reports status, and serves gRPC over mutual TLS.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { addLogOptions, commanderExitCode, processIo, subcommand, type CliIo } from './commander.js';
import { createLogger, type LogFormat } from '../log.js';
import { validateKernelChaos } from '../api/validate.js';
import { BpfFaultEngine } from '../bpf/engine.js';
import type { AttachMode } from '../bpf/types.js';
import { runCompanion, type CompanionConfig } from '../companion/run.js';

const HELP_AFTER = `
Cluster state comes from the Kubernetes API (in-cluster, or --kubeconfig) or, with --manifests DIR,
from a directory of Pod and KernelChaos manifests (re-read on change; status is logged).

gRPC (kernelchaos.v1.Companion, proto/kernelchaos/v1/companion.proto) is served only with mutual
TLS: give --tls-cert, --tls-key and --tls-ca (from certs-scripts/ or \`kernelchaos certs\`); clients
need a certificate signed by that CA. Plaintext and unknown clients are refused.

--bpfki-port serves Chaos Mesh's bpfki.BPFKIService (FailMMOrBIO / RecoverMMOrBIO, keyed by host
pid) so a Chaos Mesh controller can use this companion as its kernel backend. RISK: anyone holding a
client certificate from the CA can then inject kernel faults into ANY process on this node, not
only into pods that opted in. Leave it off unless you need it, and issue those certificates only
to the Chaos Mesh controller.

If the companion is killed outright, the kernel drops its programs (links are owned by the
process); on SIGTERM it detaches everything and records why.

Examples:
  kernelchaos companion --node "$NODE_NAME" --tls-cert tls.crt --tls-key tls.key --tls-ca ca.crt
  kernelchaos companion --node dev --manifests ./cluster --cgroup-root /host/sys/fs/cgroup --proc-root /host/proc`;

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 0 || n > 65535) throw new InvalidArgumentError(`must be a port number 0..65535, got '${value}'`);
  return n;
}

interface Options {
  node?: string;
  manifests?: string;
  kubeconfig?: string;
  cgroupRoot: string;
  procRoot: string;
  grpcHost: string;
  grpcPort?: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  bpfkiPort?: number;
  attachMode: AttachMode;
  cacheDir?: string;
  logLevel?: string;
  logFormat?: LogFormat;
}

/** Checks the options against each other; returns the config or the message to print. */
export function buildConfig(o: Options, env: NodeJS.ProcessEnv): { ok: true; config: CompanionConfig } | { ok: false; message: string } {
  const node = o.node ?? env.NODE_NAME;
  if (!node) return { ok: false, message: '--node is required (or set NODE_NAME; the DaemonSet sets it from spec.nodeName)' };
  if (o.manifests && o.kubeconfig) return { ok: false, message: '--manifests and --kubeconfig exclude each other: pick one source of cluster state' };
  const tlsGiven = [o.tlsCert, o.tlsKey, o.tlsCa].filter((x) => x !== undefined).length;
  if (tlsGiven > 0 && tlsGiven < 3) return { ok: false, message: '--tls-cert, --tls-key and --tls-ca go together (mutual TLS needs all three)' };
  if (tlsGiven === 0 && o.grpcPort !== undefined) {
    return { ok: false, message: '--grpc-port needs --tls-cert, --tls-key and --tls-ca: gRPC is served with mutual TLS only' };
  }
  if (tlsGiven === 0 && o.bpfkiPort !== undefined) {
    return { ok: false, message: '--bpfki-port needs --tls-cert, --tls-key and --tls-ca: the bpfki service is served with mutual TLS only' };
  }
  if (o.bpfkiPort !== undefined && o.grpcPort !== undefined && o.bpfkiPort === o.grpcPort && o.bpfkiPort !== 0) {
    return { ok: false, message: `--bpfki-port and --grpc-port must differ (both ${o.bpfkiPort})` };
  }
  const config: CompanionConfig = {
    node,
    source: o.manifests ? { kind: 'manifests', dir: o.manifests } : { kind: 'kubernetes', ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}) },
    cgroupRoot: o.cgroupRoot,
    procRoot: o.procRoot,
    armOptions: { attachMode: o.attachMode, ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) },
    ...(tlsGiven === 3
      ? { grpc: { host: o.grpcHost, port: o.grpcPort ?? 9443, tls: { certFile: o.tlsCert as string, keyFile: o.tlsKey as string, caFile: o.tlsCa as string } } }
      : {}),
    ...(o.bpfkiPort !== undefined ? { bpfkiPort: o.bpfkiPort } : {}),
  };
  return { ok: true, config };
}

export const EXIT_CODES = [
  { code: 0, meaning: 'stopped by SIGTERM or SIGINT, every fault detached' },
  { code: 1, meaning: 'could not start (cluster state, gRPC listeners) or could not stop cleanly' },
  { code: 2, meaning: 'usage error (e.g. no --node, incomplete TLS files)' },
];

export function command(io: CliIo = processIo): Command {
  return addLogOptions(subcommand({
    name: 'companion',
    description: 'Run the node companion: attach faults to labelled pods on this node.',
    exitCodes: EXIT_CODES,
    io,
  })
    .option('--node <name>', 'this node\'s name (default: $NODE_NAME)')
    .option('--manifests <dir>', 'read Pods and KernelChaos objects from this directory instead of the Kubernetes API')
    .option('--kubeconfig <file>', 'kubeconfig to use (default: in-cluster, then $KUBECONFIG / ~/.kube/config)')
    .option('--cgroup-root <dir>', 'where the host cgroup v2 hierarchy is mounted', '/sys/fs/cgroup')
    .option('--proc-root <dir>', 'the host /proc (hostPID, or a mount such as /host/proc)', '/proc')
    .option('--grpc-host <addr>', 'address for the gRPC listeners', '0.0.0.0')
    .option('--grpc-port <port>', 'kernelchaos.v1.Companion port (default 9443 when TLS files are given)', port)
    .option('--tls-cert <file>', 'server certificate (PEM)')
    .option('--tls-key <file>', 'server private key (PEM)')
    .option('--tls-ca <file>', 'CA that signs client certificates (PEM)')
    .option('--bpfki-port <port>', 'also serve Chaos Mesh\'s bpfki.BPFKIService here (off by default; see RISK below)', port)
    .addOption(new Option('--attach-mode <mode>', 'how programs hook the kernel').choices(['auto', 'trampoline', 'kprobe']).default('auto'))
    .option('--cache-dir <dir>', 'compiled program cache')
    .addHelpText('after', HELP_AFTER));
}

export type ParsedArgs =
  | { kind: 'run'; config: CompanionConfig; logLevel?: string; logFormat?: LogFormat }
  /** --help (0) or a usage error already printed by commander or to be printed (2). */
  | { kind: 'exit'; code: number; message?: string };

/** The command line (without `companion`) -> what to run. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): ParsedArgs {
  const program = command();
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    const code = commanderExitCode(err);
    if (code === null) throw err;
    return { kind: 'exit', code };
  }
  const opts = program.opts<Options>();
  const built = buildConfig(opts, env);
  if (!built.ok) return { kind: 'exit', code: 2, message: built.message };
  return { kind: 'run', config: built.config, ...(opts.logLevel ? { logLevel: opts.logLevel } : {}), ...(opts.logFormat ? { logFormat: opts.logFormat } : {}) };
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, process.env);
  if (parsed.kind === 'exit') {
    if (parsed.message) process.stderr.write(`kernelchaos companion: ${parsed.message}\n`);
    return parsed.code;
  }
  const { config } = parsed;
  const log = createLogger({ component: 'companion', ...(parsed.logLevel ? { level: parsed.logLevel } : {}), ...(parsed.logFormat ? { format: parsed.logFormat } : {}) });
  let running;
  try {
    running = await runCompanion(config, { engine: new BpfFaultEngine(), validate: validateKernelChaos, log });
  } catch (err) {
    log.error(err instanceof Error ? err.message : String(err));
    log.flush();
    return 1;
  }
  log.info(
    { node: config.node, source: config.source.kind, grpcPort: running.grpcPort, bpfkiPort: running.bpfkiPort },
    'companion running',
  );
  const handle = running;
  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'stopping: detaching every fault');
      handle.stop(`companion received ${signal}`).then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err: String(err) }, 'stop failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}
