// Wires the companion together: store -> lifecycle -> engine, the reporting sink, and the gRPC
// servers. Separate from the CLI so tests and the benchmark can run it with another engine.
import { readFile } from 'node:fs/promises';
import { TARGET_LABEL_SELECTOR } from '../api/labels.js';
import { DEFAULT_NAMESPACE } from '../webhook/context.js';
import type { ContainerRecord } from '../api/types.js';
import type { ArmOptions, FaultEngine } from '../bpf/types.js';
import type { Log } from '../kube/log.js';
import { ManifestDirStore } from '../kube/manifestDir.js';
import type { ClusterStore, WatchedKind } from '../kube/store.js';
import type { KindScope } from '../kube/informer.js';
import { nodeAllotmentsSelector } from '../kube/reports.js';
import { parseCron } from '../schedule/cron.js';
import { BpfkiInjector } from './bpfki.js';
import { CgroupResolver } from './cgroup-resolver.js';
import { describeTargetHierarchy } from '../bpf/cgroup-hierarchy.js';
import type { MtlsMaterial, RunningServer, TlsFiles } from './grpc.js';
import { Companion } from './lifecycle.js';
import type { Validate } from './model.js';
import { LogSink, type StatusSink } from './sink.js';
import type { AllowedClients } from './client-identity.js';
import { CompanionMetrics } from '../metrics/companion.js';
import type { HttpAuth, Listening } from '../metrics/http.js';
import { componentRegistry } from '../metrics/registry.js';
import { serveMetrics } from '../metrics/serve.js';

/**
 * What a companion watches in a cluster: its node's targeted pods (by selector), their experiments,
 * what the admission gate reads, and its node's `times` allotments (one object, by selector).
 */
export const COMPANION_KINDS = ['Pod', 'KernelChaos', 'Namespace', 'KernelChaosPolicy', 'ConfigMap'] as const;

export function companionScopes(node: string, releaseNamespace: string): Partial<Record<WatchedKind, KindScope>> {
  return { ConfigMap: { namespace: releaseNamespace, labelSelector: nodeAllotmentsSelector(node) } };
}

export type ClusterSource = { kind: 'manifests'; dir: string; pollIntervalMs?: number } | { kind: 'kubernetes'; kubeconfig?: string };

export type { TlsFiles } from './grpc.js';

export interface CompanionConfig {
  node: string;
  source: ClusterSource;
  cgroupRoot: string;
  procRoot: string;
  /** kernelchaos's own namespace (never faulted); default kernelchaos-system. */
  releaseNamespace?: string;
  /** gRPC (mutual TLS) for kernelchaos.v1.Companion; off when absent. */
  grpc?: { host: string; port: number; tls: TlsFiles; clients?: AllowedClients };
  /** bpfki.BPFKIService; off unless a port is given. Uses the same TLS files. */
  bpfkiPort?: number;
  /** Who may call bpfki (default: nobody). */
  bpfkiClients?: AllowedClients;
  /**
   * Serve bpfki without TLS (only on the explicit --bpfki-plaintext), bound to `host`: Chaos Mesh's
   * controller-manager dials bpfki with grpc Insecure() at the chaos-daemon pod's IP, BPFKI_PORT.
   */
  bpfkiPlaintext?: { host: string };
  armOptions?: ArmOptions;
  /** GET /metrics (Prometheus); off when absent. */
  metrics?: CompanionMetricsConfig;
}

export interface CompanionMetricsConfig {
  host: string;
  port: number;
  auth: HttpAuth;
  /** Per-container series (pod and container labels). */
  podLabels: boolean;
  /** Default process_* and nodejs_* metrics (one registry per process should have them). */
  processMetrics: boolean;
}

export interface CompanionDeps {
  engine: FaultEngine;
  validate: Validate;
  log: Log;
  /** Defaults to one made from `config.source`. */
  store?: ClusterStore;
}

export interface RunningCompanion {
  companion: Companion;
  bpfki: BpfkiInjector | undefined;
  grpcPort: number | undefined;
  bpfkiPort: number | undefined;
  metricsPort: number | undefined;
  /** Detaches everything (recording `reason`), closes the servers and the store; the process may then exit. */
  stop(reason: string): Promise<void>;
}

export async function readTls(files: TlsFiles): Promise<MtlsMaterial> {
  const read = async (path: string, flag: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new Error(`${flag} ${path}: cannot read (${err instanceof Error ? err.message : String(err)})`);
    }
  };
  return { cert: await read(files.certFile, '--tls-cert'), key: await read(files.keyFile, '--tls-key'), ca: await read(files.caFile, '--tls-ca') };
}

// The Kubernetes client is large (~60 MB resident): load it only in cluster mode.
async function clusterParts(config: CompanionConfig, log: Log): Promise<{ store: ClusterStore; sink: StatusSink; seeds?: Map<string, ContainerRecord[]> }> {
  if (config.source.kind === 'manifests') {
    const store = new ManifestDirStore(config.source.dir, { log, persistent: true, ...(config.source.pollIntervalMs ? { pollIntervalMs: config.source.pollIntervalMs } : {}) });
    return { store, sink: new LogSink(log) };
  }
  const [{ KubeConfig }, { InformerStore }, { KubeStatusSink, clientNodeReportApi }] = await Promise.all([
    import('@kubernetes/client-node'),
    import('../kube/informer.js'),
    import('./kube-sink.js'),
  ]);
  const kc = new KubeConfig();
  if (config.source.kubeconfig) kc.loadFromFile(config.source.kubeconfig);
  else kc.loadFromDefault();
  // Only this node's targeted pods: the apiserver filters, so a 5,000-pod cluster costs a node little.
  const store = new InformerStore(kc, {
    // Namespaces and policies feed the admission gate the companion checks before arming.
    kinds: COMPANION_KINDS,
    podLabelSelector: TARGET_LABEL_SELECTOR,
    podFieldSelector: `spec.nodeName=${config.node}`,
    scopes: companionScopes(config.node, config.releaseNamespace ?? DEFAULT_NAMESPACE),
    log,
  });
  const sink = new KubeStatusSink({ api: clientNodeReportApi(kc), node: config.node, namespace: config.releaseNamespace ?? DEFAULT_NAMESPACE, log });
  // Counts continue from this node's earlier reports; without them (API away) they restart from the status.
  let seeds: Map<string, ContainerRecord[]> | undefined;
  try {
    seeds = await sink.loadSeeds();
  } catch (err) {
    log.warn({ err: String(err) }, 'reading this node\'s earlier reports failed; counts continue from the status records');
  }
  return { store, sink, ...(seeds ? { seeds } : {}) };
}

export async function runCompanion(config: CompanionConfig, deps: CompanionDeps): Promise<RunningCompanion> {
  const { log } = deps;
  const resolver = new CgroupResolver({ cgroupRoot: config.cgroupRoot, procRoot: config.procRoot });
  const choice = await resolver.hierarchy();
  if (choice.ok) log.info({ cgroupRoot: config.cgroupRoot, hierarchy: choice.hierarchy }, `targets by ${describeTargetHierarchy(choice.hierarchy)}`);
  else log.warn({ cgroupRoot: config.cgroupRoot }, `${choice.reason}: this node can validate and render, but not inject`);
  // Every program on this node names its targets in the node's hierarchy.
  const armOptions: ArmOptions | undefined = choice.ok ? { ...config.armOptions, hierarchy: choice.hierarchy } : config.armOptions;

  // Read TLS material before anything is attached, so a bad path fails fast with nothing to undo.
  const tls = config.grpc ? await readTls(config.grpc.tls) : undefined;
  const parts = await clusterParts(config, log);
  const store = deps.store ?? parts.store;
  const sink = parts.sink;
  const registry = config.metrics ? componentRegistry({ processMetrics: config.metrics.processMetrics }) : undefined;
  const metrics = registry ? new CompanionMetrics(registry, { podLabels: config.metrics?.podLabels ?? false }) : undefined;
  const engine = metrics ? metrics.instrument(deps.engine) : deps.engine;
  const companion = new Companion({
    node: config.node,
    store,
    engine,
    resolver,
    validate: deps.validate,
    parseCron,
    sink,
    log,
    ...(parts.seeds ? { seedRecords: parts.seeds } : {}),
    ...(armOptions ? { armOptions } : {}),
    ...(config.releaseNamespace ? { releaseNamespace: config.releaseNamespace } : {}),
    // Each counter change is a report write in a cluster: every 15 s per experiment is plenty there.
    countersIntervalMs: config.source.kind === 'kubernetes' ? 15_000 : 5000,
  });
  const bpfki =
    config.bpfkiPort !== undefined
      ? new BpfkiInjector({ resolver, engine, validate: deps.validate, log, ...(armOptions ? { armOptions } : {}) })
      : undefined;

  metrics?.watch(companion);
  if (bpfki) metrics?.watch(bpfki);

  const servers: RunningServer[] = [];
  let stopWatching: () => void = () => {};
  let grpcPort: number | undefined;
  let bpfkiPort: number | undefined;
  let metricsServer: Listening | undefined;
  try {
    // Metrics first: a scrape during a slow first sync shows the process is up.
    if (registry && config.metrics) {
      metricsServer = await serveMetrics(registry, { host: config.metrics.host, port: config.metrics.port, auth: config.metrics.auth });
      log.info({ port: metricsServer.port }, 'metrics listening on /metrics');
    }
    await store.start();
    await companion.start();
    if (config.grpc && tls) {
      const { bpfkiHandlers, companionHandlers, companionPackageDefinition, guardService, loadBpfkiService, loadCompanionService, serve, watchedServerCredentials } = await import('./grpc.js');
      const refused = (reason: string): void => log.warn({}, `gRPC call refused: ${reason}`);
      // The files were read once above to fail fast; from here on they are re-read as they rotate.
      const watched = await watchedServerCredentials(config.grpc.tls);
      stopWatching = watched.close;
      const { credentials } = watched;
      const companionImpl = guardService(companionHandlers(companion, bpfki), config.grpc.clients ?? { kind: 'any' }, 'kernelchaos.v1.Companion', refused);
      const s = await serve(loadCompanionService(), companionImpl, { host: config.grpc.host, port: config.grpc.port, credentials, reflection: companionPackageDefinition() });
      servers.push(s);
      grpcPort = s.port;
      log.info({ port: s.port }, 'kernelchaos.v1.Companion listening (mutual TLS)');
      if (bpfki && config.bpfkiPort !== undefined && !config.bpfkiPlaintext) {
        const allowed = config.bpfkiClients ?? { kind: 'names', names: [] };
        const b = await serve(loadBpfkiService(), guardService(bpfkiHandlers(bpfki), allowed, 'bpfki.BPFKIService', refused), { host: config.grpc.host, port: config.bpfkiPort, credentials });
        servers.push(b);
        bpfkiPort = b.port;
        log.warn(
          { port: b.port, clients: allowed.kind === 'names' ? allowed.names : 'any' },
          'bpfki.BPFKIService listening (mutual TLS): these clients can fault processes in containers of pods on this node',
        );
      }
    }
    if (bpfki && config.bpfkiPort !== undefined && config.bpfkiPlaintext) {
      const grpcJs = await import('@grpc/grpc-js');
      const { bpfkiHandlers, loadBpfkiService, serve } = await import('./grpc.js');
      const b = await serve(loadBpfkiService(), bpfkiHandlers(bpfki), {
        host: config.bpfkiPlaintext.host,
        port: config.bpfkiPort,
        credentials: grpcJs.ServerCredentials.createInsecure(),
      });
      servers.push(b);
      bpfkiPort = b.port;
      log.warn(
        { host: config.bpfkiPlaintext.host, port: b.port },
        'bpfki.BPFKIService listening WITHOUT TLS (--bpfki-plaintext), as Chaos Mesh dials bpfki: anyone who can reach this address can fault processes in containers of pods on this node',
      );
    }
  } catch (err) {
    await companion.stop('companion failed to start');
    await Promise.all(servers.map((s) => s.stop()));
    await metricsServer?.close();
    metrics?.close();
    stopWatching();
    store.stop();
    throw err;
  }

  // The companion must run until told to stop, armed or idle, whatever its source: an informer
  // between reconnects or an idle manifest directory holds nothing else that keeps Node's loop alive.
  const keepAlive = setInterval(() => undefined, 2 ** 31 - 1);
  let stopping: Promise<void> | undefined;
  return {
    companion,
    bpfki,
    grpcPort,
    bpfkiPort,
    metricsPort: metricsServer?.port,
    stop: (reason) =>
      (stopping ??= (async () => {
        bpfki?.stopAll(reason);
        await companion.stop(reason);
        store.stop();
        await Promise.all(servers.map((s) => s.stop()));
        await metricsServer?.close();
        metrics?.close();
        stopWatching();
        clearInterval(keepAlive);
      })()),
  };
}
