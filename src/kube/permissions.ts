// The API permissions each component uses, declared next to the code that makes the calls and
// assembled here; test/manifests/rbac.test.ts fails on any RBAC verb a component is granted but
// does not use, and on any it uses but is not granted.
import type { KindScope } from './informer.js';
import { KIND_INFO } from './objects.js';
import type { WatchedKind } from './store.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface Permission {
  /** '' for the core group. */
  group: string;
  /** Plural, with `/subresource` for subresources. */
  resource: string;
  verbs: readonly Verb[];
  /** Cluster-wide (ClusterRole) or only in the release namespace (Role). */
  scope: 'cluster' | 'release-namespace';
}

/** What an informer over these kinds calls: list (paginated) and watch, where its scope says. */
export function watchPermissions(kinds: readonly WatchedKind[], scopes: Partial<Record<WatchedKind, KindScope>> = {}): Permission[] {
  return kinds.map((kind) => ({
    group: KIND_INFO[kind].group,
    resource: KIND_INFO[kind].plural,
    verbs: ['list', 'watch'],
    scope: scopes[kind]?.namespace !== undefined ? 'release-namespace' : 'cluster',
  }));
}
