// `kernelchaos companion`: the node agent (a privileged DaemonSet). Watches this node's targeted
// pods and their KernelChaos objects, attaches each experiment's fault to its containers' cgroups
// while the schedule is open, removes it after, reports status, and serves gRPC over mutual TLS.
import { Option, type Command } from 'commander';
import { addLogOptions, commanderExitCode, portNumber, processIo, subcommand, type CliIo } from './commander.js';
import { createLogger, type LogFormat } from '../log.js';
import { validateKernelChaos } from '../api/validate.js';
import { BpfFaultEngine } from '../bpf/engine.js';
import type { AttachMode } from '../bpf/types.js';
import { runCompanion, type CompanionConfig } from '../companion/run.js';
import { DEFAULT_RELEASE_NAMESPACE } from '../admission/namespaces.js';
import { parseAllowedClients } from '../companion/client-identity.js';
import { addAuthOptions, addListenOptions, readAuth, type AuthFlags } from '../metrics/options.js';

const HELP_AFTER = `
Cluster state comes from the Kubernetes API (in-cluster, or --kubeconfig) or, with --manifests DIR,
from a directory of Pod, Namespace, KernelChaos and KernelChaosPolicy manifests (re-read on change;
status is logged).

Before arming, the companion checks the admission gate itself: the pod must have opted in
(annotation kernelchaos.dev/inject: "true", or its namespace labelled kernelchaos.dev/injection:
enabled), its namespace must not be labelled disabled nor be a system namespace or --namespace, and
every KernelChaosPolicy the experiment reaches must allow it. A pod's own labels are never enough.

gRPC (kernelchaos.v1.Companion, proto/kernelchaos/v1/companion.proto) is served only with mutual
TLS: give --tls-cert, --tls-key and --tls-ca (from certs-scripts/ or \`kernelchaos certs\`); clients
need a certificate signed by that CA and issued for clientAuth. Plaintext and unknown clients are
refused. --grpc-clients limits the (read-only) Companion service to certificates with these CNs/SANs.

--bpfki-port serves Chaos Mesh's bpfki.BPFKIService (FailMMOrBIO / RecoverMMOrBIO, keyed by host
pid) so a Chaos Mesh controller can use this companion as its kernel backend. Only the identities
in --bpfki-clients (CN or SAN of the client certificate, e.g. the Chaos Mesh controller's) may call
it, and only pids in containers of this node's pods can be faulted: never the root cgroup, a host
process or the companion itself.

--metrics-port serves Prometheus metrics on GET /metrics (plain HTTP unless --http-tls-cert; add
--http-token-file for a bearer token, --http-tls-ca for client certificates). Series are per
experiment; --metrics-pod-labels adds one series per targeted container.

If the companion is killed outright, the kernel drops its programs (links are owned by the
process); on SIGTERM it detaches everything and records why.

Examples:
  kernelchaos companion --node "$NODE_NAME" --tls-cert tls.crt --tls-key tls.key --tls-ca ca.crt
  kernelchaos companion --node dev --manifests ./cluster --cgroup-root /host/sys/fs/cgroup --proc-root /host/proc`;

interface Options extends AuthFlags {
  metricsPort?: number;
  metricsHost?: string;
  metricsPodLabels?: boolean;
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
  grpcClients?: string;
  bpfkiClients?: string;
  bpfkiPlaintext?: boolean;
  bpfkiHost?: string;
  attachMode: AttachMode;
  cacheDir?: string;
  namespace: string;
  /** commander's --no-syscall-entry sets false; absent means on. */
  syscallEntry?: boolean;
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
  if (o.bpfkiPlaintext && o.bpfkiPort === undefined) {
    return { ok: false, message: '--bpfki-plaintext needs --bpfki-port (Chaos Mesh dials 50051 by default: its BPFKI_PORT)' };
  }
  if (tlsGiven === 0 && o.bpfkiPort !== undefined && !o.bpfkiPlaintext) {
    return { ok: false, message: "--bpfki-port needs --tls-cert, --tls-key and --tls-ca (mutual TLS), or --bpfki-plaintext for Chaos Mesh's plaintext dial" };
  }
  if (o.bpfkiPlaintext && o.bpfkiClients !== undefined) {
    return { ok: false, message: '--bpfki-clients needs mutual TLS: a plaintext bpfki (--bpfki-plaintext) has no client identities to check' };
  }
  if (o.bpfkiPort !== undefined && !o.bpfkiPlaintext && parseAllowedClients(o.bpfkiClients).kind !== 'names') {
    return { ok: false, message: '--bpfki-port needs --bpfki-clients NAME[,NAME]: the CNs or SANs of the client certificates allowed to inject faults' };
  }
  if (o.bpfkiPort !== undefined && o.grpcPort !== undefined && o.bpfkiPort === o.grpcPort && o.bpfkiPort !== 0) {
    return { ok: false, message: `--bpfki-port and --grpc-port must differ (both ${o.bpfkiPort})` };
  }
  const config: CompanionConfig = {
    node,
    source: o.manifests ? { kind: 'manifests', dir: o.manifests } : { kind: 'kubernetes', ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}) },
    cgroupRoot: o.cgroupRoot,
    procRoot: o.procRoot,
    releaseNamespace: o.namespace,
    armOptions: { attachMode: o.attachMode, syscallEntry: o.syscallEntry !== false, ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) },
    ...(tlsGiven === 3
      ? {
          grpc: {
            host: o.grpcHost,
            port: o.grpcPort ?? 9443,
            tls: { certFile: o.tlsCert as string, keyFile: o.tlsKey as string, caFile: o.tlsCa as string },
            clients: parseAllowedClients(o.grpcClients),
          },
        }
      : {}),
    ...(o.bpfkiPort !== undefined ? { bpfkiPort: o.bpfkiPort, bpfkiClients: parseAllowedClients(o.bpfkiClients) } : {}),
    ...(o.metricsPort !== undefined
      ? { metrics: { host: o.metricsHost ?? '0.0.0.0', port: o.metricsPort, auth: {}, podLabels: o.metricsPodLabels ?? false, processMetrics: true } }
      : {}),
    ...(o.bpfkiPlaintext ? { bpfkiPlaintext: { host: o.bpfkiHost ?? o.grpcHost } } : {}),
  };
  return { ok: true, config };
}

export const EXIT_CODES = [
  { code: 0, meaning: 'stopped by SIGTERM or SIGINT, every fault detached' },
  { code: 1, meaning: 'could not start (cluster state, gRPC listeners) or could not stop cleanly' },
  { code: 2, meaning: 'usage error (e.g. no --node, incomplete TLS files)' },
];

export function command(io: CliIo = processIo): Command {
  const cmd = subcommand({
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
    .option('--grpc-port <port>', 'kernelchaos.v1.Companion port (default 9443 when TLS files are given)', portNumber)
    .option('--tls-cert <file>', 'server certificate (PEM)')
    .option('--tls-key <file>', 'server private key (PEM)')
    .option('--tls-ca <file>', 'CA that signs client certificates (PEM)')
    .option('--grpc-clients <names>', 'CNs/SANs of client certificates allowed on the Companion service, comma-separated (default: any the CA signed for clientAuth)')
    .option('--bpfki-clients <names>', 'CNs/SANs of client certificates allowed on the bpfki service, comma-separated (required with --bpfki-port)')
    .option('--bpfki-port <port>', 'also serve Chaos Mesh\'s bpfki.BPFKIService here (off by default; see RISK below)', portNumber)
    .option('--bpfki-plaintext', "serve --bpfki-port WITHOUT TLS, as Chaos Mesh's controller-manager dials bpfki (grpc Insecure at the chaos-daemon pod IP)")
    .option('--bpfki-host <addr>', 'with --bpfki-plaintext: the address to bind (default --grpc-host); the chaos-daemon pod IP when both run with hostNetwork')
    .addOption(new Option('--attach-mode <mode>', 'how programs hook the kernel').choices(['auto', 'trampoline', 'kprobe']).default('auto'))
    .option('--cache-dir <dir>', 'compiled program cache')
    .option('--no-syscall-entry', 'on kernels without should_failslab/should_fail_alloc_page, refuse failtype 0/1 instead of failing the chain\'s outermost frame (a syscall) with ENOMEM at entry')
    .addOption(new Option('--namespace <ns>', "kernelchaos's own (release) namespace: its pods are never faulted, and this node's reports for the controller go there").env('POD_NAMESPACE').default(DEFAULT_RELEASE_NAMESPACE));
  addLogOptions(cmd);
  addListenOptions(cmd, 'metrics', 'Prometheus metrics (GET /metrics)');
  cmd.option('--metrics-pod-labels', 'also export per-container series (pod and container labels; more series)');
  addAuthOptions(cmd);
  return cmd.addHelpText('after', HELP_AFTER);
}

export type ParsedArgs =
  | { kind: 'run'; config: CompanionConfig; logLevel?: string; logFormat?: LogFormat; auth: AuthFlags }
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
  return { kind: 'run', config: built.config, ...(opts.logLevel ? { logLevel: opts.logLevel } : {}), ...(opts.logFormat ? { logFormat: opts.logFormat } : {}), auth: opts };
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, process.env);
  if (parsed.kind === 'exit') {
    if (parsed.message) process.stderr.write(`kernelchaos companion: ${parsed.message}\n`);
    return parsed.code;
  }
  const { config } = parsed;
  const log = createLogger({ component: 'companion', ...(parsed.logLevel ? { level: parsed.logLevel } : {}), ...(parsed.logFormat ? { format: parsed.logFormat } : {}) });
  // Handlers go in before anything is armed: the first reconcile (inside runCompanion) may attach
  // faults, and a SIGTERM then must still detach them and exit 0, not kill the process outright.
  let received: NodeJS.Signals | undefined;
  let wake: (signal: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    wake = resolve;
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    received ??= signal;
    wake(signal);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  let running;
  try {
    if (config.metrics) config.metrics.auth = await readAuth(parsed.auth);
    running = await runCompanion(config, { engine: new BpfFaultEngine(), validate: validateKernelChaos, log });
  } catch (err) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    log.error(err instanceof Error ? err.message : String(err));
    log.flush();
    return 1;
  }
  if (received === undefined) {
    log.info(
      { node: config.node, source: config.source.kind, grpcPort: running.grpcPort, bpfkiPort: running.bpfkiPort, metricsPort: running.metricsPort },
      'companion running',
    );
  }
  const signal = await signalled;
  log.info({ signal }, 'stopping: detaching every fault');
  try {
    await running.stop(`companion received ${signal}`);
    return 0;
  } catch (err) {
    log.error({ err: String(err) }, 'stop failed');
    return 1;
  }
}
