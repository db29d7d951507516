// `kernelchaos companion`: the node agent (a privileged DaemonSet). Watches this node's targeted
// pods and their KernelChaos objects, attaches each experiment's fault to its containers' cgroups
// while the schedule is open, removes it after, reports status, and serves gRPC over mutual TLS.
import { Command, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import { validateKernelChaos } from '../api/validate.js';
import { BpfFaultEngine } from '../bpf/engine.js';
import type { AttachMode } from '../bpf/types.js';
import { runCompanion, type CompanionConfig } from '../companion/run.js';
import { DEFAULT_RELEASE_NAMESPACE } from '../admission/namespaces.js';

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
  namespace: string;
  logLevel: string;
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
    releaseNamespace: o.namespace,
    armOptions: { attachMode: o.attachMode, ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) },
    ...(tlsGiven === 3
      ? { grpc: { host: o.grpcHost, port: o.grpcPort ?? 9443, tls: { certFile: o.tlsCert as string, keyFile: o.tlsKey as string, caFile: o.tlsCa as string } } }
      : {}),
    ...(o.bpfkiPort !== undefined ? { bpfkiPort: o.bpfkiPort } : {}),
  };
  return { ok: true, config };
}

function command(): Command {
  return new Command('kernelchaos companion')
    .description('run the node companion: attach faults to labelled pods on this node')
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
    .addOption(new Option('--namespace <ns>', "kernelchaos's own namespace; its pods are never faulted").env('POD_NAMESPACE').default(DEFAULT_RELEASE_NAMESPACE))
    .addOption(new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error']).default(process.env.LOG_LEVEL ?? 'info'))
    .addHelpText('after', HELP_AFTER)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
}

export type ParsedArgs =
  | { kind: 'run'; config: CompanionConfig; logLevel: string }
  /** --help (0) or a usage error already printed by commander or to be printed (2). */
  | { kind: 'exit'; code: number; message?: string };

/** The command line (without `companion`) -> what to run. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): ParsedArgs {
  const program = command();
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    return { kind: 'exit', code: code === 0 ? 0 : 2 };
  }
  const opts = program.opts<Options>();
  const built = buildConfig(opts, env);
  if (!built.ok) return { kind: 'exit', code: 2, message: built.message };
  return { kind: 'run', config: built.config, logLevel: opts.logLevel };
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, process.env);
  if (parsed.kind === 'exit') {
    if (parsed.message) process.stderr.write(`kernelchaos companion: ${parsed.message}\n`);
    return parsed.code;
  }
  const { config } = parsed;
  const log = pino({ name: 'kernelchaos-companion', level: parsed.logLevel }, pino.destination(2));
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
    running = await runCompanion(config, { engine: new BpfFaultEngine(), validate: validateKernelChaos, log });
  } catch (err) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.stderr.write(`kernelchaos companion: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  if (received === undefined) {
    log.info(
      { node: config.node, source: config.source.kind, grpcPort: running.grpcPort, bpfkiPort: running.bpfkiPort },
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
