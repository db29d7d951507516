// A ClusterStore fed by @kubernetes/client-node list+watch informers, one per kind. The library's
// ListWatch relists on 410 Gone and re-watches when a stream ends; it stops on other errors, so
// this store restarts it with backoff. `start()` resolves once every kind has listed successfully.
import {
  CoreV1Api,
  CustomObjectsApi,
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { KindMap, StoreEvent, WatchedKind } from './store.js';
import { InMemoryStore } from './memory.js';
import { collectionPath, KIND_INFO } from './objects.js';
import { defaultLog, errorMessage, type Log } from './log.js';

export interface InformerStoreOptions {
  kinds: readonly WatchedKind[];
  /** Only pods matching this label selector (e.g. kernelchaos.dev/target=true). */
  podLabelSelector?: string;
  /** Only pods matching this field selector (e.g. spec.nodeName=node-1). */
  podFieldSelector?: string;
  /** Watch namespaced kinds in this namespace only (default: all namespaces). */
  namespace?: string;
  log?: Log;
  /** First delay before restarting a failed informer; doubles up to maxRestartDelayMs. Default 500. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
}

type ListFn = () => Promise<KubernetesListObject<KubernetesObject>>;

interface KindWatch {
  kind: WatchedKind;
  informer: ListWatch<KubernetesObject>;
  listed: boolean;
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The generated client turns list items into model classes with Date fields, while watch events
 * are plain JSON; round-tripping through JSON gives consumers one shape (strings, as on the wire).
 */
function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export class InformerStore extends InMemoryStore {
  private readonly log: Log;
  private readonly watches: KindWatch[] = [];
  private readonly restartDelayMs: number;
  private readonly maxRestartDelayMs: number;
  private stopped = false;
  private resolveSynced: (() => void) | undefined;

  constructor(private readonly kubeConfig: KubeConfig, private readonly options: InformerStoreOptions) {
    const log = options.log ?? defaultLog('kernelchaos-informers');
    super((error: unknown, event: StoreEvent) => log.error({ err: errorMessage(error), event: event.type, kind: event.kind }, 'store listener failed'));
    this.log = log;
    this.restartDelayMs = options.restartDelayMs ?? 500;
    this.maxRestartDelayMs = options.maxRestartDelayMs ?? 30_000;
    if (options.kinds.length === 0) throw new Error('InformerStore needs at least one kind to watch');
  }

  override async start(): Promise<void> {
    this.stopped = false;
    const synced = new Promise<void>((resolve) => {
      this.resolveSynced = resolve;
    });
    for (const kind of [...new Set(this.options.kinds)]) {
      const w = this.makeWatch(kind);
      this.watches.push(w);
      void this.run(w);
    }
    await synced;
  }

  override stop(): void {
    this.stopped = true;
    for (const w of this.watches) {
      if (w.timer) clearTimeout(w.timer);
      void w.informer.stop();
    }
    this.watches.length = 0;
  }

  private makeWatch(kind: WatchedKind): KindWatch {
    const namespace = KIND_INFO[kind].namespaced ? this.options.namespace : undefined;
    const path = collectionPath(kind, namespace);
    const isPod = kind === 'Pod';
    const labelSelector = isPod ? this.options.podLabelSelector : undefined;
    const fieldSelector = isPod ? this.options.podFieldSelector : undefined;
    const w: KindWatch = { kind, informer: undefined as unknown as ListWatch<KubernetesObject>, listed: false, failures: 0, timer: undefined };
    const list = this.listFunction(kind, namespace, labelSelector, fieldSelector);
    const trackedList: ListFn = async () => {
      const result = await list();
      w.failures = 0;
      if (!w.listed) {
        w.listed = true;
        this.log.info({ kind, count: result.items.length }, 'initial list received');
      }
      return { ...result, items: result.items.map(plain) };
    };
    w.informer = new ListWatch<KubernetesObject>(path, new Watch(this.kubeConfig), trackedList, false, labelSelector, fieldSelector);
    w.informer.on('add', (obj) => this.put(kind, obj as KindMap[typeof kind]));
    w.informer.on('update', (obj) => this.put(kind, obj as KindMap[typeof kind]));
    w.informer.on('delete', (obj) => this.delete(kind, obj.metadata?.namespace, obj.metadata?.name ?? ''));
    w.informer.on('error', (err: unknown) => this.failed(w, err));
    return w;
  }

  private listFunction(kind: WatchedKind, namespace: string | undefined, labelSelector?: string, fieldSelector?: string): ListFn {
    const info = KIND_INFO[kind];
    if (info.group !== '') {
      const api = this.kubeConfig.makeApiClient(CustomObjectsApi);
      const base = { group: info.group, version: info.version, plural: info.plural };
      return async () =>
        (namespace
          ? await api.listNamespacedCustomObject({ ...base, namespace })
          : await api.listClusterCustomObject(base)) as KubernetesListObject<KubernetesObject>;
    }
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    switch (kind) {
      case 'Pod':
        return async () =>
          namespace
            ? await core.listNamespacedPod({ namespace, labelSelector, fieldSelector })
            : await core.listPodForAllNamespaces({ labelSelector, fieldSelector });
      case 'Namespace':
        return async () => await core.listNamespace();
      case 'Node':
        return async () => await core.listNode();
      default:
        throw new Error(`no list function for ${kind}`);
    }
  }

  private async run(w: KindWatch): Promise<void> {
    if (this.stopped) return;
    try {
      await w.informer.start();
    } catch (err) {
      this.failed(w, err);
      return;
    }
    this.checkSynced();
  }

  private checkSynced(): void {
    if (this.synced || this.watches.length === 0) return;
    if (this.watches.every((w) => w.listed)) {
      this.markSynced(true);
      this.resolveSynced?.();
    }
  }

  /** The library's informer has stopped: restart it after a backoff (it relists only if it must). */
  private failed(w: KindWatch, err: unknown): void {
    if (this.stopped) return;
    w.failures++;
    const delay = Math.min(this.maxRestartDelayMs, this.restartDelayMs * 2 ** Math.min(w.failures - 1, 16));
    this.log.warn({ kind: w.kind, err: errorMessage(err).split('\n')[0], hint: hintFor(w.kind, err), retryInMs: delay }, 'watch failed; restarting');
    if (w.timer) clearTimeout(w.timer);
    w.timer = setTimeout(() => {
      w.timer = undefined;
      void this.run(w);
    }, delay);
    w.timer.unref();
  }
}

/** What a user can do about the usual failures, so the log line says more than "HTTP-Code: 404". */
export function hintFor(kind: WatchedKind, err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  const info = KIND_INFO[kind];
  const resource = info.group ? `${info.plural}.${info.group}` : info.plural;
  if (code === 404 && info.group !== '') return `the CustomResourceDefinition ${resource} is not installed: kubectl apply -f manifests/crds/`;
  if (code === 401) return 'the API server refused the credentials: check the kubeconfig user or the service account token';
  if (code === 403) return `not allowed to list/watch ${resource}: check the RBAC rules (manifests/*/rbac.yaml)`;
  return undefined;
}
