// Kinds the stores keep, where they live in the API, and how objects are keyed.
import type { KindMap, WatchedKind } from './store.js';

export const WATCHED_KINDS: readonly WatchedKind[] = ['KernelChaos', 'KernelChaosPolicy', 'Namespace', 'Pod', 'Node'];

export interface KindInfo {
  apiVersion: string;
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

export const KIND_INFO: Readonly<Record<WatchedKind, KindInfo>> = {
  KernelChaos: { apiVersion: 'chaos-mesh.org/v1alpha1', group: 'chaos-mesh.org', version: 'v1alpha1', plural: 'kernelchaos', namespaced: true },
  KernelChaosPolicy: { apiVersion: 'kernelchaos.dev/v1alpha1', group: 'kernelchaos.dev', version: 'v1alpha1', plural: 'kernelchaospolicies', namespaced: true },
  Namespace: { apiVersion: 'v1', group: '', version: 'v1', plural: 'namespaces', namespaced: false },
  Pod: { apiVersion: 'v1', group: '', version: 'v1', plural: 'pods', namespaced: true },
  Node: { apiVersion: 'v1', group: '', version: 'v1', plural: 'nodes', namespaced: false },
  ConfigMap: { apiVersion: 'v1', group: '', version: 'v1', plural: 'configmaps', namespaced: true },
};

export function isWatchedKind(kind: unknown): kind is WatchedKind {
  return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(KIND_INFO, kind);
}

/** The collection path, across all namespaces or in one: /api/v1/pods, /apis/g/v/namespaces/ns/plural. */
export function collectionPath(kind: WatchedKind, namespace?: string): string {
  const info = KIND_INFO[kind];
  const base = info.group === '' ? `/api/${info.version}` : `/apis/${info.group}/${info.version}`;
  return info.namespaced && namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${info.plural}` : `${base}/${info.plural}`;
}

/** Namespaced kinds without a namespace are in `default`, as kubectl would put them. */
export function effectiveNamespace(kind: WatchedKind, namespace: string | undefined): string | undefined {
  return KIND_INFO[kind].namespaced ? namespace || 'default' : undefined;
}

export function objectKey(kind: WatchedKind, namespace: string | undefined, name: string): string {
  return `${kind}/${effectiveNamespace(kind, namespace) ?? ''}/${name}`;
}

export interface ObjectMetaLike {
  metadata?: { name?: string; namespace?: string } | undefined;
}

export type AnyWatched = KindMap[WatchedKind];
