// Status aggregation, pure: from the experiment's plan (what the controller decided) and the
// companions' per-container records to the conditions users read with `kubectl get/describe`.
import type { V1Pod } from '@kubernetes/client-node';
import type { ContainerRecord, KernelChaos, KernelChaosStatus } from '../api/types.js';
import { desiredPhaseOf, isPaused, type ExperimentPhase } from '../schedule/phase.js';

/** What the controller decided for one experiment. */
export type ExperimentPlan =
  /** Live (running, paused, or between runs): pods stay labelled; `phase` decides desiredPhase. */
  | { kind: 'active'; targets: V1Pod[]; skipped: number; phase: ExperimentPhase }
  | { kind: 'denied'; reasons: string[] }
  | { kind: 'invalid'; message: string }
  | { kind: 'finished'; reason: string }
  | { kind: 'deleting' };

export type Condition = NonNullable<KernelChaosStatus['conditions']>[number];
export type DesiredPhase = 'Run' | 'Stop';

export interface ComputedStatus {
  conditions: Condition[];
  desiredPhase: DesiredPhase;
}


/** `namespace/pod/container` ids the companions should report for the targets (containerNames narrows). */
export function expectedContainerIds(chaos: KernelChaos, targets: readonly V1Pod[]): string[] {
  const only = chaos.spec.containerNames ?? [];
  const ids: string[] = [];
  for (const pod of targets) {
    for (const c of pod.spec?.containers ?? []) {
      if (only.length > 0 && !only.includes(c.name)) continue;
      ids.push(`${pod.metadata?.namespace ?? 'default'}/${pod.metadata?.name ?? ''}/${c.name}`);
    }
  }
  return ids.sort();
}

function condition(type: Condition['type'], ok: boolean, reason: string): Condition {
  return { type, status: ok ? 'True' : 'False', reason };
}

const SELECTED_REASON: Record<Exclude<ExperimentPlan['kind'], 'active'>, string> = {
  denied: 'PolicyDenied',
  invalid: 'InvalidSelection',
  finished: 'DurationEnded',
  deleting: 'Deleting',
};

export function computeStatus(chaos: KernelChaos, plan: ExperimentPlan): ComputedStatus {
  const records: ContainerRecord[] = chaos.status?.experiment?.containerRecords ?? [];
  const paused = isPaused(chaos);
  const selected =
    plan.kind === 'active'
      ? condition('Selected', plan.targets.length > 0, plan.targets.length > 0 ? 'PodsSelected' : 'NoPodSelected')
      : condition('Selected', false, SELECTED_REASON[plan.kind]);

  let allInjected: Condition;
  if (plan.kind !== 'active' || plan.targets.length === 0) {
    allInjected = condition('AllInjected', false, 'NothingSelected');
  } else {
    const byId = new Map(records.map((r) => [r.id, r]));
    const expected = expectedContainerIds(chaos, plan.targets);
    const injected = expected.filter((id) => byId.get(id)?.phase === 'Injected').length;
    const failed = expected.some((id) => byId.get(id)?.phase === 'Failed');
    allInjected =
      expected.length > 0 && injected === expected.length
        ? condition('AllInjected', true, 'AllInjected')
        : condition('AllInjected', false, failed ? 'InjectionFailed' : expected.length === 0 ? 'NoMatchingContainer' : 'Waiting');
  }

  // As in Chaos Mesh: recovered means no container still has the fault attached.
  const stillInjected = records.some((r) => r.phase === 'Injected');
  const allRecovered =
    records.length === 0
      ? condition('AllRecovered', false, 'NoRecords')
      : condition('AllRecovered', !stillInjected, stillInjected ? 'StillInjected' : 'AllRecovered');

  const pausedCondition = condition('Paused', paused, paused ? 'PauseAnnotation' : 'NotPaused');
  const desiredPhase: DesiredPhase = plan.kind === 'active' ? desiredPhaseOf(plan.phase) : 'Stop';
  return { conditions: [selected, allInjected, allRecovered, pausedCondition], desiredPhase };
}

/** Whether the stored status already says what `computed` says (records are the companions', ignored). */
export function statusUpToDate(chaos: KernelChaos, computed: ComputedStatus): boolean {
  const current = chaos.status;
  if (current?.experiment?.desiredPhase !== computed.desiredPhase) return false;
  const have = current.conditions ?? [];
  if (have.length !== computed.conditions.length) return false;
  return computed.conditions.every((c) => have.some((h) => h.type === c.type && h.status === c.status && h.reason === c.reason));
}
