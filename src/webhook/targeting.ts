// Whether an experiment's selector matches a pod being admitted, through the selection module the
// controller and the companion share, so all three agree on which pods an experiment means.
import type { V1Pod } from '@kubernetes/client-node';
import type { KernelChaos } from '../api/types.js';
import type { ClusterStore } from '../kube/store.js';
import { podMatchesSelector } from '../selection/index.js';
import { validateKernelChaos } from '../api/validate.js';

/**
 * The pod as it will be stored: in `namespace` (the object's own is often empty at CREATE) and, if
 * it has no phase yet, Pending, which is what the apiserver will record.
 */
export function admittedPod(pod: V1Pod, namespace: string): V1Pod {
  return {
    ...pod,
    metadata: { ...pod.metadata, namespace },
    status: { ...pod.status, phase: pod.status?.phase ?? 'Pending' },
  };
}

/**
 * Validity of the store's objects, by identity: stores replace an object on every change, never
 * mutate it, so an entry can never describe a newer version of the object.
 */
const validity = new WeakMap<object, boolean>();

function isValid(chaos: KernelChaos): boolean {
  let valid = validity.get(chaos);
  if (valid === undefined) {
    valid = validateKernelChaos(chaos).valid;
    validity.set(chaos, valid);
  }
  return valid;
}

/**
 * Objects in the store were not necessarily admitted by this webhook (created before it was
 * installed, or read from --manifests): an invalid one matches nothing, rather than, say, a
 * mistyped selector matching every pod, or a malformed one failing every pod's admission.
 */
export function experimentSelectsPod(chaos: KernelChaos, pod: V1Pod, store: ClusterStore): boolean {
  if (!isValid(chaos)) return false;
  try {
    return matches(chaos, pod, store);
  } catch {
    return false;
  }
}

function matches(chaos: KernelChaos, pod: V1Pod, store: ClusterStore): boolean {
  const nodeLabels = (name: string): Record<string, string> | undefined => {
    const labels = store.get('Node', undefined, name)?.metadata?.labels;
    return labels ?? undefined;
  };
  return podMatchesSelector(chaos.spec.selector, chaos.metadata.namespace ?? 'default', pod, nodeLabels);
}
