// The pod injector (POST /mutate-pods): labels a pod at creation for every experiment that targets
// it, so the node companion (which selects on kernelchaos.dev/target=true) picks it up from its
// first moment.
//
// Only experiments with mode `all` are applied here: every matching pod is a target, so the answer
// for one pod does not depend on the others. Count-limited modes (one, fixed, fixed-percent,
// random-max-percent) need the whole candidate set; the controller chooses among all candidates
// with a choice seeded by the experiment's UID and labels the chosen pods, including pods created
// after the experiment. A pod admitted before it has a name (generateName) cannot match
// `fieldSelectors` on metadata.name nor `selector.pods`; nor can `nodes`/`nodeSelectors` match,
// as an unscheduled pod has no node yet: the controller labels such pods once they are known.
import type { V1Pod } from '@kubernetes/client-node';
import type { KernelChaos } from '../api/types.js';
import {
  EXPERIMENTS_ANNOTATION,
  SKIP_REASON_ANNOTATION,
  TARGET_LABEL,
  experimentLabelKey,
  experimentRef,
  formatExperimentsAnnotation,
  parseExperimentsAnnotation,
  type SkipReason,
} from '../api/labels.js';
import { allow, allowWithPatch, deny, type AdmissionRequest, type AdmissionReviewResponse } from './admission.js';
import type { WebhookContext } from './context.js';
import { admittedPod, experimentSelectsPod } from './targeting.js';
import { eligibility } from '../admission/gate.js';

/** Audit annotation keys (the apiserver prefixes them with the webhook's name). */
export const AUDIT_SKIP_REASON = 'skip-reason';
export const AUDIT_EXPERIMENTS = 'experiments';
export const AUDIT_DEFERRED = 'deferred-to-controller';

export type InjectionDecision =
  | { kind: 'label'; experiments: KernelChaos[] }
  /** `annotate`: the pod was a candidate, so it records why it was passed over. */
  | { kind: 'skip'; reason: SkipReason; annotate: boolean }
  /** Targeted only by count-limited experiments: the controller decides. */
  | { kind: 'deferred'; experiments: KernelChaos[] };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Decides what to do with one pod; pure over the pod and the context's store. `pod` must already be
 * in its namespace (see admittedPod).
 */
export function decideInjection(pod: V1Pod, ctx: WebhookContext): InjectionDecision {
  const namespace = pod.metadata?.namespace ?? 'default';
  const verdict = eligibility(pod, ctx.store.get('Namespace', undefined, namespace), ctx.ownNamespace);
  // System and disabled namespaces are never touched, not even with a skip annotation.
  if (!verdict.eligible && verdict.reason !== 'not-opted-in') return { kind: 'skip', reason: verdict.reason, annotate: false };

  const matching = ctx.store
    .list('KernelChaos')
    .filter((chaos) => !chaos.metadata.deletionTimestamp && experimentSelectsPod(chaos, pod, ctx.store));
  // Not opted in: say why only to pods some experiment meant, not to every pod of the cluster.
  if (!verdict.eligible) return { kind: 'skip', reason: verdict.reason, annotate: matching.length > 0 };

  const applied = matching.filter((chaos) => chaos.spec.mode === 'all');
  if (applied.length > 0) return { kind: 'label', experiments: applied };
  if (matching.length > 0) return { kind: 'deferred', experiments: matching };
  return { kind: 'skip', reason: 'no-matching-experiment', annotate: true };
}

function refOf(chaos: KernelChaos): string {
  return experimentRef(chaos.metadata.namespace ?? 'default', chaos.metadata.name ?? '');
}

type PatchOp = { op: 'add' | 'replace'; path: string; value: unknown } | { op: 'remove'; path: string };

/** RFC 6901: `~` and `/` in a key (label keys have a `/`). */
function pointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * The JSON patch for a decision. Only our own label and annotation keys change, so the patch is
 * built from those keys alone: the rest of the pod (user data of any depth) is never walked or
 * copied, and applying the decision twice changes nothing.
 */
function decisionPatch(pod: V1Pod, decision: InjectionDecision): PatchOp[] {
  if (decision.kind === 'deferred') return [];
  const metadata: Record<string, unknown> | undefined = isRecord(pod.metadata) ? (pod.metadata as Record<string, unknown>) : undefined;
  const ops: PatchOp[] = [];
  const setKeys = (field: 'labels' | 'annotations', set: Readonly<Record<string, string>>, remove: readonly string[]): void => {
    const current = metadata?.[field];
    if (!isRecord(current)) {
      if (Object.keys(set).length > 0) ops.push({ op: current === undefined ? 'add' : 'replace', path: `/metadata/${field}`, value: { ...set } });
      return;
    }
    for (const [key, value] of Object.entries(set)) {
      if (current[key] !== value) ops.push({ op: 'add', path: `/metadata/${field}/${pointer(key)}`, value });
    }
    for (const key of remove) if (key in current) ops.push({ op: 'remove', path: `/metadata/${field}/${pointer(key)}` });
  };
  const annotations = isRecord(metadata?.annotations) ? (metadata.annotations as Record<string, unknown>) : {};
  if (decision.kind === 'skip') {
    if (decision.annotate) setKeys('annotations', { [SKIP_REASON_ANNOTATION]: decision.reason }, []);
  } else {
    const labels: Record<string, string> = { [TARGET_LABEL]: 'true' };
    for (const chaos of decision.experiments) labels[experimentLabelKey(chaos.metadata.namespace ?? 'default', chaos.metadata.name ?? '')] = 'true';
    setKeys('labels', labels, []);
    const previous = annotations[EXPERIMENTS_ANNOTATION];
    const experiments = formatExperimentsAnnotation([
      ...parseExperimentsAnnotation(typeof previous === 'string' ? previous : undefined),
      ...decision.experiments.map(refOf),
    ]);
    // A reason recorded by an earlier invocation no longer holds.
    setKeys('annotations', { [EXPERIMENTS_ANNOTATION]: experiments }, [SKIP_REASON_ANNOTATION]);
  }
  if (ops.length > 0 && metadata === undefined) ops.unshift({ op: pod.metadata === undefined ? 'add' : 'replace', path: '/metadata', value: {} });
  return ops;
}

/** POST /mutate-pods */
export function mutatePod(request: AdmissionRequest, ctx: WebhookContext): AdmissionReviewResponse {
  const { uid } = request;
  // Pods are labelled at creation (reinvocations are CREATE too); the controller handles the rest.
  if (request.operation !== undefined && request.operation !== 'CREATE') return allow(uid);
  if (request.resource && request.resource.resource !== 'pods') {
    return deny(uid, 400, `this endpoint admits pods, got resource ${request.resource.resource}; check the webhook configuration's rules`);
  }
  const object = request.object;
  if (!isRecord(object) || (object.metadata !== undefined && !isRecord(object.metadata))) {
    return deny(uid, 400, 'request.object: expected a Pod object with a metadata map');
  }
  const pod = object as V1Pod;
  const namespace = request.namespace || pod.metadata?.namespace || 'default';
  const decision = decideInjection(admittedPod(pod, namespace), ctx);
  const audit: Record<string, string> =
    decision.kind === 'skip'
      ? { [AUDIT_SKIP_REASON]: decision.reason }
      : { [decision.kind === 'label' ? AUDIT_EXPERIMENTS : AUDIT_DEFERRED]: formatExperimentsAnnotation(decision.experiments.map(refOf)) };
  return allowWithPatch(uid, decisionPatch(pod, decision), undefined, audit);
}
