// A ClusterStore held in memory: what tests and no-cluster mode use, and the cache behind the
// manifest-directory and informer stores. Emits ADDED/MODIFIED/DELETED only for real changes
// (deep comparison), so re-reading identical state is silent.
import { isDeepStrictEqual } from 'node:util';
import type { ClusterStore, KindMap, StoreEvent, WatchedKind } from './store.js';
import { effectiveNamespace, isWatchedKind, objectKey, WATCHED_KINDS, type AnyWatched } from './objects.js';

export type StoreListener = (event: StoreEvent) => void;

/** Reports a listener that threw; the store keeps delivering to the others. */
export type ListenerErrorHandler = (error: unknown, event: StoreEvent) => void;

interface Entry<K extends WatchedKind = WatchedKind> {
  kind: K;
  object: KindMap[K];
}

export class InMemoryStore implements ClusterStore {
  // Per kind (a 100k-pod store lists its 100 experiments without walking the pods).
  private readonly entries = new Map<WatchedKind, Map<string, AnyWatched>>();
  private readonly sorted = new Map<WatchedKind, readonly AnyWatched[]>();
  private readonly listeners = new Set<StoreListener>();
  private isSynced = false;

  constructor(private readonly onListenerError: ListenerErrorHandler = () => {}) {}

  async start(): Promise<void> {
    this.isSynced = true;
  }

  stop(): void {}

  get synced(): boolean {
    return this.isSynced;
  }

  /** For subclasses whose initial state arrives later. */
  protected markSynced(value: boolean): void {
    this.isSynced = value;
  }

  list<K extends WatchedKind>(kind: K, namespace?: string): KindMap[K][] {
    const all = this.sortedOf(kind);
    if (namespace === undefined) return [...all];
    return all.filter((o) => effectiveNamespace(kind, o.metadata?.namespace) === namespace);
  }

  /** One kind's objects sorted by key (every consumer sees a stable order), cached until the kind changes. */
  private sortedOf<K extends WatchedKind>(kind: K): readonly KindMap[K][] {
    let sorted = this.sorted.get(kind);
    if (!sorted) {
      const entries = [...(this.entries.get(kind) ?? new Map<string, AnyWatched>())];
      sorted = entries.sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, o]) => o);
      this.sorted.set(kind, sorted);
    }
    return sorted as KindMap[K][];
  }

  get<K extends WatchedKind>(kind: K, namespace: string | undefined, name: string): KindMap[K] | undefined {
    return this.entries.get(kind)?.get(objectKey(kind, namespace, name)) as KindMap[K] | undefined;
  }

  on(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Adds or replaces an object whose `kind` field names a watched kind. */
  apply(object: KindMap[WatchedKind] & { kind?: string }): void {
    if (!isWatchedKind(object.kind)) throw new Error(`InMemoryStore.apply: unsupported kind ${JSON.stringify(object.kind)}`);
    this.put(object.kind, object as KindMap[typeof object.kind]);
  }

  /** Adds or replaces an object of `kind` (list items from the API carry no kind field). */
  put<K extends WatchedKind>(kind: K, object: KindMap[K]): void {
    const name = object.metadata?.name;
    if (!name) throw new Error(`InMemoryStore.put: ${kind} without metadata.name`);
    const key = objectKey(kind, object.metadata?.namespace, name);
    let ofKind = this.entries.get(kind);
    if (!ofKind) this.entries.set(kind, (ofKind = new Map()));
    const previous = ofKind.get(key);
    if (previous && isDeepStrictEqual(previous, object)) return;
    ofKind.set(key, object);
    this.sorted.delete(kind);
    this.emit({ type: previous ? 'MODIFIED' : 'ADDED', kind, object } as StoreEvent);
  }

  delete(kind: WatchedKind, namespace: string | undefined, name: string): boolean {
    const key = objectKey(kind, namespace, name);
    const ofKind = this.entries.get(kind);
    const previous = ofKind?.get(key);
    if (!ofKind || !previous) return false;
    ofKind.delete(key);
    this.sorted.delete(kind);
    this.emit({ type: 'DELETED', kind, object: previous } as StoreEvent);
    return true;
  }

  /**
   * Makes the store hold exactly `objects` for the given kinds (default: every kind), emitting
   * the differences. Used after a re-read of a directory or a re-list.
   */
  replace(objects: ReadonlyArray<{ kind: WatchedKind; object: KindMap[WatchedKind] }>, kinds: readonly WatchedKind[] = WATCHED_KINDS): void {
    const wanted = new Map<string, Entry>();
    for (const o of objects) {
      const name = o.object.metadata?.name;
      if (!name) continue;
      wanted.set(objectKey(o.kind, o.object.metadata?.namespace, name), { kind: o.kind, object: o.object });
    }
    for (const kind of kinds) {
      const ofKind = this.entries.get(kind);
      if (!ofKind) continue;
      for (const [key, object] of [...ofKind]) {
        if (wanted.has(key)) continue;
        ofKind.delete(key);
        this.sorted.delete(kind);
        this.emit({ type: 'DELETED', kind, object } as StoreEvent);
      }
    }
    for (const entry of wanted.values()) this.put(entry.kind, entry.object);
  }

  private emit(event: StoreEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
}
