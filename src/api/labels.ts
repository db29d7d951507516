// The label and annotation contract between the webhook's injector, the controller and the node
// companion. Label keys and values are limited to 63 characters, so experiments are named in labels
// by a short hash and in full in an annotation.
import { createHash } from 'node:crypto';

export const DOMAIN = 'kernelchaos.dev';

/** Pod annotation: the pod opts in. */
export const INJECT_ANNOTATION = `${DOMAIN}/inject`;
/** Namespace label: `enabled` opts every pod in, `disabled` keeps every pod out. */
export const INJECTION_NAMESPACE_LABEL = `${DOMAIN}/injection`;
/** Pod label the node companion selects on. */
export const TARGET_LABEL = `${DOMAIN}/target`;
export const TARGET_LABEL_SELECTOR = `${TARGET_LABEL}=true`;
/** Pod annotation: the experiments (namespace/name, sorted, comma-separated) that target the pod. */
export const EXPERIMENTS_ANNOTATION = `${DOMAIN}/experiments`;
/** Pod annotation: why the injector did not label this pod (a SkipReason). */
export const SKIP_REASON_ANNOTATION = `${DOMAIN}/skip-reason`;
/** Chaos Mesh's pause annotation on a KernelChaos. */
export const PAUSE_ANNOTATION = 'experiment.chaos-mesh.org/pause';
/** Finalizer the controller puts on KernelChaos objects so labels are removed before deletion. */
export const FINALIZER = `${DOMAIN}/pod-labels`;

/**
 * KernelChaos annotation: which controller reconciles the object, so exactly one does. A kernelchaos
 * controller writes its instance (`<namespace>/<lease>`) on objects nobody claimed yet and leaves
 * alone objects that name another; `chaos-mesh` hands an object to Chaos Mesh's controller.
 */
export const MANAGED_BY_ANNOTATION = `${DOMAIN}/managed-by`;
/** The MANAGED_BY_ANNOTATION value that hands an object to Chaos Mesh's own KernelChaos controller. */
export const CHAOS_MESH_OWNER = 'chaos-mesh';
/**
 * The finalizer Chaos Mesh's `kernelchaos-initFinalizers` controller adds to every chaos object it
 * reconciles (controllers/common/finalizers): on a KernelChaos it means Chaos Mesh's controller acts.
 */
export const CHAOS_MESH_FINALIZER = 'chaos-mesh/records';
/** Label on everything kernelchaos installs (CRDs included): tells our Schedule CRD from Chaos Mesh's. */
export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
export const PART_OF_VALUE = 'kernelchaos';

export type SkipReason =
  | 'not-opted-in'
  | 'namespace-disabled'
  | 'system-namespace'
  | 'no-matching-experiment';

/** `kernelchaos.dev/exp-<12 hex>`: one label per experiment that targets the pod. */
export function experimentLabelKey(namespace: string, name: string): string {
  const digest = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 12);
  return `${DOMAIN}/exp-${digest}`;
}

export function experimentRef(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function parseExperimentsAnnotation(value: string | undefined): string[] {
  if (!value) return [];
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

export function formatExperimentsAnnotation(refs: Iterable<string>): string {
  return [...new Set(refs)].sort().join(',');
}
