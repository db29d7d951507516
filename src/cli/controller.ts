// `kernelchaos controller`: keep pod labels in line with the KernelChaos experiments and aggregate
// their status. Several replicas may run; one acts, chosen through a coordination.k8s.io Lease.
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { addLogOptions, addProfileOption, commanderExitCode, portNumber, positiveSeconds, processIo, subcommand, type CliIo } from './commander.js';
import type { ProfileChoice } from '../kube/crd-profile.js';
import { createLogger, type LogFormat } from '../log.js';
import { DEFAULT_NAMESPACE } from '../webhook/context.js';
import { addAuthOptions, addListenOptions, readAuth, type AuthFlags } from '../metrics/options.js';
import type { Listening } from '../metrics/http.js';

interface ControllerCliOptions extends AuthFlags {
  metricsPort?: number;
  metricsHost: string;
  dashboardPort?: number;
  dashboardHost: string;
  kubeconfig?: string;
  namespace: string;
  leaseName: string;
  identity: string;
  healthPort: number;
  resync: number;
  logLevel?: string;
  logFormat?: LogFormat;
  manifests?: string;
  dryRun?: boolean;
  output: 'text' | 'json';
  schedules: 'auto' | 'on' | 'off';
  crdProfile: ProfileChoice;
}

export const EXIT_CODES = [
  { code: 0, meaning: 'stopped by SIGTERM or SIGINT (the lease released), or --dry-run printed its preview' },
  { code: 1, meaning: 'cannot listen on --health-port' },
  { code: 2, meaning: 'usage or configuration error (kubeconfig, --manifests, a KernelChaos CRD of neither profile or not the --crd-profile one)' },
];

export function command(io: CliIo = processIo): Command {
  const cmd = subcommand({
      name: 'controller',
      description:
        'Select the pods each KernelChaos targets (Chaos Mesh selector semantics, opted-in pods only, ' +
          'KernelChaosPolicy honoured), label them for the node companion, remove the labels when an ' +
          'experiment ends or is deleted (finalizer), and aggregate status conditions and Events. ' +
          'Only the holder of the Lease acts; other replicas stand by.',
      exitCodes: EXIT_CODES,
      io,
    })
      .option('--kubeconfig <file>', 'kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account)')
      .addOption(
        new Option('--namespace <ns>', 'namespace kernelchaos runs in: holds the Lease; its pods are never targeted')
          .env('POD_NAMESPACE')
          .default(DEFAULT_NAMESPACE),
      )
      .option('--lease-name <name>', 'name of the coordination.k8s.io/v1 Lease used for leader election', 'kernelchaos-controller')
      .addOption(new Option('--identity <id>', 'this replica in the Lease (default: the pod name, else the host name)').env('POD_NAME').default(hostname()))
      .option('--health-port <n>', 'serve GET /healthz and /readyz (ready once synced) on this port; 0 = off', portNumber, 0)
      .addOption(new Option('--resync <seconds>', 'full reconcile at least this often').argParser(positiveSeconds).default(60_000, '60'))
      .option('--manifests <dir>', 'with --dry-run: read KernelChaos, KernelChaosPolicy, Namespace, Pod and Node objects from this directory')
      .option('--dry-run', 'print which pods each experiment targets and which labels would change, then exit (needs --manifests)')
      .addOption(new Option('--output <format>', 'with --dry-run').choices(['text', 'json']).default('text'))
      .addOption(
        new Option('--schedules <when>', "run Chaos Mesh Schedules of KernelChaos: auto = when the Schedule CRD is kernelchaos's (never beside Chaos Mesh's schedule controller)")
          .choices(['auto', 'on', 'off'])
          .default('auto'),
      );
  addLogOptions(cmd);
  addProfileOption(cmd);
  addListenOptions(cmd, 'metrics', 'Prometheus metrics (GET /metrics)');
  // Loopback by default: `kubectl port-forward` reaches it, the pod network does not.
  addListenOptions(cmd, 'dashboard', 'the read-only web dashboard (experiments, targets, faults over time)', '127.0.0.1');
  addAuthOptions(cmd);
  return cmd;
}

export async function main(argv: string[]): Promise<number> {
  let o: ControllerCliOptions;
  try {
    o = command().parse(argv, { from: 'user' }).opts<ControllerCliOptions>();
  } catch (err) {
    const code = commanderExitCode(err);
    if (code !== null) return code;
    throw err;
  }
  if (o.dryRun || o.manifests) {
    if (!o.dryRun || !o.manifests) {
      console.error('kernelchaos controller: --manifests and --dry-run go together (a directory cannot be patched); for a cluster use --kubeconfig');
      return 2;
    }
    return await dryRun(o);
  }
  const [{ loadKubeConfig }, { InformerStore }, { Controller, controllerStoreOptions }, { ScheduleRunner }, { ProfileError, describeProfile }] = await Promise.all([
    import('../kube/kubeconfig.js'),
    import('../kube/informer.js'),
    import('../controller/controller.js'),
    import('../controller/schedule-runner.js'),
    import('../kube/install-profile.js'),
  ]);
  // A kubeconfig or auth file that cannot be loaded is a usage error, reported before any log line.
  let kubeConfig;
  let auth;
  try {
    auth = await readAuth(o);
    kubeConfig = loadKubeConfig(o.kubeconfig);
  } catch (err) {
    console.error(`kernelchaos controller: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  const log = createLogger({ component: 'controller', stream: 'stdout', ...(o.logLevel ? { level: o.logLevel } : {}), ...(o.logFormat ? { format: o.logFormat } : {}) });
  // From here on every line goes through the logger, so the stream stays one format.
  const fail = (code: number, message: string): number => {
    log.error(message);
    log.flush();
    return code;
  };
  let controller;
  let store;
  try {
    store = new InformerStore(kubeConfig, { ...controllerStoreOptions(o.namespace), log });
    const schedules = o.schedules === 'off' ? undefined : new ScheduleRunner(kubeConfig, { log });
    controller = new Controller({
      kubeConfig,
      store,
      namespace: o.namespace,
      leaseName: o.leaseName,
      identity: o.identity,
      log,
      resyncMs: o.resync,
      crdProfile: o.crdProfile,
      schedulesMode: o.schedules,
      ...(schedules ? { schedules } : {}),
    });
  } catch (err) {
    return fail(2, err instanceof Error ? err.message : String(err));
  }

  let metricsServer: Listening | undefined;
  if (o.metricsPort !== undefined) {
    const [{ componentRegistry }, { ControllerMetrics }, { serveMetrics }] = await Promise.all([
      import('../metrics/registry.js'),
      import('../metrics/controller.js'),
      import('../metrics/serve.js'),
    ]);
    const registry = componentRegistry({ processMetrics: true });
    new ControllerMetrics(registry, controller);
    try {
      metricsServer = await serveMetrics(registry, { host: o.metricsHost, port: o.metricsPort, auth });
    } catch (err) {
      return fail(1, `cannot listen on --metrics-port ${o.metricsPort}: ${err instanceof Error ? err.message : String(err)}`);
    }
    log.info({ port: metricsServer.port }, 'metrics listening on /metrics');
  }

  let dashboard: Listening | undefined;
  if (o.dashboardPort !== undefined) {
    const { startDashboard } = await import('../dashboard/server.js');
    try {
      dashboard = await startDashboard({ store, host: o.dashboardHost, port: o.dashboardPort, auth });
    } catch (err) {
      await metricsServer?.close();
      return fail(1, `cannot listen on --dashboard-port ${o.dashboardPort}: ${err instanceof Error ? err.message : String(err)}`);
    }
    log.info({ url: dashboard.url }, 'dashboard listening');
  }

  let health: Server | undefined;
  if (o.healthPort > 0) {
    const c = controller;
    health = createServer((req, res) => {
      const ok = req.url === '/healthz' || (req.url === '/readyz' && c.ready);
      res.writeHead(req.url === '/healthz' || req.url === '/readyz' ? (ok ? 200 : 503) : 404, { 'Content-Type': 'text/plain' });
      const profile = c.profile.current ? `profile: ${describeProfile(c.profile.current)}` : `profile unknown: ${c.profile.waiting}`;
      res.end(`${ok ? `ok${c.isLeader ? ' (leader)' : ' (standby)'}` : 'not ready'}\n${profile}\n`);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        health?.once('error', reject);
        health?.listen(o.healthPort, resolve);
      });
    } catch (err) {
      return fail(1, `cannot listen on --health-port ${o.healthPort}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  log.info({ namespace: o.namespace, lease: o.leaseName, identity: o.identity }, 'starting: syncing cluster state');
  const stopping = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  // Not awaited: an unreachable API (or a CRD not installed yet) keeps it retrying, readiness false,
  // until SIGTERM; a CRD of neither profile, or not the --crd-profile one, stops it with the reason.
  const misconfigured = controller.start().then(
    () => {
      log.info('cluster state synced; campaigning for the lease');
      return new Promise<never>(() => {});
    },
    (err: unknown) => {
      if (err instanceof ProfileError) return err.message;
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'cannot start');
      return new Promise<never>(() => {});
    },
  );
  const outcome = await Promise.race([stopping.then((signal) => ({ signal })), misconfigured.then((message) => ({ fatal: message }))]);
  if ('fatal' in outcome) log.error(`install profile: ${outcome.fatal}`);
  else log.info({ signal: outcome.signal }, 'shutting down: releasing the lease');
  await controller.stop();
  health?.close();
  await metricsServer?.close();
  await dashboard?.close();
  log.flush();
  return 'fatal' in outcome ? 2 : 0;
}

async function dryRun(o: ControllerCliOptions): Promise<number> {
  const [{ ManifestDirStore }, { preview, formatPreview }, { silentLog }] = await Promise.all([
    import('../kube/manifestDir.js'),
    import('../controller/preview.js'),
    import('../kube/log.js'),
  ]);
  // Problems are printed below from store.problems, not logged.
  const store = new ManifestDirStore(o.manifests as string, { log: silentLog });
  try {
    await store.start();
  } catch (err) {
    console.error(`kernelchaos controller: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  } finally {
    store.stop();
  }
  const result = preview(store, o.namespace, new Date());
  if (o.output === 'json') {
    console.log(JSON.stringify({ ...result, problems: store.problems }, null, 2));
  } else {
    for (const p of store.problems) console.error(`skipped ${p.source}: ${p.message}`);
    console.log(formatPreview(result));
  }
  return 0;
}
