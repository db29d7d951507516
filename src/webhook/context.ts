// What the pure admission handlers may consult: cluster state, the clock and the webhook's own
// namespace. No I/O beyond the store's in-memory cache, so every handler is testable without sockets.
import { DEFAULT_RELEASE_NAMESPACE } from '../admission/namespaces.js';
import type { ClusterStore } from '../kube/store.js';
import type { InstallProfile } from '../kube/install-profile.js';

export interface WebhookContext {
  store: ClusterStore;
  /** The clock (policies' schedule windows); injectable for tests. */
  now: () => Date;
  /** The webhook's own namespace: its pods are never injected. */
  ownNamespace: string;
  /** The install profile found at start-up; undefined: not known (offline, or not detected yet). */
  profile?: () => InstallProfile | undefined;
}

export const DEFAULT_NAMESPACE = DEFAULT_RELEASE_NAMESPACE;

/** What the webhook's informers watch (it writes nothing). */
export const WEBHOOK_KINDS = ['KernelChaos', 'KernelChaosPolicy', 'Namespace'] as const;
