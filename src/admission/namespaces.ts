// Namespaces the admission gate never lets kernelchaos touch. Kept apart from gate.ts (which
// loads the policy schemas) so CLIs can name the default without paying for that at start-up.

/** Where kernelchaos runs unless told otherwise (`--namespace` / POD_NAMESPACE). */
export const DEFAULT_RELEASE_NAMESPACE = 'kernelchaos-system';

export const SYSTEM_NAMESPACES: ReadonlySet<string> = new Set(['kube-system']);

/** System namespaces and the release namespace: never targeted. */
export function isProtectedNamespace(namespace: string, releaseNamespace: string): boolean {
  return SYSTEM_NAMESPACES.has(namespace) || namespace === releaseNamespace;
}
