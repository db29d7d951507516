// The controller's keys on a pod: `kernelchaos.dev/target`, one `kernelchaos.dev/exp-<hash>` label
// per experiment, and the `kernelchaos.dev/experiments` annotation. Pure: what a pod carries now,
// and the merge patch that makes it carry exactly the desired experiments without touching any
// other label or annotation.
import type { V1Pod } from '@kubernetes/client-node';
import {
  DOMAIN,
  EXPERIMENTS_ANNOTATION,
  SKIP_REASON_ANNOTATION,
  TARGET_LABEL,
  experimentLabelKey,
  formatExperimentsAnnotation,
  parseExperimentsAnnotation,
} from '../api/labels.js';

const EXPERIMENT_LABEL = new RegExp(`^${DOMAIN.replace(/\./g, '\\.')}/exp-[0-9a-f]{12}$`);

export function isExperimentLabel(key: string): boolean {
  return EXPERIMENT_LABEL.test(key);
}

// The label key is a hash of the ref; computed once per experiment, not once per pod.
const labelKeys = new Map<string, string>();

export function labelKeyOfRef(ref: string): string {
  let key = labelKeys.get(ref);
  if (key === undefined) {
    const slash = ref.indexOf('/');
    key = experimentLabelKey(ref.slice(0, slash), ref.slice(slash + 1));
    if (labelKeys.size > 10_000) labelKeys.clear();
    labelKeys.set(ref, key);
  }
  return key;
}

/** Whether a pod is labelled for the experiment (namespace/name), by annotation or by label. */
export function podCarries(pod: V1Pod, ref: string): boolean {
  if (parseExperimentsAnnotation(pod.metadata?.annotations?.[EXPERIMENTS_ANNOTATION]).includes(ref)) return true;
  return pod.metadata?.labels?.[labelKeyOfRef(ref)] !== undefined;
}

/** Whether the pod carries any of our keys at all. */
export function podHasOwnKeys(pod: V1Pod): boolean {
  const labels = pod.metadata?.labels ?? {};
  return TARGET_LABEL in labels || Object.keys(labels).some(isExperimentLabel) || EXPERIMENTS_ANNOTATION in (pod.metadata?.annotations ?? {});
}

/** A JSON merge patch of metadata: string sets a key, null removes it. */
export interface PodMetadataPatch {
  metadata: {
    resourceVersion?: string;
    labels?: Record<string, string | null>;
    annotations?: Record<string, string | null>;
  };
}

/**
 * The merge patch that makes `pod` carry exactly `refs` (sorted namespace/name), or undefined when
 * it already does. Includes the pod's resourceVersion so a concurrent writer causes 409 Conflict
 * (then the caller re-reads and recomputes) instead of a lost update.
 */
export function podLabelPatch(pod: V1Pod, refs: readonly string[]): PodMetadataPatch | undefined {
  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  const wantLabels = new Map<string, string>();
  if (refs.length > 0) wantLabels.set(TARGET_LABEL, 'true');
  for (const ref of refs) wantLabels.set(labelKeyOfRef(ref), 'true');

  const labelChanges: Record<string, string | null> = {};
  for (const [key, value] of wantLabels) if (labels[key] !== value) labelChanges[key] = value;
  for (const key of Object.keys(labels)) {
    if ((key === TARGET_LABEL || isExperimentLabel(key)) && !wantLabels.has(key)) labelChanges[key] = null;
  }

  const annotationChanges: Record<string, string | null> = {};
  const wantAnnotation = refs.length > 0 ? formatExperimentsAnnotation(refs) : undefined;
  if (wantAnnotation !== undefined && annotations[EXPERIMENTS_ANNOTATION] !== wantAnnotation) {
    annotationChanges[EXPERIMENTS_ANNOTATION] = wantAnnotation;
  }
  if (wantAnnotation === undefined && EXPERIMENTS_ANNOTATION in annotations) annotationChanges[EXPERIMENTS_ANNOTATION] = null;
  // A skip reason the webhook recorded no longer holds once the pod is targeted.
  if (refs.length > 0 && SKIP_REASON_ANNOTATION in annotations) annotationChanges[SKIP_REASON_ANNOTATION] = null;

  const hasLabels = Object.keys(labelChanges).length > 0;
  const hasAnnotations = Object.keys(annotationChanges).length > 0;
  if (!hasLabels && !hasAnnotations) return undefined;
  return {
    metadata: {
      ...(pod.metadata?.resourceVersion ? { resourceVersion: pod.metadata.resourceVersion } : {}),
      ...(hasLabels ? { labels: labelChanges } : {}),
      ...(hasAnnotations ? { annotations: annotationChanges } : {}),
    },
  };
}
