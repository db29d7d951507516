// The controller's decisions, pure: cluster state and the clock in, actions out. The I/O layer
// (executor.ts) carries them out; a later reconcile over the changed state finds nothing to do,
// so every action is safe to repeat after a crash or on another replica.
import type { V1ConfigMap, V1Namespace, V1Node, V1Pod } from '@kubernetes/client-node';
import { FINALIZER, experimentRef } from '../api/labels.js';
import type { KernelChaos, KernelChaosPolicy } from '../api/types.js';
import { policyVerdict } from '../admission/gate.js';
import { schemaProblem } from '../kube/documents.js';
import { podKey, selectTargets, selectorNamespaces } from '../selection/index.js';
import { podHasOwnKeys, podLabelPatch } from './podLabels.js';
import { PodIndex } from './podIndex.js';
import { parseCron } from '../schedule/cron.js';
import { experimentPhase, nextBoundary, type ExperimentPhase } from '../schedule/phase.js';
import { parseReport, type NodeReport } from '../kube/reports.js';
import { allotmentActions, writtenAllotments, type AllotmentAction, type ExperimentBudget } from './allotments.js';
import { computeStatus, conditionsUpToDate, fitStatusToSchema, recordsUpToDate, type ComputedStatus, type ExperimentPlan } from './status.js';
import { chaosMeshAlsoActs, ownershipOf } from './ownership.js';
import type { Schema } from '../kube/crd-profile.js';
import { CHAOS_MESH_FINALIZER, MANAGED_BY_ANNOTATION } from '../api/labels.js';

/** A status change that only moves counters or records waits this long after the last write. */
export const DEFAULT_STATUS_INTERVAL_MS = 10_000;

export interface ControllerState {
  experiments: readonly KernelChaos[];
  pods: readonly V1Pod[];
  namespaces: readonly V1Namespace[];
  nodes: readonly V1Node[];
  policies: readonly KernelChaosPolicy[];
  now: Date;
  /** Where kernelchaos runs; its pods are never targeted. */
  webhookNamespace: string;
  /** The companions' node reports and the controller's allotments objects (src/kube/reports.ts). */
  reports?: readonly V1ConfigMap[];
  /** When this replica last wrote each experiment's status (ref -> ms), for the records throttle. */
  statusWrittenAt?: ReadonlyMap<string, number>;
  /** Default DEFAULT_STATUS_INTERVAL_MS. */
  statusIntervalMs?: number;
  /**
   * This controller's ownership marker (ownership.ts): objects marked for another controller are
   * left alone, unmarked ones claimed. Undefined: every object is this controller's (dry-run preview).
   */
  owner?: string;
  /** The installed KernelChaos CRD's schema: status is computed as the apiserver will store it (pruned). */
  statusSchema?: Schema;
  /**
   * `pods`, indexed and kept current by the caller (the controller, one pod event at a time), so a
   * reconcile reuses what did not change. Without it the index is built from `pods`.
   */
  podIndex?: PodIndex;
}

export interface ObjectRef {
  namespace: string;
  name: string;
}

export interface EventAction {
  type: 'event';
  regarding: ObjectRef & { kind: 'KernelChaos' | 'Pod'; apiVersion: string; uid?: string };
  eventType: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export type Action =
  /** Write the ownership marker on an unclaimed object (with its resourceVersion: one claim wins). */
  | ({ type: 'claim'; owner: string; resourceVersion?: string } & ObjectRef)
  | ({ type: 'addFinalizer' } & ObjectRef)
  | ({ type: 'removeFinalizer' } & ObjectRef)
  /** Make the pod carry exactly `experiments` (namespace/name refs, sorted). */
  | ({ type: 'labelPod'; experiments: string[] } & ObjectRef)
  | ({ type: 'updateStatus'; status: ComputedStatus } & ObjectRef)
  /** A node report whose experiment is gone. */
  | ({ type: 'deleteReport' } & ObjectRef)
  /** Per-node `times` allotments (src/controller/allotments.ts). */
  | AllotmentAction
  | EventAction;

export interface ReconcileResult {
  actions: Action[];
  /** Per experiment ref, what was decided (for logs and tests). */
  plans: Map<string, ExperimentPlan>;
  /** The next moment the decisions change by themselves (a duration ends), if any. */
  nextWakeAt?: Date;
}

function refOf(chaos: KernelChaos): ObjectRef & { ref: string } {
  const namespace = chaos.metadata.namespace ?? 'default';
  const name = chaos.metadata.name ?? '';
  return { namespace, name, ref: experimentRef(namespace, name) };
}

/** The experiment's phase by the shared rule (src/schedule/phase.ts) the companions obey too. */
export function phaseOf(chaos: KernelChaos, now: Date): ExperimentPhase {
  return experimentPhase(chaos, { now, parseCron });
}

// Objects from the API passed admission, but the webhook may be absent or older: each object's shape
// is checked before use (memoised per object: the store hands out the same object until it changes).
// The full semantic rules stay with admission.
const shapeProblems = new WeakMap<object, string | null>();

function shapeProblem(kind: 'KernelChaos' | 'KernelChaosPolicy', object: KernelChaos | KernelChaosPolicy): string | null {
  let p = shapeProblems.get(object);
  if (p === undefined) {
    p = schemaProblem(kind, object) ?? null;
    shapeProblems.set(object, p);
  }
  return p;
}

function planFor(chaos: KernelChaos, ref: string, state: ControllerState, index: PodIndex): ExperimentPlan {
  if (chaos.metadata.deletionTimestamp) return { kind: 'deleting' };
  const problem = shapeProblem('KernelChaos', chaos);
  if (problem !== null) return { kind: 'invalid', message: problem };
  // Spec changes are refused on UPDATE, so only the creation window matters, and admission checked it.
  const policy = policyVerdict(chaos, state.policies, state.now, { checkCreationWindow: false });
  if (!policy.allowed) return { kind: 'denied', reasons: policy.reasons };
  const phase = phaseOf(chaos, state.now);
  if (phase.phase === 'finished') return { kind: 'finished', reason: phase.reason };
  if (phase.phase === 'invalid') return { kind: 'invalid', message: `${phase.field}: ${phase.reason}` };
  // Every selector names its namespaces: only their pods can match (100k pods, 100 experiments: 1% of
  // the work), and while none of them changed the last selection stands.
  const namespaces = selectorNamespaces(chaos.spec.selector, chaos.metadata.namespace ?? 'default');
  const selection = index.selection(ref, chaos, namespaces, () =>
    selectTargets(chaos, namespaces.flatMap((ns) => index.podsIn(ns)), state.namespaces, state.nodes, { webhookNamespace: state.webhookNamespace }),
  );
  if (selection.modeError) return { kind: 'invalid', message: selection.modeError };
  return { kind: 'active', targets: selection.targets, skipped: selection.skipped.length, phase };
}

function listNames(pods: readonly V1Pod[], limit = 10): string {
  const names = pods.map(podKey);
  return names.length <= limit ? names.join(', ') : `${names.slice(0, limit).join(', ')} and ${names.length - limit} more`;
}

function experimentEvent(chaos: KernelChaos, eventType: EventAction['eventType'], reason: string, message: string): EventAction {
  const { namespace, name } = refOf(chaos);
  return {
    type: 'event',
    regarding: { kind: 'KernelChaos', apiVersion: chaos.apiVersion, namespace, name, ...(chaos.metadata.uid ? { uid: chaos.metadata.uid } : {}) },
    eventType,
    reason,
    message,
  };
}

/** Events for a change the actions make (so a steady state, or a restart, emits none). */
function eventsFor(chaos: KernelChaos, plan: ExperimentPlan, carriers: readonly V1Pod[], statusChanges: boolean): EventAction[] {
  const carrierKeys = new Set(carriers.map(podKey));
  switch (plan.kind) {
    case 'active': {
      const targetKeys = new Set(plan.targets.map(podKey));
      const same = carrierKeys.size === targetKeys.size && [...targetKeys].every((k) => carrierKeys.has(k));
      const skipped = plan.skipped > 0 ? `; ${plan.skipped} matching pod(s) not eligible (not opted in, or in a disabled or system namespace)` : '';
      if (plan.targets.length === 0) {
        return !same || statusChanges ? [experimentEvent(chaos, 'Warning', 'NoPodSelected', `no eligible pod matches the selector${skipped}`)] : [];
      }
      if (same) return [];
      return [experimentEvent(chaos, 'Normal', 'Selected', `Selected ${plan.targets.length} pod(s): ${listNames(plan.targets)}${skipped}`)];
    }
    case 'denied':
      return statusChanges ? [experimentEvent(chaos, 'Warning', 'PolicyDenied', `not run: ${plan.reasons.join('; ')}`)] : [];
    case 'invalid':
      return statusChanges ? [experimentEvent(chaos, 'Warning', 'InvalidSelection', plan.message)] : [];
    case 'finished':
      return statusChanges || carriers.length > 0
        ? [experimentEvent(chaos, 'Normal', 'DurationEnded', `${plan.reason}; ${carriers.length > 0 ? `unlabelling ${carriers.length} pod(s)` : 'no pod is labelled'}`)]
        : [];
    case 'deleting':
      return carriers.length > 0 ? [experimentEvent(chaos, 'Normal', 'Unlabelling', `deleting: removing labels from ${carriers.length} pod(s): ${listNames(carriers)}`)] : [];
  }
}

export function reconcile(state: ControllerState): ReconcileResult {
  const actions: Action[] = [];
  const events: EventAction[] = [];
  const plans = new Map<string, ExperimentPlan>();
  // Terminating pods are going away with their labels; nothing waits for them (the index holds live pods only).
  const index = state.podIndex ?? PodIndex.from(state.pods);
  index.observe(state.namespaces, state.nodes);
  const desired = new Map<string, { pod: V1Pod; refs: Set<string> }>();
  let nextWake: number | undefined;

  const reportsByUid = new Map<string, NodeReport[]>();
  const reportObjects: Array<{ uid: string; namespace: string; name: string }> = [];
  for (const cm of state.reports ?? []) {
    const report = parseReport(cm);
    const meta = { namespace: cm.metadata?.namespace ?? '', name: cm.metadata?.name ?? '' };
    if (!report) continue;
    reportObjects.push({ uid: report.experiment.uid, ...meta });
    const list = reportsByUid.get(report.experiment.uid);
    if (list) list.push(report);
    else reportsByUid.set(report.experiment.uid, [report]);
  }
  const statusInterval = state.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS;
  const budgets: ExperimentBudget[] = [];

  const experiments = [...state.experiments].sort((a, b) => refOf(a).ref.localeCompare(refOf(b).ref));
  for (const chaos of experiments) {
    const { namespace, name, ref } = refOf(chaos);
    if (state.owner !== undefined) {
      const ownership = ownershipOf(chaos, state.owner);
      if (ownership.kind !== 'ours') {
        // Not ours (yet): its pods keep what they carry for it, so nothing flaps while a claim lands
        // or while another kernelchaos instance runs it; an object Chaos Mesh runs carries none of our labels.
        if (ownership.kind === 'unclaimed' || ownership.kernelchaos) {
          for (const pod of index.carriers(ref)) {
            const key = podKey(pod);
            let d = desired.get(key);
            if (!d) desired.set(key, (d = { pod, refs: new Set() }));
            d.refs.add(ref);
          }
        }
        if (ownership.kind === 'unclaimed' && !chaos.metadata.deletionTimestamp) {
          actions.push({ type: 'claim', namespace, name, owner: state.owner, ...(chaos.metadata.resourceVersion ? { resourceVersion: chaos.metadata.resourceVersion } : {}) });
        }
        continue;
      }
      if (chaosMeshAlsoActs(chaos)) {
        events.push(
          experimentEvent(
            chaos,
            'Warning',
            'TwoControllers',
            `Chaos Mesh's KernelChaos controller acts on this object too (finalizer ${CHAOS_MESH_FINALIZER}) although ${MANAGED_BY_ANNOTATION} names ${state.owner}: ` +
              'turn it off (manifests/overlays/with-chaos-mesh/chaos-mesh-values.yaml), or set the annotation to chaos-mesh to hand the object over',
          ),
        );
      }
    }
    let plan: ExperimentPlan;
    try {
      plan = planFor(chaos, ref, state, index);
    } catch (error) {
      // One odd object must not stop the reconcile of every other experiment.
      plan = { kind: 'invalid', message: `cannot evaluate: ${error instanceof Error ? error.message : String(error)}` };
    }
    plans.set(ref, plan);
    const uid = chaos.metadata.uid ?? '';
    const times = chaos.spec.failKernRequest?.times ?? 0;
    if (typeof times === 'number' && times > 0 && uid !== '') {
      const targetNodes = new Set(plan.kind === 'active' ? plan.targets.map((p) => p.spec?.nodeName ?? '').filter((n) => n !== '') : []);
      budgets.push({ uid, times, targetNodes, reports: reportsByUid.get(uid) ?? [] });
    }
    const carriers = index.carriers(ref);
    const finalizers = chaos.metadata.finalizers ?? [];

    if (plan.kind === 'deleting') {
      // The finalizer goes only once no pod carries the experiment (the label patches below land first).
      if (finalizers.includes(FINALIZER) && carriers.length === 0) actions.push({ type: 'removeFinalizer', namespace, name });
      events.push(...eventsFor(chaos, plan, carriers, false));
      continue;
    }
    if (!finalizers.includes(FINALIZER)) actions.push({ type: 'addFinalizer', namespace, name });
    if (plan.kind === 'active') {
      for (const pod of plan.targets) {
        const key = podKey(pod);
        let d = desired.get(key);
        if (!d) desired.set(key, (d = { pod, refs: new Set() }));
        d.refs.add(ref);
      }
      const wake = nextBoundary(plan.phase);
      if (wake && wake.getTime() > state.now.getTime()) nextWake = Math.min(nextWake ?? Infinity, wake.getTime());
    }
    const computed = computeStatus(chaos, plan, reportsByUid.get(chaos.metadata.uid ?? '') ?? []);
    const status = state.statusSchema ? fitStatusToSchema(computed, state.statusSchema) : computed;
    const statusChanges = !conditionsUpToDate(chaos, status);
    if (statusChanges) {
      actions.push({ type: 'updateStatus', namespace, name, status });
    } else if (!recordsUpToDate(chaos, status)) {
      // Counters and records only: at most one write per interval (they change every few seconds on every node).
      const due = (state.statusWrittenAt?.get(ref) ?? 0) + statusInterval;
      if (due <= state.now.getTime()) actions.push({ type: 'updateStatus', namespace, name, status });
      else nextWake = Math.min(nextWake ?? Infinity, due);
    }
    events.push(...eventsFor(chaos, plan, carriers, statusChanges));
  }

  actions.push(...allotmentActions(budgets, writtenAllotments(state.reports ?? []), new Set(state.nodes.map((n) => n.metadata?.name ?? '')), state.webhookNamespace));

  const liveUids = new Set(state.experiments.map((c) => c.metadata.uid ?? ''));
  for (const r of reportObjects) if (!liveUids.has(r.uid)) actions.push({ type: 'deleteReport', namespace: r.namespace, name: r.name });

  index.retainSelections(new Set(plans.keys()));
  // Only pods that should carry an experiment or carry one of our keys can need a patch.
  const candidates = new Map<string, V1Pod>();
  for (const [key, { pod }] of desired) candidates.set(key, pod);
  for (const pod of index.withOwnKeys()) candidates.set(podKey(pod), pod);
  for (const key of [...candidates.keys()].sort()) {
    const pod = candidates.get(key) as V1Pod;
    const refs = [...(desired.get(key)?.refs ?? [])].sort();
    if (refs.length === 0 && !podHasOwnKeys(pod)) continue;
    if (podLabelPatch(pod, refs) === undefined) continue;
    actions.push({ type: 'labelPod', namespace: pod.metadata?.namespace ?? 'default', name: pod.metadata?.name ?? '', experiments: refs });
  }

  // The claim and the finalizer before any label (so a deletion cannot orphan them), then allotments
  // (so a companion that sees its new targets finds its allotment already written), labels (what the
  // companion acts on), status, the finalizers of deleted experiments, events last.
  const order: Record<Action['type'], number> = {
    claim: 0,
    addFinalizer: 0,
    putAllotments: 1,
    labelPod: 2,
    updateStatus: 3,
    removeFinalizer: 4,
    deleteReport: 5,
    deleteAllotments: 5,
    event: 6,
  };
  actions.sort((a, b) => order[a.type] - order[b.type]);
  actions.push(...events);
  return { actions, plans, ...(nextWake !== undefined ? { nextWakeAt: new Date(nextWake) } : {}) };
}
