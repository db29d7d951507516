// Defaults that Chaos Mesh applies (and the webhook's mutating endpoint writes back). Pure: the input
// is not modified. Only what Chaos Mesh defines is filled in; in particular an omitted probability
// stays omitted, which means "every call", and an empty containerNames means every container.
import type { KernelChaos } from './types.js';

/**
 * An empty or missing `spec.selector.namespaces` becomes `[metadata.namespace]` when the namespace
 * is known (as Chaos Mesh's DefaultNamespace does, also when `pods` is set, where it is unused).
 */
export function applyKernelChaosDefaults(chaos: KernelChaos): KernelChaos {
  const namespace = chaos.metadata?.namespace;
  const selector = chaos.spec?.selector;
  if (!selector || typeof namespace !== 'string' || namespace === '') return chaos;
  if (selector.namespaces !== undefined && selector.namespaces.length > 0) return chaos;
  return { ...chaos, spec: { ...chaos.spec, selector: { ...selector, namespaces: [namespace] } } };
}
