// A small, honest stand-in for kube-apiserver (no apiserver binary can be installed here), spoken to
// through @kubernetes/client-node exactly as a cluster would be. It implements what the controller,
// stores and leader election rely on, following the API conventions:
// - list with a collection resourceVersion; label and field selectors; pagination (`limit`, `continue`:
//   every page carries the first page's resourceVersion, an expired token gets 410);
// - watch (`?watch=true&resourceVersion=N`): newline-delimited JSON events over a chunked response,
//   replaying history after N; a resourceVersion older than the retained history gets an ERROR event
//   carrying a 410 Expired Status and the stream ends (or HTTP 410, `goneAs: 'status'`);
//   selector-filtered watches turn "stopped matching" into DELETED and "started matching" into ADDED;
//   `allowWatchBookmarks=true` gets a BOOKMARK event every `bookmarkIntervalMs`;
// - get, create (generateName, uid, creationTimestamp, generation), update (PUT), delete;
// - patch: JSON patch (RFC 6902, with `test`), JSON merge patch (RFC 7386), strategic merge patch
//   treated as merge (core kinds only: custom resources answer 415 as the apiserver does);
// - optimistic concurrency: a write carrying a stale metadata.resourceVersion gets 409 Conflict;
// - the status subresource for custom kinds that declare it: the main resource ignores status, /status
//   changes only status; generation increases on spec changes;
// - finalizers: DELETE of an object with finalizers sets deletionTimestamp; removing the last one
//   deletes it; no new finalizers once deletion started;
// - namespaced objects need their Namespace to exist (404 otherwise), as with the NamespaceLifecycle
//   admission plugin;
// - pruning: a custom kind given its CRD's structural schema drops unknown fields on every write
//   (metadata excepted, as the apiserver keeps ObjectMeta by its own rules);
// - CustomResourceDefinitions are plain stored objects (what a client GETs), `crdResources` below
//   derives the served kinds from them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { AddressInfo } from 'node:net';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { KubeConfig } from '@kubernetes/client-node';
import { parseLabelSelector, requirementsMatch, parseFieldSelector, fieldRequirementsMatch, type Requirement, type FieldRequirement } from '../../src/selection/index.js';
import type { V1Pod } from '@kubernetes/client-node';
import { pruneToSchema, type Schema } from '../../src/kube/crd-profile.js';

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** Custom resources with `subresources: {status: {}}`. */
  statusSubresource?: boolean;
  custom?: boolean;
  /** The CRD's openAPIV3Schema: writes are pruned by it. */
  schema?: Schema;
}

export const DEFAULT_RESOURCES: readonly ResourceType[] = [
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false },
  { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  { group: 'chaos-mesh.org', version: 'v1alpha1', plural: 'kernelchaos', kind: 'KernelChaos', namespaced: true, statusSubresource: true, custom: true },
  { group: 'kernelchaos.dev', version: 'v1alpha1', plural: 'kernelchaospolicies', kind: 'KernelChaosPolicy', namespaced: true, custom: true },
  { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false },
];

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
};

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HistoryEvent {
  rv: number;
  resource: ResourceType;
  type: EventType;
  object: KubeObject;
  /** The object before the change (MODIFIED), for selector transitions. */
  previous?: KubeObject;
}

interface Watcher {
  resource: ResourceType;
  namespace: string | undefined;
  labels: Requirement[];
  fields: FieldRequirement[];
  res: ServerResponse;
}

/** A request as the hooks see it. */
export interface RequestInfo {
  /** The bearer token the client sent. */
  user: string;
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string;
  body: unknown;
  resource: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
  watch: boolean;
}

/** Runs before a request is served; may change state (e.g. a concurrent writer) or answer instead. */
export type RequestHook = (req: RequestInfo, server: FakeApiServer) => void | { status: number; body: unknown } | Promise<void | { status: number; body: unknown }>;

export interface FakeApiServerOptions {
  resources?: readonly ResourceType[];
  /** How expired watches are refused: a 200 stream with an ERROR event (default, like the apiserver), or HTTP 410. */
  goneAs?: 'event' | 'status';
  /** How often a watch that allows bookmarks gets one. Default 1000 ms. */
  bookmarkIntervalMs?: number;
  /** Keep request bodies in `requests` (default true; the scale benchmark turns it off to measure sizes only). */
  recordBodies?: boolean;
}

export interface RecordedRequest {
  /** The bearer token the client sent (which replica/user made the request). */
  user: string;
  method: string;
  path: string;
  query: string;
  contentType: string;
  status: number;
  body: unknown;
  /** Bytes of the request body (what the client wrote). */
  requestBytes: number;
  /** Bytes of the response body (0 for watches). */
  responseBytes: number;
}

export class ApiError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string, readonly details?: Record<string, unknown>) {
    super(message);
  }
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const out: Record<string, unknown> = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function statusBody(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...(details ? { details } : {}) };
}

export class FakeApiServer {
  readonly resources: readonly ResourceType[];
  private readonly server: Server;
  private readonly store = new Map<string, KubeObject>();
  private readonly sorted = new Map<ResourceType, KubeObject[]>();
  private history: HistoryEvent[] = [];
  /** Watches from a resourceVersion below this are expired (410). */
  private oldestWatchable = 0;
  private rv = 1;
  private readonly watchers = new Set<Watcher>();
  private readonly hooks: RequestHook[] = [];
  private readonly goneAs: 'event' | 'status';
  private readonly bookmarkIntervalMs: number;
  private readonly recordBodies: boolean;
  /** Bytes written to watch streams (what every watcher received). */
  watchBytes = 0;
  readonly requests: RecordedRequest[] = [];
  private port = 0;

  constructor(options: FakeApiServerOptions = {}) {
    this.resources = options.resources ?? DEFAULT_RESOURCES;
    this.goneAs = options.goneAs ?? 'event';
    this.bookmarkIntervalMs = options.bookmarkIntervalMs ?? 1000;
    this.recordBodies = options.recordBodies ?? true;
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.closeWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A KubeConfig pointing at this server, as a user's kubeconfig file would; `token` names the client in `requests`. */
  kubeConfig(token = 'fake-token'): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'tester', token }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'tester', namespace: 'default' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** Adds a hook run before every request (returns a function that removes it). */
  hook(fn: RequestHook): () => void {
    this.hooks.push(fn);
    return () => {
      const i = this.hooks.indexOf(fn);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** Ends every open watch stream, as the apiserver does when a watch times out. */
  closeWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Forgets history up to now (etcd compaction): watches from an older resourceVersion get 410. */
  compact(): void {
    this.history = [];
    this.oldestWatchable = this.rv;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  openWatches(plural?: string): number {
    return [...this.watchers].filter((w) => plural === undefined || w.resource.plural === plural).length;
  }

  // ---- direct state access for tests (as if another client wrote it) ----

  resource(apiVersion: string, kindOrPlural: string): ResourceType {
    const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/') as [string, string]) : ['', apiVersion];
    const r = this.resources.find((x) => x.group === group && x.version === version && (x.kind === kindOrPlural || x.plural === kindOrPlural));
    if (!r) throw new Error(`fake apiserver: no resource ${apiVersion} ${kindOrPlural}`);
    return r;
  }

  get<T = KubeObject>(apiVersion: string, kind: string, namespace: string | undefined, name: string): T | undefined {
    const r = this.resource(apiVersion, kind);
    const o = this.store.get(this.key(r, namespace, name));
    return o ? (clone(o) as T) : undefined;
  }

  list<T = KubeObject>(apiVersion: string, kind: string, namespace?: string): T[] {
    const r = this.resource(apiVersion, kind);
    return this.objectsOf(r, namespace).map((o) => clone(o) as T);
  }

  /** Creates an object (kind and apiVersion from the object) as another client would; returns it as stored. */
  create<T = KubeObject>(object: Record<string, unknown>): T {
    const apiVersion = String(object.apiVersion ?? '');
    const r = this.resource(apiVersion, String(object.kind ?? ''));
    const meta = (object.metadata ?? {}) as KubeObject['metadata'];
    return this.doCreate(r, r.namespaced ? meta.namespace ?? 'default' : undefined, object as KubeObject) as T;
  }

  /** Applies a change to a stored object as another client would (bumps resourceVersion, emits MODIFIED). */
  mutate<T = KubeObject>(apiVersion: string, kind: string, namespace: string | undefined, name: string, change: (o: KubeObject) => void): T {
    const r = this.resource(apiVersion, kind);
    const current = this.mustGet(r, namespace, name);
    const next = clone(current);
    change(next);
    return this.commitUpdate(r, current, next, 'all') as T;
  }

  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string): void {
    const r = this.resource(apiVersion, kind);
    this.doDelete(r, namespace, name);
  }

  // ---- internals ----

  private key(r: ResourceType, namespace: string | undefined, name: string): string {
    return `${r.group}/${r.plural}/${r.namespaced ? namespace ?? '' : ''}/${name}`;
  }

  private putObject(r: ResourceType, key: string, o: KubeObject): void {
    this.store.set(key, o);
    this.sorted.delete(r);
  }

  private dropObject(r: ResourceType, key: string): void {
    this.store.delete(key);
    this.sorted.delete(r);
  }

  /** Objects of one resource in namespace/name order (cached until the resource changes: lists of 100k pods page through it). */
  private objectsOf(r: ResourceType, namespace?: string): KubeObject[] {
    let all = this.sorted.get(r);
    if (!all) {
      const prefix = `${r.group}/${r.plural}/`;
      all = [];
      for (const [k, o] of this.store) if (k.startsWith(prefix)) all.push(o);
      const keyOf = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
      all.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
      this.sorted.set(r, all);
    }
    return namespace !== undefined && r.namespaced ? all.filter((o) => o.metadata.namespace === namespace) : [...all];
  }

  private mustGet(r: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const o = this.store.get(this.key(r, namespace, name));
    if (!o) throw new ApiError(404, 'NotFound', `${r.plural}${r.group ? '.' + r.group : ''} "${name}" not found`, { name, kind: r.plural, group: r.group });
    return o;
  }

  private apiVersionOf(r: ResourceType): string {
    return r.group ? `${r.group}/${r.version}` : r.version;
  }

  private record(r: ResourceType, type: EventType, object: KubeObject, previous?: KubeObject): void {
    const ev: HistoryEvent = { rv: Number(object.metadata.resourceVersion), resource: r, type, object: clone(object), ...(previous ? { previous: clone(previous) } : {}) };
    this.history.push(ev);
    if (this.history.length > 5000) {
      const dropped = this.history.splice(0, 1000);
      this.oldestWatchable = (dropped[dropped.length - 1]?.rv ?? this.oldestWatchable) + 1;
    }
    for (const w of this.watchers) this.deliver(w, ev);
  }

  private nextRv(): string {
    this.rv += 1;
    return String(this.rv);
  }

  private requireNamespace(r: ResourceType, namespace: string | undefined): void {
    if (!r.namespaced) return;
    const nsType = this.resources.find((x) => x.group === '' && x.plural === 'namespaces');
    if (!nsType || !namespace) return;
    if (!this.store.has(this.key(nsType, undefined, namespace))) {
      throw new ApiError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
    }
  }

  private doCreate(r: ResourceType, namespace: string | undefined, body: KubeObject): KubeObject {
    if (!isObject(body) || !isObject(body.metadata)) throw new ApiError(400, 'BadRequest', 'the object has no metadata');
    this.requireNamespace(r, namespace);
    const obj = this.pruned(r, body);
    const meta = obj.metadata;
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
    if (!meta.name) throw new ApiError(422, 'Invalid', `${r.kind} "" is invalid: metadata.name: Required value: name or generateName is required`);
    if (r.namespaced) {
      if (meta.namespace && namespace && meta.namespace !== namespace) {
        throw new ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = namespace;
    } else {
      delete meta.namespace;
    }
    const k = this.key(r, namespace, meta.name);
    if (this.store.has(k)) {
      throw new ApiError(409, 'AlreadyExists', `${r.plural}${r.group ? '.' + r.group : ''} "${meta.name}" already exists`, { name: meta.name, kind: r.plural });
    }
    obj.apiVersion = this.apiVersionOf(r);
    obj.kind = r.kind;
    meta.uid = randomUUID();
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    delete meta.deletionTimestamp;
    if (r.custom) meta.generation = 1;
    if (r.statusSubresource) delete obj.status;
    meta.resourceVersion = this.nextRv();
    this.putObject(r, k, obj);
    this.record(r, 'ADDED', obj);
    return clone(obj);
  }

  /**
   * Stores `next` in place of `current`, honouring the status subresource (`part`), finalizer rules
   * and generation. Returns the stored object (or the last state if the update completed a deletion).
   */
  private commitUpdate(r: ResourceType, current: KubeObject, proposed: KubeObject, part: 'main' | 'status' | 'all'): KubeObject {
    const next = this.pruned(r, proposed);
    // Identity fields cannot change.
    next.apiVersion = current.apiVersion;
    next.kind = current.kind;
    next.metadata.name = current.metadata.name;
    if (r.namespaced) next.metadata.namespace = current.metadata.namespace;
    next.metadata.uid = current.metadata.uid;
    next.metadata.creationTimestamp = current.metadata.creationTimestamp;
    if (current.metadata.deletionTimestamp) next.metadata.deletionTimestamp = current.metadata.deletionTimestamp;
    else delete next.metadata.deletionTimestamp;
    if (current.metadata.generation !== undefined) next.metadata.generation = current.metadata.generation;
    if (r.statusSubresource && part === 'main') {
      if (current.status === undefined) delete next.status;
      else next.status = clone(current.status);
    }
    if (r.statusSubresource && part === 'status') {
      // Only status changes through /status.
      const status = next.status;
      const kept = clone(current);
      if (status === undefined) delete kept.status;
      else kept.status = status;
      kept.metadata.resourceVersion = next.metadata.resourceVersion;
      return this.commitUpdate(r, current, kept, 'all');
    }
    if (current.metadata.deletionTimestamp) {
      const before = new Set(current.metadata.finalizers ?? []);
      const added = (next.metadata.finalizers ?? []).filter((f) => !before.has(f));
      if (added.length > 0) {
        throw new ApiError(422, 'Invalid', `${r.kind} "${current.metadata.name}" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`);
      }
    }
    const { resourceVersion: _a, ...curMeta } = current.metadata;
    const { resourceVersion: _b, ...nextMeta } = next.metadata;
    const unchanged = isDeepStrictEqual({ ...current, metadata: curMeta }, { ...next, metadata: nextMeta });
    if (unchanged) return clone(current); // a no-op write does not bump resourceVersion
    if (r.custom && !isDeepStrictEqual(current.spec, next.spec)) next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    next.metadata.resourceVersion = this.nextRv();
    const k = this.key(r, current.metadata.namespace, current.metadata.name ?? '');
    if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0) {
      this.dropObject(r, k);
      this.record(r, 'DELETED', next);
      return clone(next);
    }
    this.putObject(r, k, next);
    this.record(r, 'MODIFIED', next, current);
    return clone(next);
  }

  /** A copy of `o` as stored: unknown fields pruned where the kind has a schema. */
  private pruned(r: ResourceType, o: KubeObject): KubeObject {
    if (!r.schema) return clone(o);
    const { metadata, ...rest } = o;
    return { ...pruneToSchema(r.schema, rest), metadata: clone(metadata) } as KubeObject;
  }

  private checkPrecondition(current: KubeObject, proposedRv: unknown, r: ResourceType): void {
    if (proposedRv !== undefined && proposedRv !== null && proposedRv !== '' && String(proposedRv) !== current.metadata.resourceVersion) {
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${r.plural}${r.group ? '.' + r.group : ''} "${current.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name: current.metadata.name, kind: r.plural, group: r.group },
      );
    }
  }

  private doDelete(r: ResourceType, namespace: string | undefined, name: string, preconditionRv?: string): KubeObject {
    const current = this.mustGet(r, namespace, name);
    if (preconditionRv !== undefined) this.checkPrecondition(current, preconditionRv, r);
    if ((current.metadata.finalizers ?? []).length > 0) {
      if (current.metadata.deletionTimestamp) return clone(current);
      const next = clone(current);
      next.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      next.metadata.deletionGracePeriodSeconds = 0;
      next.metadata.resourceVersion = this.nextRv();
      this.putObject(r, this.key(r, namespace, name), next);
      this.record(r, 'MODIFIED', next, current);
      return clone(next);
    }
    this.dropObject(r, this.key(r, namespace, name));
    const gone = clone(current);
    gone.metadata.resourceVersion = this.nextRv();
    this.record(r, 'DELETED', gone);
    return gone;
  }

  private parsePath(pathname: string): { resource: ResourceType; namespace?: string; name?: string; subresource?: string } | undefined {
    const seg = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (seg[0] === 'api' && seg.length >= 2) {
      group = '';
      version = seg[1] as string;
      rest = seg.slice(2);
    } else if (seg[0] === 'apis' && seg.length >= 3) {
      group = seg[1] as string;
      version = seg[2] as string;
      rest = seg.slice(3);
    } else {
      return undefined;
    }
    const find = (plural: string | undefined): ResourceType | undefined =>
      this.resources.find((r) => r.group === group && r.version === version && r.plural === plural);
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      const r = find(rest[2]);
      if (r?.namespaced) return { resource: r, namespace: rest[1], name: rest[3], subresource: rest[4] };
    }
    const r = find(rest[0]);
    if (!r) return undefined;
    return { resource: r, name: rest[1], subresource: rest[2] };
  }

  private async readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  private send(res: ServerResponse, status: number, body: unknown, info?: Omit<RecordedRequest, 'status' | 'body' | 'responseBytes'>): void {
    const text = JSON.stringify(body);
    if (info) this.requests.push({ ...info, status, body: this.recordBodies ? body : undefined, responseBytes: Buffer.byteLength(text) });
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    const user = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
    const recordInfo = { user, method, path: url.pathname, query: url.search, contentType, requestBytes: 0 };
    try {
      const parsed = this.parsePath(url.pathname);
      if (!parsed) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${method} ${url.pathname})`);
      const raw = await this.readBody(req);
      recordInfo.requestBytes = Buffer.byteLength(raw);
      let body: unknown;
      if (raw !== '') {
        try {
          body = JSON.parse(raw);
        } catch {
          throw new ApiError(400, 'BadRequest', 'the request body is not valid JSON');
        }
      }
      const { resource: r, namespace, name, subresource } = parsed;
      const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
      const info: RequestInfo = { user, method, path: url.pathname, query: url.searchParams, contentType, body, resource: r, namespace, name, subresource, watch };
      for (const hook of [...this.hooks]) {
        const answer = await hook(info, this);
        if (answer) {
          this.send(res, answer.status, answer.body, recordInfo);
          return;
        }
      }
      if (subresource !== undefined && !(subresource === 'status' && r.statusSubresource)) {
        throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${r.plural}/${subresource})`);
      }
      if (method === 'GET' && name === undefined) {
        if (watch) {
          const outcome = this.serveWatch(r, namespace, url.searchParams, res);
          this.requests.push({ ...recordInfo, status: outcome === 'expired' && this.goneAs === 'status' ? 410 : 200, body: { watch: outcome }, responseBytes: 0 });
          return;
        }
        this.send(res, 200, this.serveList(r, namespace, url.searchParams), recordInfo);
        return;
      }
      if (method === 'GET' && name !== undefined) {
        this.send(res, 200, clone(this.mustGet(r, namespace, name)), recordInfo);
        return;
      }
      if (method === 'POST' && name === undefined) {
        if (!isObject(body)) throw new ApiError(400, 'BadRequest', 'the request body must be an object');
        this.send(res, 201, this.doCreate(r, r.namespaced ? namespace : undefined, body as KubeObject), recordInfo);
        return;
      }
      if (method === 'PUT' && name !== undefined) {
        if (!isObject(body) || !isObject(body.metadata)) throw new ApiError(400, 'BadRequest', 'the request body must be an object with metadata');
        const current = this.mustGet(r, namespace, name);
        if ((body.metadata as KubeObject['metadata']).name !== name) throw new ApiError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
        this.checkPrecondition(current, (body.metadata as KubeObject['metadata']).resourceVersion, r);
        this.send(res, 200, this.commitUpdate(r, current, body as KubeObject, subresource === 'status' ? 'status' : 'main'), recordInfo);
        return;
      }
      if (method === 'PATCH' && name !== undefined) {
        const current = this.mustGet(r, namespace, name);
        const patched = this.applyPatch(r, current, contentType, body);
        this.checkPrecondition(current, patched.metadata?.resourceVersion, r);
        this.send(res, 200, this.commitUpdate(r, current, patched, subresource === 'status' ? 'status' : 'main'), recordInfo);
        return;
      }
      if (method === 'DELETE' && name !== undefined) {
        const pre = isObject(body) && isObject(body.preconditions) ? body.preconditions.resourceVersion : undefined;
        this.send(res, 200, this.doDelete(r, namespace, name, typeof pre === 'string' ? pre : undefined), recordInfo);
        return;
      }
      throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${url.pathname}`);
    } catch (error) {
      if (error instanceof ApiError) {
        this.send(res, error.code, statusBody(error.code, error.reason, error.message, error.details), recordInfo);
      } else {
        this.send(res, 500, statusBody(500, 'InternalError', String(error)), recordInfo);
      }
    }
  }

  private applyPatch(r: ResourceType, current: KubeObject, contentType: string, body: unknown): KubeObject {
    switch (contentType) {
      case 'application/json-patch+json': {
        if (!Array.isArray(body)) throw new ApiError(400, 'BadRequest', 'a JSON patch must be an array of operations');
        try {
          const doc = jsonpatch.applyPatch(clone(current), body as Operation[], true, false).newDocument;
          if (!isObject(doc) || !isObject(doc.metadata)) throw new ApiError(422, 'Invalid', 'the patch removed metadata');
          return doc as KubeObject;
        } catch (error) {
          if (error instanceof ApiError) throw error;
          const name = (error as { name?: string }).name ?? '';
          if (name === 'TEST_OPERATION_FAILED') throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: test operation failed`);
          throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${(error as Error).message.split('\n')[0]}`);
        }
      }
      case 'application/strategic-merge-patch+json':
      case 'application/merge-patch+json': {
        if (contentType === 'application/strategic-merge-patch+json' && r.custom) {
          throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
        }
        // Strategic merge on core kinds is treated as a merge patch: for labels and annotations (maps,
        // what clients patch on pods here) the two agree; list merge keys are not modelled.
        if (!isObject(body)) throw new ApiError(400, 'BadRequest', 'a merge patch must be a JSON object');
        const doc = mergePatch(current, body);
        if (!isObject(doc) || !isObject(doc.metadata)) throw new ApiError(422, 'Invalid', 'the patch removed metadata');
        return doc as KubeObject;
      }
      default:
        throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`);
    }
  }

  private selectors(query: URLSearchParams, r: ResourceType): { labels: Requirement[]; fields: FieldRequirement[] } {
    const ls = parseLabelSelector(query.get('labelSelector') ?? '');
    if (!ls.ok) throw new ApiError(400, 'BadRequest', `unable to parse requirement: ${ls.message}`);
    const fieldText = query.get('fieldSelector') ?? '';
    let fields: FieldRequirement[] = [];
    if (fieldText !== '') {
      if (r.plural !== 'pods') {
        // Every kind supports metadata.name and metadata.namespace; core Events also involvedObject.*.
        const allowed = r.plural === 'events' && r.group === '' ? /^(metadata\.name|metadata\.namespace|involvedObject\.(?:kind|name|namespace|uid))(==|=|!=)(.*)$/ : /^(metadata\.name|metadata\.namespace)(==|=|!=)(.*)$/;
        fields = fieldText.split(',').filter((s) => s !== '').map((s) => {
          const m = allowed.exec(s.trim());
          if (!m) throw new ApiError(400, 'BadRequest', `field label not supported: ${s}`);
          return { field: m[1] as string, operator: m[2] === '!=' ? '!=' : '=', value: m[3] as string };
        });
      } else {
        const fs = parseFieldSelector(fieldText);
        if (!fs.ok) throw new ApiError(400, 'BadRequest', fs.message);
        fields = fs.requirements;
      }
    }
    return { labels: ls.requirements, fields };
  }

  private matches(o: KubeObject, namespace: string | undefined, labels: Requirement[], fields: FieldRequirement[]): boolean {
    if (namespace !== undefined && o.metadata.namespace !== namespace) return false;
    if (!requirementsMatch(labels, o.metadata.labels)) return false;
    const involved = fields.filter((f) => f.field.startsWith('involvedObject.'));
    for (const f of involved) {
      const v = String(((o as { involvedObject?: Record<string, unknown> }).involvedObject ?? {})[f.field.slice('involvedObject.'.length)] ?? '');
      if ((v === f.value) !== (f.operator === '=')) return false;
    }
    return fieldRequirementsMatch(fields.filter((f) => !involved.includes(f)), o as unknown as V1Pod);
  }

  private serveList(r: ResourceType, namespace: string | undefined, query: URLSearchParams): unknown {
    const { labels, fields } = this.selectors(query, r);
    const limit = Number(query.get('limit') ?? '0');
    const token = query.get('continue') ?? '';
    let snapshotRv = this.rv;
    let after: string | undefined;
    if (token !== '') {
      let decoded: { rv?: unknown; after?: unknown };
      try {
        decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { rv?: unknown; after?: unknown };
      } catch {
        throw new ApiError(400, 'BadRequest', 'continue key is not valid');
      }
      if (typeof decoded.rv !== 'number' || typeof decoded.after !== 'string') throw new ApiError(400, 'BadRequest', 'continue key is not valid');
      // As the apiserver: a token older than the retained history cannot be continued.
      if (decoded.rv < this.oldestWatchable - 1) throw new ApiError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      snapshotRv = decoded.rv;
      after = decoded.after;
    }
    const keyOf = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
    let matching = this.objectsOf(r, namespace).filter((o) => this.matches(o, namespace, labels, fields));
    if (after !== undefined) {
      const from = after;
      matching = matching.filter((o) => keyOf(o) > from);
    }
    let next: string | undefined;
    if (limit > 0 && matching.length > limit) {
      matching = matching.slice(0, limit);
      next = Buffer.from(JSON.stringify({ rv: snapshotRv, after: keyOf(matching[matching.length - 1] as KubeObject) })).toString('base64url');
    }
    const items = matching.map((o) => {
      const c = clone(o);
      // Built-in kinds' list items carry no kind/apiVersion on the wire; custom resources' do.
      if (!r.custom) {
        delete c.kind;
        delete c.apiVersion;
      }
      return c;
    });
    return { kind: `${r.kind}List`, apiVersion: this.apiVersionOf(r), metadata: { resourceVersion: String(snapshotRv), ...(next ? { continue: next } : {}) }, items };
  }

  /** Streams events; 'expired' when the resourceVersion was too old (410 sent, stream closed). */
  private serveWatch(r: ResourceType, namespace: string | undefined, query: URLSearchParams, res: ServerResponse): 'expired' | 'streaming' {
    const { labels, fields } = this.selectors(query, r);
    const rvText = query.get('resourceVersion') ?? '';
    const from = rvText === '' || rvText === '0' ? undefined : Number(rvText);
    if (from !== undefined && (!Number.isFinite(from) || from < this.oldestWatchable - 1)) {
      const gone = statusBody(410, 'Expired', `too old resource version: ${rvText} (${this.oldestWatchable})`);
      if (this.goneAs === 'status') {
        this.send(res, 410, gone);
        return 'expired';
      }
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      res.end(JSON.stringify({ type: 'ERROR', object: gone }) + '\n');
      return 'expired';
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = { resource: r, namespace, labels, fields, res };
    if (from === undefined) {
      // No resourceVersion: synthetic ADDED events for the current state, then changes.
      for (const o of this.objectsOf(r, namespace)) {
        if (this.matches(o, namespace, labels, fields)) this.write(w, 'ADDED', o);
      }
    } else {
      for (const ev of this.history) if (ev.rv > from) this.deliver(w, ev);
    }
    this.watchers.add(w);
    const timeout = Number(query.get('timeoutSeconds') ?? '0');
    let timer: NodeJS.Timeout | undefined;
    if (timeout > 0) timer = setTimeout(() => res.end(), timeout * 1000);
    let bookmarks: NodeJS.Timeout | undefined;
    if (query.get('allowWatchBookmarks') === 'true') {
      bookmarks = setInterval(() => {
        const text = JSON.stringify({ type: 'BOOKMARK', object: { kind: r.kind, apiVersion: this.apiVersionOf(r), metadata: { resourceVersion: String(this.rv) } } }) + '\n';
        this.watchBytes += text.length;
        res.write(text);
      }, this.bookmarkIntervalMs);
    }
    res.on('close', () => {
      if (timer) clearTimeout(timer);
      if (bookmarks) clearInterval(bookmarks);
      this.watchers.delete(w);
    });
    return 'streaming';
  }

  private deliver(w: Watcher, ev: HistoryEvent): void {
    if (ev.resource !== w.resource) return;
    const now = this.matches(ev.object, w.namespace, w.labels, w.fields);
    if (ev.type === 'MODIFIED' && ev.previous) {
      const before = this.matches(ev.previous, w.namespace, w.labels, w.fields);
      if (before && !now) this.write(w, 'DELETED', ev.object);
      else if (!before && now) this.write(w, 'ADDED', ev.object);
      else if (now) this.write(w, 'MODIFIED', ev.object);
      return;
    }
    if (now) this.write(w, ev.type, ev.object);
  }

  private write(w: Watcher, type: EventType, object: KubeObject): void {
    const text = JSON.stringify({ type, object }) + '\n';
    this.watchBytes += text.length;
    w.res.write(text);
  }
}
