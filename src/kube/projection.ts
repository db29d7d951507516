// What the controller keeps of each Pod and Node: only the fields selection, eligibility, label
// patches and status read. A cluster's pods carry spec, status and managedFields many times the size
// of this; at 100,000 pods the difference is the controller's memory. The informer applies the
// projection before anything is cached (its own cache included). resourceVersion stays (watches
// resume from it), so a change to a dropped field still arrives, as a small object.
import type { V1ContainerStatus, V1Node, V1Pod } from '@kubernetes/client-node';
import type { KindMap, WatchedKind } from './store.js';

/** Per kind, a function from the API object to what is cached. */
export type Projections = { [K in WatchedKind]?: (object: KindMap[K]) => KindMap[K] };

/** `value` without its undefined fields, built anew (deleting keys would leave slow, larger objects). */
function defined<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = v;
  return out as T;
}

/**
 * Metadata the selectors and patches need (annotations whole: `annotationSelectors` may name any key;
 * resourceVersion: the watch resumes from it and label patches carry it), every field the apiserver
 * lets a field selector name (src/selection/fieldSelector.ts), container names (status ids) and the
 * container statuses' names and ids.
 */
export function projectPod(pod: V1Pod): V1Pod {
  const m = pod.metadata ?? {};
  const s = pod.spec;
  const st = pod.status;
  return defined({
    metadata: defined({
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      labels: m.labels,
      annotations: m.annotations,
      deletionTimestamp: m.deletionTimestamp,
    }),
    spec: s
      ? defined({
          nodeName: s.nodeName,
          restartPolicy: s.restartPolicy,
          schedulerName: s.schedulerName,
          serviceAccountName: s.serviceAccountName,
          hostNetwork: s.hostNetwork,
          containers: (s.containers ?? []).map((c) => ({ name: c.name })),
        })
      : undefined,
    status: st
      ? defined({
          phase: st.phase,
          podIP: st.podIP,
          podIPs: st.podIPs?.map((p) => ({ ip: p.ip })),
          nominatedNodeName: st.nominatedNodeName,
          // Partial on purpose: the generated type requires image, ready, restartCount, which nothing here reads.
          containerStatuses: st.containerStatuses?.map((c) => defined({ name: c.name, containerID: c.containerID })) as unknown as V1ContainerStatus[] | undefined,
        })
      : undefined,
  }) as V1Pod;
}

/** A node's name and labels (`nodeSelectors`); its status, the bulk and the churn, is dropped. */
export function projectNode(node: V1Node): V1Node {
  const m = node.metadata ?? {};
  return { metadata: defined({ name: m.name, uid: m.uid, resourceVersion: m.resourceVersion, labels: m.labels }) };
}

export const CONTROLLER_PROJECTIONS: Projections = { Pod: projectPod, Node: projectNode };
