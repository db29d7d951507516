// Per-container records: what happened to each targeted container of each experiment on this
// node, in the shape of Chaos Mesh's status.experiment.containerRecords (with our extra counts).
import type { ContainerRecord } from '../api/types.js';
import { containerRecordId, type ContainerKey, type ExperimentId } from './model.js';

export type RecordPhase = ContainerRecord['phase'];
export type RecordEvent = NonNullable<ContainerRecord['events']>[number];

/** Enough history to explain the last few transitions without growing the status object. */
const MAX_EVENTS = 10;

export interface LiveRecord {
  experiment: ExperimentId;
  container: ContainerKey;
  phase: RecordPhase;
  reason?: string;
  containerId?: string;
  cgroupId?: bigint;
  /** How the fault is attached while Injected (engine mechanism and `times` budget). */
  mechanism?: string;
  injectedCount: number;
  recoveredCount: number;
  /** Faults injected by this experiment's program on this node (one program serves all its containers). */
  faultsInjected: number;
  events: RecordEvent[];
}

/** A transition worth an Event on the pod and the experiment. */
export interface Transition {
  record: LiveRecord;
  kind: 'injected' | 'recovered' | 'failed' | 'reattached';
  message: string;
}

export type Desired =
  | { phase: 'Injected'; containerId: string; cgroupId: bigint; mechanism?: string }
  | { phase: 'Not Injected'; reason: string; containerId?: string }
  | { phase: 'Failed'; reason: string; containerId?: string };

/** Moves `record` to `desired`, counting injections and recoveries; returns the transition, if any. */
export function advance(record: LiveRecord, desired: Desired, at: Date): Transition | null {
  const was = record.phase;
  const timestamp = at.toISOString();
  const push = (e: RecordEvent): void => {
    record.events.push(e);
    if (record.events.length > MAX_EVENTS) record.events.splice(0, record.events.length - MAX_EVENTS);
  };
  if (desired.phase === 'Injected') {
    const restarted = was === 'Injected' && record.containerId !== undefined && record.containerId !== desired.containerId;
    record.containerId = desired.containerId;
    record.cgroupId = desired.cgroupId;
    delete record.reason;
    const previousMechanism = record.mechanism;
    if (desired.mechanism !== undefined) record.mechanism = desired.mechanism;
    if (was === 'Injected' && !restarted) {
      if (desired.mechanism === undefined || previousMechanism === undefined || previousMechanism === desired.mechanism) return null;
      // Re-armed in place (a new `times` allotment): the record says what the program obeys now.
      const message = `fault re-armed on cgroup ${desired.cgroupId} by ${desired.mechanism}`;
      push({ type: 'Succeeded', operation: 'Apply', message, timestamp });
      return { record, kind: 'reattached', message };
    }
    record.phase = 'Injected';
    if (restarted) {
      // The old container is gone with its cgroup; the fault follows the new one.
      record.recoveredCount += 1;
      record.injectedCount += 1;
      const message = `container restarted; fault attached to the new container ${shortId(desired.containerId)}`;
      push({ type: 'Succeeded', operation: 'Apply', message, timestamp });
      return { record, kind: 'reattached', message };
    }
    record.injectedCount += 1;
    const message = `fault attached to cgroup ${desired.cgroupId}${desired.mechanism ? ` by ${desired.mechanism}` : ''}`;
    push({ type: 'Succeeded', operation: 'Apply', message, timestamp });
    return { record, kind: 'injected', message };
  }

  const sameState = was === desired.phase && record.reason === desired.reason;
  if (desired.containerId !== undefined) record.containerId = desired.containerId;
  if (sameState) return null;
  record.phase = desired.phase;
  record.reason = desired.reason;
  if (was === 'Injected') record.recoveredCount += 1;
  if (desired.phase === 'Failed') {
    push({ type: 'Failed', operation: 'Apply', message: desired.reason, timestamp });
    return { record, kind: 'failed', message: desired.reason };
  }
  if (was === 'Injected') {
    const message = `fault detached: ${desired.reason}`;
    push({ type: 'Succeeded', operation: 'Recover', message, timestamp });
    return { record, kind: 'recovered', message };
  }
  return null;
}

export function newRecord(experiment: ExperimentId, container: ContainerKey, seed?: ContainerRecord): LiveRecord {
  // Counts continue from what an earlier run of this companion wrote, so a restart does not reset them.
  return {
    experiment,
    container,
    phase: 'Not Injected',
    injectedCount: seed?.injectedCount ?? 0,
    recoveredCount: seed?.recoveredCount ?? 0,
    faultsInjected: seed?.faultsInjected ?? 0,
    events: [...(seed?.events ?? [])],
  };
}

export function toContainerRecord(r: LiveRecord, node: string): ContainerRecord {
  return {
    id: containerRecordId(r.container),
    selectorKey: '.',
    phase: r.phase,
    injectedCount: r.injectedCount,
    recoveredCount: r.recoveredCount,
    faultsInjected: r.faultsInjected,
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    node,
    events: [...r.events],
  };
}

function shortId(containerId: string): string {
  const i = containerId.indexOf('://');
  return (i >= 0 ? containerId.slice(i + 3) : containerId).slice(0, 12);
}
