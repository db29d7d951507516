// What a user looks at for one experiment, from the objects the cluster holds (the KernelChaos with
// its status, the pods carrying its label, its Events). Pure: `kernelchaos status` and the
// controller's dashboard both render this.
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import { EXPERIMENTS_ANNOTATION, experimentRef, parseExperimentsAnnotation } from '../api/labels.js';
import type { ContainerRecord, KernelChaos } from '../api/types.js';

/** The phase shown in the PHASE column, from the conditions the controller writes. */
export type DisplayPhase = 'Pending' | 'Injecting' | 'Injected' | 'Waiting' | 'Paused' | 'Stopping' | 'Finished' | 'Denied' | 'Invalid' | 'Deleting' | 'Failed';

export interface ContainerSummary {
  id: string;
  phase: ContainerRecord['phase'];
  node?: string;
  faults: number;
  reason?: string;
}

export interface EventSummary {
  type: string;
  reason: string;
  message: string;
  at: string;
}

export interface ExperimentSummary {
  namespace: string;
  name: string;
  phase: DisplayPhase;
  /** `90s every @hourly`, `90s`, or `until deleted`. */
  schedule: string;
  failtype: number;
  targetedPods: string[];
  containers: ContainerSummary[];
  armedContainers: number;
  faults: number;
  lastEvent?: EventSummary;
  createdAt?: string;
}

function condition(chaos: KernelChaos, type: string): { status: string; reason?: string } | undefined {
  return chaos.status?.conditions?.find((c) => c.type === type);
}

export function displayPhase(chaos: KernelChaos): DisplayPhase {
  if (chaos.metadata.deletionTimestamp) return 'Deleting';
  const selected = condition(chaos, 'Selected');
  if (selected?.status === 'False') {
    if (selected.reason === 'PolicyDenied') return 'Denied';
    if (selected.reason === 'InvalidSelection') return 'Invalid';
    if (selected.reason === 'DurationEnded') return 'Finished';
  }
  const records = chaos.status?.experiment?.containerRecords ?? [];
  const injected = records.some((r) => r.phase === 'Injected');
  if (condition(chaos, 'Paused')?.status === 'True') return injected ? 'Stopping' : 'Paused';
  if (chaos.status?.experiment?.desiredPhase === 'Stop') return injected ? 'Stopping' : 'Finished';
  if (condition(chaos, 'AllInjected')?.status === 'True') return 'Injected';
  if (condition(chaos, 'AllInjected')?.reason === 'InjectionFailed' || (records.length > 0 && records.every((r) => r.phase === 'Failed'))) return 'Failed';
  if (injected) return 'Injecting';
  if (records.length > 0) return 'Waiting';
  return 'Pending';
}

export function scheduleOf(chaos: KernelChaos): string {
  const { duration, scheduler } = chaos.spec;
  if (duration && scheduler?.cron) return `${duration} every ${scheduler.cron}`;
  if (duration) return duration;
  return 'until deleted';
}

function eventTime(e: CoreV1Event): string {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp;
  return t instanceof Date ? t.toISOString() : t ? String(t) : '';
}

/** The newest Event about this KernelChaos, if any. */
export function lastEventOf(chaos: KernelChaos, events: readonly CoreV1Event[]): EventSummary | undefined {
  let best: { e: CoreV1Event; at: string } | undefined;
  for (const e of events) {
    const o = e.involvedObject;
    if (o.kind !== 'KernelChaos' || o.name !== chaos.metadata.name || (o.namespace ?? '') !== (chaos.metadata.namespace ?? '')) continue;
    const at = eventTime(e);
    if (!best || at > best.at) best = { e, at };
  }
  if (!best) return undefined;
  return { type: best.e.type ?? 'Normal', reason: best.e.reason ?? '', message: best.e.message ?? '', at: best.at };
}

/** Pods whose experiments annotation names this experiment (the controller's selection). */
export function targetedPods(chaos: KernelChaos, pods: readonly V1Pod[]): string[] {
  const ref = experimentRef(chaos.metadata.namespace ?? 'default', chaos.metadata.name ?? '');
  return pods
    .filter((p) => parseExperimentsAnnotation(p.metadata?.annotations?.[EXPERIMENTS_ANNOTATION]).includes(ref))
    .map((p) => `${p.metadata?.namespace ?? 'default'}/${p.metadata?.name ?? ''}`)
    .sort();
}

/**
 * Faults of the whole experiment. A companion writes its node's program total into each of that
 * node's records (one program serves all its containers there), so: per node once, summed.
 */
export function faultsOf(records: readonly ContainerRecord[]): number {
  const perNode = new Map<string, number>();
  for (const r of records) {
    const node = r.node ?? '';
    perNode.set(node, Math.max(perNode.get(node) ?? 0, r.faultsInjected ?? 0));
  }
  let total = 0;
  for (const n of perNode.values()) total += n;
  return total;
}

export function summarize(chaos: KernelChaos, pods: readonly V1Pod[], events: readonly CoreV1Event[]): ExperimentSummary {
  const records = chaos.status?.experiment?.containerRecords ?? [];
  const containers: ContainerSummary[] = records
    .map((r) => ({ id: r.id, phase: r.phase, faults: r.faultsInjected ?? 0, ...(r.node ? { node: r.node } : {}), ...(r.reason ? { reason: r.reason } : {}) }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const lastEvent = lastEventOf(chaos, events);
  const created = chaos.metadata.creationTimestamp;
  return {
    namespace: chaos.metadata.namespace ?? 'default',
    name: chaos.metadata.name ?? '',
    phase: displayPhase(chaos),
    schedule: scheduleOf(chaos),
    failtype: chaos.spec.failKernRequest.failtype,
    targetedPods: targetedPods(chaos, pods),
    containers,
    armedContainers: containers.filter((c) => c.phase === 'Injected').length,
    faults: faultsOf(records),
    ...(lastEvent ? { lastEvent } : {}),
    ...(created ? { createdAt: String(created) } : {}),
  };
}
