// Which controller reconciles a KernelChaos: exactly one. Pure, from the object's metadata:
// - the MANAGED_BY_ANNOTATION names it (a kernelchaos instance `<namespace>/<lease>`, or `chaos-mesh`);
// - without it, Chaos Mesh's finalizer `chaos-mesh/records` says Chaos Mesh's own KernelChaos
//   controller acts on the object (Chaos Mesh has no per-object marker: its controllers act on every
//   object of the kinds `enabledControllers` turns on, and that finalizer is the trace they leave);
// - otherwise nobody has claimed it, and a kernelchaos controller claims it (the annotation, written
//   with the object's resourceVersion, so of two racing claims one gets 409 and re-reads).
import { CHAOS_MESH_FINALIZER, CHAOS_MESH_OWNER, MANAGED_BY_ANNOTATION } from '../api/labels.js';
import type { KernelChaos } from '../api/types.js';

export type Ownership =
  | { kind: 'ours' }
  | { kind: 'unclaimed' }
  /** `kernelchaos` when the owner is another kernelchaos instance (it labels pods as we do). */
  | { kind: 'other'; owner: string; by: 'annotation' | 'chaos-mesh-finalizer'; kernelchaos: boolean };

/** The marker value of a kernelchaos controller: one per install (every replica shares the Lease). */
export function controllerInstance(namespace: string, leaseName: string): string {
  return `${namespace}/${leaseName}`;
}

export function ownershipOf(chaos: KernelChaos, self: string): Ownership {
  const marked = chaos.metadata.annotations?.[MANAGED_BY_ANNOTATION];
  if (marked !== undefined && marked !== '') {
    return marked === self ? { kind: 'ours' } : { kind: 'other', owner: marked, by: 'annotation', kernelchaos: marked !== CHAOS_MESH_OWNER };
  }
  if ((chaos.metadata.finalizers ?? []).includes(CHAOS_MESH_FINALIZER)) {
    return { kind: 'other', owner: CHAOS_MESH_OWNER, by: 'chaos-mesh-finalizer', kernelchaos: false };
  }
  return { kind: 'unclaimed' };
}

/** Whether Chaos Mesh's KernelChaos controller also acts on an object this controller owns. */
export function chaosMeshAlsoActs(chaos: KernelChaos): boolean {
  return (chaos.metadata.finalizers ?? []).includes(CHAOS_MESH_FINALIZER);
}
