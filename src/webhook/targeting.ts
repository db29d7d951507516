// Whether an experiment's selector matches a pod being admitted, through the selection module the
// controller and the companion share, so all three agree on which pods an experiment means.
import type { V1Pod } from '@kubernetes/client-node';
import type { KernelChaos } from '../api/types.js';
import type { ClusterStore } from '../kube/store.js';
import { podMatchesSelector } from '../selection/index.js';

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

export function experimentSelectsPod(chaos: KernelChaos, pod: V1Pod, store: ClusterStore): boolean {
  const nodeLabels = (name: string): Record<string, string> | undefined => {
    const labels = store.get('Node', undefined, name)?.metadata?.labels;
    return labels ?? undefined;
  };
  return podMatchesSelector(chaos.spec.selector, chaos.metadata.namespace ?? 'default', pod, nodeLabels);
}
