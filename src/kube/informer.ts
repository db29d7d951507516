// A ClusterStore fed by @kubernetes/client-node list+watch informers, one per kind. The library's
// ListWatch relists on 410 Gone and re-watches when a stream ends; it stops on other errors, so
// this store restarts it with backoff. `start()` resolves once every kind has listed successfully.
// Lists are paginated (a 100k-pod list is not one response), watches ask for bookmarks (a quiet
// watch keeps a fresh resourceVersion, so a reconnect does not relist) and are cut when nothing,
// not even a bookmark, arrived for `watchIdleMs` (a half-open connection would otherwise hang until
// TCP keepalive gives up), and every list has a deadline.
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
import { apiClient, DEFAULT_API_TIMEOUT_MS } from './client.js';
import type { Projections } from './projection.js';

/** Where one kind is watched: a namespace and selectors the apiserver filters on. */
export interface KindScope {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface InformerStoreOptions {
  kinds: readonly WatchedKind[];
  /** Only pods matching this label selector (e.g. kernelchaos.dev/target=true). */
  podLabelSelector?: string;
  /** Only pods matching this field selector (e.g. spec.nodeName=node-1). */
  podFieldSelector?: string;
  /** Watch namespaced kinds in this namespace only (default: all namespaces). */
  namespace?: string;
  /** Per-kind scope; overrides the options above for that kind. */
  scopes?: Partial<Record<WatchedKind, KindScope>>;
  /** Per kind, what is kept of each object (src/kube/projection.ts); applied before anything is cached. */
  projections?: Projections;
  /** Items per list page. Default 500 (client-go's). */
  pageSize?: number;
  /** Cut a watch that delivered nothing (not even a bookmark) for this long. Default 5 min. */
  watchIdleMs?: number;
  /** Deadline for a list page, and for a watch's response headers. Default DEFAULT_API_TIMEOUT_MS. */
  requestTimeoutMs?: number;
  log?: Log;
  /** First delay before restarting a failed informer; doubles up to maxRestartDelayMs. Default 500. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
}

type ListFn = () => Promise<KubernetesListObject<KubernetesObject>>;
type PageFn = (page: { limit: number; _continue?: string }) => Promise<KubernetesListObject<KubernetesObject>>;

/** Server-side watch timeout, spread as client-go does so watches do not all reconnect at once. */
function watchTimeoutSeconds(): number {
  return Math.floor(300 + Math.random() * 300);
}

/**
 * The library's Watch with bookmarks, a server-side timeout, a deadline for the response headers and
 * an idle cut-off. Everything else (parsing, done-once) stays the library's.
 */
class DeadlineWatch extends Watch {
  constructor(
    kubeConfig: KubeConfig,
    private readonly idleMs: number,
    headerTimeoutMs: number,
    private readonly project: (obj: unknown) => unknown = (obj) => obj,
  ) {
    // node-fetch's `timeout` bounds the wait for the response headers; the stream itself is bounded by the idle timer.
    const bounded = Object.create(kubeConfig) as KubeConfig;
    bounded.applyToFetchOptions = async (opts) => ({ ...(await kubeConfig.applyToFetchOptions(opts)), timeout: headerTimeoutMs }) as Awaited<ReturnType<KubeConfig['applyToFetchOptions']>>;
    super(bounded);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    let timer: NodeJS.Timeout | undefined;
    // Set once the stream is open; events can only arrive after that.
    const stream: { controller?: AbortController } = {};
    let finished = false;
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => stream.controller?.abort(), this.idleMs);
      timer.unref();
    };
    const controller = await super.watch(
      path,
      { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds() },
      (phase, obj, watchObj) => {
        arm();
        // Bookmarks and errors carry no object worth projecting (a bookmark's only field is its resourceVersion).
        callback(phase, phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? this.project(obj) : obj, watchObj);
      },
      (err) => {
        finished = true;
        if (timer) clearTimeout(timer);
        done(err);
      },
    );
    stream.controller = controller;
    if (!finished) arm();
    return controller;
  }
}

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
    const scope = this.scopeOf(kind);
    const namespace = KIND_INFO[kind].namespaced ? scope.namespace : undefined;
    const path = collectionPath(kind, namespace);
    const { labelSelector, fieldSelector } = scope;
    const w: KindWatch = { kind, informer: undefined as unknown as ListWatch<KubernetesObject>, listed: false, failures: 0, timer: undefined };
    const projection = this.options.projections?.[kind] as ((obj: KubernetesObject) => KubernetesObject) | undefined;
    const project = (obj: KubernetesObject): KubernetesObject => (projection ? projection(obj) : obj);
    const list = this.listFunction(kind, namespace, labelSelector, fieldSelector, (item) => project(plain(item)));
    const trackedList: ListFn = async () => {
      const result = await list();
      w.failures = 0;
      if (!w.listed) {
        w.listed = true;
        this.log.info({ kind, count: result.items.length }, 'initial list received');
      }
      return result;
    };
    const watch = new DeadlineWatch(
      this.kubeConfig,
      this.options.watchIdleMs ?? 300_000,
      this.options.requestTimeoutMs ?? DEFAULT_API_TIMEOUT_MS,
      (obj) => project(obj as KubernetesObject),
    );
    w.informer = new ListWatch<KubernetesObject>(path, watch, trackedList, false, labelSelector, fieldSelector);
    w.informer.on('add', (obj) => this.put(kind, obj as KindMap[typeof kind]));
    w.informer.on('update', (obj) => this.put(kind, obj as KindMap[typeof kind]));
    w.informer.on('delete', (obj) => this.delete(kind, obj.metadata?.namespace, obj.metadata?.name ?? ''));
    w.informer.on('error', (err: unknown) => this.failed(w, err));
    return w;
  }

  private scopeOf(kind: WatchedKind): KindScope {
    const own = this.options.scopes?.[kind];
    if (own) return own;
    const isPod = kind === 'Pod';
    return {
      ...(this.options.namespace !== undefined ? { namespace: this.options.namespace } : {}),
      ...(isPod && this.options.podLabelSelector !== undefined ? { labelSelector: this.options.podLabelSelector } : {}),
      ...(isPod && this.options.podFieldSelector !== undefined ? { fieldSelector: this.options.podFieldSelector } : {}),
    };
  }

  /**
   * Lists every page (limit/continue), returning one list with the last page's resourceVersion.
   * Each page is converted (`convert`) as it arrives, so only one page of whole objects is held at once.
   */
  private listFunction(
    kind: WatchedKind,
    namespace: string | undefined,
    labelSelector: string | undefined,
    fieldSelector: string | undefined,
    convert: (item: KubernetesObject) => KubernetesObject,
  ): ListFn {
    const page = this.pageFunction(kind, namespace, labelSelector, fieldSelector);
    const limit = this.options.pageSize ?? 500;
    return async () => {
      const items: KubernetesObject[] = [];
      let token: string | undefined;
      let last: KubernetesListObject<KubernetesObject>;
      do {
        last = await page({ limit, ...(token ? { _continue: token } : {}) });
        for (const item of last.items) items.push(convert(item));
        token = last.metadata?._continue || undefined;
      } while (token);
      return { ...last, items };
    };
  }

  private pageFunction(kind: WatchedKind, namespace: string | undefined, labelSelector?: string, fieldSelector?: string): PageFn {
    const info = KIND_INFO[kind];
    const timeoutMs = this.options.requestTimeoutMs ?? DEFAULT_API_TIMEOUT_MS;
    const sel = { ...(labelSelector !== undefined ? { labelSelector } : {}), ...(fieldSelector !== undefined ? { fieldSelector } : {}) };
    if (info.group !== '') {
      const api = apiClient(this.kubeConfig, CustomObjectsApi, { timeoutMs });
      const base = { group: info.group, version: info.version, plural: info.plural, ...sel };
      return async (p) =>
        (namespace
          ? await api.listNamespacedCustomObject({ ...base, namespace, ...p })
          : await api.listClusterCustomObject({ ...base, ...p })) as KubernetesListObject<KubernetesObject>;
    }
    const core = apiClient(this.kubeConfig, CoreV1Api, { timeoutMs });
    switch (kind) {
      case 'Pod':
        return async (p) => (namespace ? await core.listNamespacedPod({ namespace, ...sel, ...p }) : await core.listPodForAllNamespaces({ ...sel, ...p }));
      case 'ConfigMap':
        return async (p) => (namespace ? await core.listNamespacedConfigMap({ namespace, ...sel, ...p }) : await core.listConfigMapForAllNamespaces({ ...sel, ...p }));
      case 'Namespace':
        return async (p) => await core.listNamespace({ ...sel, ...p });
      case 'Node':
        return async (p) => await core.listNode({ ...sel, ...p });
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
