// Where cluster state comes from: the Kubernetes API through informers, or a directory of manifests
// (the embedded default that lets the webhook and companion run anywhere, and what tests use).
// Consumers (webhook, controller, companion) see only this interface.
import type { V1ConfigMap, V1Namespace, V1Node, V1Pod } from '@kubernetes/client-node';
import type { KernelChaos, KernelChaosPolicy } from '../api/types.js';

export interface KindMap {
  KernelChaos: KernelChaos;
  KernelChaosPolicy: KernelChaosPolicy;
  Namespace: V1Namespace;
  Pod: V1Pod;
  Node: V1Node;
  /** Only the companions' node reports (src/kube/reports.ts). */
  ConfigMap: V1ConfigMap;
}
export type WatchedKind = keyof KindMap;

export type StoreEvent = {
  [K in WatchedKind]: { type: 'ADDED' | 'MODIFIED' | 'DELETED'; kind: K; object: KindMap[K] };
}[WatchedKind];

export interface ClusterStore {
  /** Resolves once the initial list of every watched kind is in. */
  start(): Promise<void>;
  stop(): void;
  /** Whether the initial lists are in (readiness). */
  readonly synced: boolean;
  list<K extends WatchedKind>(kind: K, namespace?: string): KindMap[K][];
  get<K extends WatchedKind>(kind: K, namespace: string | undefined, name: string): KindMap[K] | undefined;
  /** Subscribes to changes; returns the unsubscribe function. */
  on(listener: (event: StoreEvent) => void): () => void;
}
