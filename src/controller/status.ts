// Status aggregation, pure: from the experiment's plan (what the controller decided) and the
// companions' node reports to the conditions users read with `kubectl get/describe`. The status stays
// bounded whatever the number of containers: exact totals in `summary`, and only the most recently
// changed records (with their last few events) in `containerRecords`.
import { isDeepStrictEqual } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import type { ContainerRecord, KernelChaos, KernelChaosStatus } from '../api/types.js';
import { desiredPhaseOf, isPaused, type ExperimentPhase } from '../schedule/phase.js';
import type { NodeReport } from '../kube/reports.js';
import { pruneToSchema, type Schema } from '../kube/crd-profile.js';

/** Records kept in the status: enough to read what just happened, far below etcd's 1.5 MiB at any scale. */
export const MAX_STATUS_RECORDS = 20;
/** Events kept per record in the status (the report keeps more). */
export const MAX_STATUS_RECORD_EVENTS = 3;

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

export type StatusSummary = NonNullable<NonNullable<KernelChaosStatus['experiment']>['summary']>;

export interface ComputedStatus {
  conditions: Condition[];
  desiredPhase: DesiredPhase;
  containerRecords: ContainerRecord[];
  /** Absent where the installed CRD has no such field (Chaos Mesh's would prune it). */
  summary?: StatusSummary;
}

/** The status part of the object the controller writes (merge patch of the object or of /status). */
export function statusBody(status: ComputedStatus): { status: KernelChaosStatus } {
  return {
    status: {
      conditions: status.conditions,
      experiment: { desiredPhase: status.desiredPhase, containerRecords: status.containerRecords, ...(status.summary ? { summary: status.summary } : {}) },
    },
  };
}

/**
 * The status as the apiserver stores it under the installed CRD's schema (unknown fields pruned):
 * what is compared with the stored status, so fields a CRD drops (Chaos Mesh's has no summary and
 * no record `faultsInjected`, `reason`, `node`) never look changed and are never rewritten.
 */
export function fitStatusToSchema(status: ComputedStatus, schema: Schema): ComputedStatus {
  const kept = pruneToSchema(schema, statusBody(status)).status.experiment;
  return {
    conditions: status.conditions,
    desiredPhase: status.desiredPhase,
    containerRecords: kept?.containerRecords ?? [],
    ...(kept?.summary ? { summary: kept.summary } : {}),
  };
}

function lastChange(r: ContainerRecord): string {
  return r.events?.[r.events.length - 1]?.timestamp ?? '';
}

/** Exact totals over every report, and the most recently changed records (sorted by id). */
export function aggregateReports(reports: readonly NodeReport[]): { records: ContainerRecord[]; summary: StatusSummary } {
  const all: ContainerRecord[] = [];
  let faults = 0;
  for (const report of reports) {
    faults += report.faultsInjected;
    for (const r of report.records) all.push({ ...r, node: report.node });
  }
  const count = (phase: ContainerRecord['phase']): number => all.filter((r) => r.phase === phase).length;
  const recent = [...all]
    .sort((a, b) => lastChange(b).localeCompare(lastChange(a)) || a.id.localeCompare(b.id) || (a.node ?? '').localeCompare(b.node ?? ''))
    .slice(0, MAX_STATUS_RECORDS)
    .map((r) => ({ ...r, ...(r.events ? { events: r.events.slice(-MAX_STATUS_RECORD_EVENTS) } : {}) }))
    .sort((a, b) => a.id.localeCompare(b.id) || (a.node ?? '').localeCompare(b.node ?? ''));
  return {
    records: recent,
    summary: {
      nodes: new Set(reports.map((r) => r.node)).size,
      containers: all.length,
      injected: count('Injected'),
      notInjected: count('Not Injected'),
      failed: count('Failed'),
      injectedCount: all.reduce((n, r) => n + r.injectedCount, 0),
      recoveredCount: all.reduce((n, r) => n + r.recoveredCount, 0),
      faultsInjected: faults,
      recordsShown: recent.length,
    },
  };
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

export function computeStatus(chaos: KernelChaos, plan: ExperimentPlan, reports: readonly NodeReport[] = []): ComputedStatus {
  const records: ContainerRecord[] = reports.flatMap((r) => r.records.map((x) => ({ ...x, node: r.node })));
  const aggregate = aggregateReports(reports);
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
  return { conditions: [selected, allInjected, allRecovered, pausedCondition], desiredPhase, containerRecords: aggregate.records, summary: aggregate.summary };
}

/** Whether the stored conditions and desired phase already say what `computed` says. */
export function conditionsUpToDate(chaos: KernelChaos, computed: ComputedStatus): boolean {
  const current = chaos.status;
  if (current?.experiment?.desiredPhase !== computed.desiredPhase) return false;
  const have = current.conditions ?? [];
  if (have.length !== computed.conditions.length) return false;
  return computed.conditions.every((c) => have.some((h) => h.type === c.type && h.status === c.status && h.reason === c.reason));
}

/** Whether the stored records and summary already are `computed`'s (key order does not matter: the apiserver re-serialises). */
export function recordsUpToDate(chaos: KernelChaos, computed: ComputedStatus): boolean {
  const experiment = chaos.status?.experiment;
  return isDeepStrictEqual(experiment?.summary, computed.summary) && isDeepStrictEqual(experiment?.containerRecords ?? [], computed.containerRecords);
}

export function statusUpToDate(chaos: KernelChaos, computed: ComputedStatus): boolean {
  return conditionsUpToDate(chaos, computed) && recordsUpToDate(chaos, computed);
}
