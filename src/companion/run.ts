// Wires the companion together: store -> lifecycle -> engine, the reporting sink, and the gRPC
// servers. Separate from the CLI so tests and the benchmark can run it with another engine.
import { readFile } from 'node:fs/promises';
import { TARGET_LABEL_SELECTOR } from '../api/labels.js';
import { DEFAULT_NAMESPACE } from '../webhook/context.js';
import type { ContainerRecord } from '../api/types.js';
import type { ArmOptions, FaultEngine } from '../bpf/types.js';
import type { Log } from '../kube/log.js';
import { ManifestDirStore } from '../kube/manifestDir.js';
import type { ClusterStore } from '../kube/store.js';
import { parseCron } from '../schedule/cron.js';
import { BpfkiInjector } from './bpfki.js';
import { CgroupResolver, CGROUP_V1_UNSUPPORTED } from './cgroup-resolver.js';
import type { MtlsMaterial, RunningServer, TlsFiles } from './grpc.js';
import { Companion } from './lifecycle.js';
import type { Validate } from './model.js';
import { LogSink, type StatusSink } from './sink.js';

/** What a companion watches in a cluster (only its node's targeted pods, by selector). */
export const COMPANION_KINDS = ['Pod', 'KernelChaos'] as const;

export type ClusterSource = { kind: 'manifests'; dir: string; pollIntervalMs?: number } | { kind: 'kubernetes'; kubeconfig?: string };

export type { TlsFiles } from './grpc.js';

export interface CompanionConfig {
  node: string;
  source: ClusterSource;
  cgroupRoot: string;
  procRoot: string;
  /** gRPC (mutual TLS) for kernelchaos.v1.Companion; off when absent. */
  grpc?: { host: string; port: number; tls: TlsFiles };
  /** bpfki.BPFKIService; off unless a port is given. Uses the same TLS files. */
  bpfkiPort?: number;
  armOptions?: ArmOptions;
  /** The release namespace, where this node's reports go (cluster mode). Default DEFAULT_NAMESPACE. */
  namespace?: string;
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
  /** Detaches everything (recording `reason`), closes the servers and the store. */
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
    const store = new ManifestDirStore(config.source.dir, { log, ...(config.source.pollIntervalMs ? { pollIntervalMs: config.source.pollIntervalMs } : {}) });
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
    kinds: COMPANION_KINDS,
    podLabelSelector: TARGET_LABEL_SELECTOR,
    podFieldSelector: `spec.nodeName=${config.node}`,
    log,
  });
  const sink = new KubeStatusSink({ api: clientNodeReportApi(kc), node: config.node, namespace: config.namespace ?? DEFAULT_NAMESPACE, log });
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
  const version = await resolver.cgroupVersion();
  if (version.version === 1) log.warn({ cgroupRoot: config.cgroupRoot }, CGROUP_V1_UNSUPPORTED);
  else if (version.version === 'missing') log.warn({ cgroupRoot: config.cgroupRoot }, version.reason);

  // Read TLS material before anything is attached, so a bad path fails fast with nothing to undo.
  const tls = config.grpc ? await readTls(config.grpc.tls) : undefined;
  const parts = await clusterParts(config, log);
  const store = deps.store ?? parts.store;
  const sink = parts.sink;
  const companion = new Companion({
    node: config.node,
    store,
    engine: deps.engine,
    resolver,
    validate: deps.validate,
    parseCron,
    sink,
    log,
    ...(parts.seeds ? { seedRecords: parts.seeds } : {}),
    ...(config.armOptions ? { armOptions: config.armOptions } : {}),
    // Each counter change is a report write in a cluster: every 15 s per experiment is plenty there.
    countersIntervalMs: config.source.kind === 'kubernetes' ? 15_000 : 5000,
  });
  const bpfki =
    config.bpfkiPort !== undefined
      ? new BpfkiInjector({ resolver, engine: deps.engine, validate: deps.validate, log, ...(config.armOptions ? { armOptions: config.armOptions } : {}) })
      : undefined;

  const servers: RunningServer[] = [];
  let stopWatching: () => void = () => {};
  let grpcPort: number | undefined;
  let bpfkiPort: number | undefined;
  try {
    await store.start();
    await companion.start();
    if (config.grpc && tls) {
      const { bpfkiHandlers, companionHandlers, loadBpfkiService, loadCompanionService, serve, watchedServerCredentials } = await import('./grpc.js');
      // The files were read once above to fail fast; from here on they are re-read as they rotate.
      const watched = await watchedServerCredentials(config.grpc.tls);
      stopWatching = watched.close;
      const { credentials } = watched;
      const s = await serve(loadCompanionService(), companionHandlers(companion, bpfki), { host: config.grpc.host, port: config.grpc.port, credentials });
      servers.push(s);
      grpcPort = s.port;
      log.info({ port: s.port }, 'kernelchaos.v1.Companion listening (mutual TLS)');
      if (bpfki && config.bpfkiPort !== undefined) {
        const b = await serve(loadBpfkiService(), bpfkiHandlers(bpfki), { host: config.grpc.host, port: config.bpfkiPort, credentials });
        servers.push(b);
        bpfkiPort = b.port;
        log.warn({ port: b.port }, 'bpfki.BPFKIService listening (mutual TLS): any holder of a client certificate can fault any process on this node');
      }
    }
  } catch (err) {
    await companion.stop('companion failed to start');
    await Promise.all(servers.map((s) => s.stop()));
    stopWatching();
    store.stop();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    companion,
    bpfki,
    grpcPort,
    bpfkiPort,
    stop: (reason) =>
      (stopping ??= (async () => {
        bpfki?.stopAll(reason);
        await companion.stop(reason);
        store.stop();
        await Promise.all(servers.map((s) => s.stop()));
        stopWatching();
      })()),
  };
}
