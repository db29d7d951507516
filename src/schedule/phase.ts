// An experiment's phase: a pure function of the KernelChaos object and the clock, the one rule the
// controller (which writes status.experiment.desiredPhase from it) and the companion (which attaches
// only when it says active and the controller has not written Stop) both use. Nothing is remembered
// between calls except the optional `firstSeen` time of objects without a creationTimestamp
// (manifest files), so a restarted controller or companion lands in the same state.
//
// As Chaos Mesh 2.x's desired-phase controller decides: a deleted object stops; a duration ends at
// creationTimestamp + duration (one run, whatever the pods do); then the pause annotation stops it;
// otherwise it runs. The 1.x form (scheduler.cron + duration) opens one run of `duration` at each fire.
import { experimentDuration } from '../api/duration.js';
import { PAUSE_ANNOTATION } from '../api/labels.js';
import type { KernelChaos } from '../api/types.js';

/** A recurring schedule's fire times (see src/api/cron.ts for the parser behind it). */
export interface Recurrence {
  /** The first fire time strictly after `at`, or null when it never fires again. */
  nextAfter(at: Date): Date | null;
  /** The latest fire time at or before `at`, or null when it never fired before. */
  previousAtOrBefore(at: Date): Date | null;
}

/**
 * Turns `spec.scheduler.cron` into fire times, or says why it cannot. `anchor` (the object's
 * creation) is where `@every` intervals count from, so every component computes the same runs.
 */
export type CronParser = (expr: string, anchor: Date) => { ok: true; recurrence: Recurrence } | { ok: false; reason: string };

export type PhaseName = ExperimentPhase['phase'];

export type ExperimentPhase =
  /** No window has opened yet; the first opens at `opensAt`. */
  | { phase: 'pending'; opensAt: Date }
  /** Faults belong attached now; until `closesAt` (null: until the object is deleted). */
  | { phase: 'active'; openedAt: Date; closesAt: Date | null }
  /** Between two runs of a recurring schedule. */
  | { phase: 'waiting'; nextOpen: Date }
  /** Every window has closed, or the object is being deleted. */
  | { phase: 'finished'; reason: string }
  /** `experiment.chaos-mesh.org/pause: "true"`: nothing attached until the annotation goes. */
  | { phase: 'paused' }
  /** Active by the clock, but the controller wrote desiredPhase: Stop (nodePhase only). */
  | { phase: 'held'; reason: string }
  /** The timing fields cannot be understood (the webhook normally rejects these first). */
  | { phase: 'invalid'; field: string; reason: string };

export interface PhaseInputs {
  now: Date;
  /** When this companion first saw the object; used only when metadata.creationTimestamp is absent. */
  firstSeen?: Date;
  parseCron: CronParser;
}

export function isPaused(chaos: Pick<KernelChaos, 'metadata'>): boolean {
  return chaos.metadata.annotations?.[PAUSE_ANNOTATION] === 'true';
}

/** Where `chaos` stands at `inputs.now` by its spec, metadata and the clock. */
export function experimentPhase(chaos: KernelChaos, inputs: PhaseInputs): ExperimentPhase {
  const { now } = inputs;
  if (chaos.metadata.deletionTimestamp) return { phase: 'finished', reason: 'the KernelChaos is being deleted' };

  const start = startTime(chaos, inputs);
  if (start === null) {
    return {
      phase: 'invalid',
      field: 'metadata.creationTimestamp',
      reason: `not an RFC 3339 time: ${JSON.stringify(chaos.metadata.creationTimestamp)}`,
    };
  }

  const duration = experimentDuration(chaos.spec.duration);
  if (duration.kind === 'invalid' || (duration.kind === 'ms' && duration.ms < 0)) {
    return {
      phase: 'invalid',
      field: 'spec.duration',
      reason: `must be a Go duration such as 90s or 1m30s, got ${JSON.stringify(chaos.spec.duration)}`,
    };
  }
  const durationMs = duration.kind === 'ms' ? duration.ms : null;

  const state = chaos.spec.scheduler
    ? recurringState(chaos.spec.scheduler.cron, durationMs, start, inputs)
    : oneShotState(durationMs, start, now);
  // Pause wins over every live phase, but a finished or broken experiment stays what it is.
  if (isPaused(chaos) && (state.phase === 'active' || state.phase === 'pending' || state.phase === 'waiting')) {
    return { phase: 'paused' };
  }
  return state;
}

function startTime(chaos: KernelChaos, inputs: PhaseInputs): Date | null {
  const raw = chaos.metadata.creationTimestamp;
  if (raw === undefined || raw === null || raw === '') return inputs.firstSeen ?? inputs.now;
  const ms = Date.parse(raw);
  return Number.isNaN(ms) ? null : new Date(ms);
}

function oneShotState(durationMs: number | null, start: Date, now: Date): ExperimentPhase {
  if (now < start) return { phase: 'pending', opensAt: start };
  if (durationMs === null) return { phase: 'active', openedAt: start, closesAt: null };
  const closesAt = new Date(start.getTime() + durationMs);
  if (now < closesAt) return { phase: 'active', openedAt: start, closesAt };
  return { phase: 'finished', reason: `the duration ${formatMs(durationMs)} ended at ${closesAt.toISOString()}` };
}

function recurringState(cron: string, durationMs: number | null, created: Date, inputs: PhaseInputs): ExperimentPhase {
  if (durationMs === null) {
    return { phase: 'invalid', field: 'spec.duration', reason: 'spec.scheduler needs spec.duration: how long each run lasts' };
  }
  const parsed = inputs.parseCron(cron, created);
  if (!parsed.ok) return { phase: 'invalid', field: 'spec.scheduler.cron', reason: parsed.reason };
  const { recurrence } = parsed;
  const { now } = inputs;
  // Fire times before the object existed do not count: a run opens only at a fire at or after creation.
  const previous = recurrence.previousAtOrBefore(now);
  if (previous !== null && previous >= created) {
    const closesAt = new Date(previous.getTime() + durationMs);
    if (now < closesAt) return { phase: 'active', openedAt: previous, closesAt };
  }
  const next = recurrence.nextAfter(now < created ? new Date(created.getTime() - 1) : now);
  if (next === null) return { phase: 'finished', reason: `the schedule ${JSON.stringify(cron)} fires no more` };
  const firedSinceCreation = previous !== null && previous >= created;
  return firedSinceCreation ? { phase: 'waiting', nextOpen: next } : { phase: 'pending', opensAt: next };
}

/** Chaos Mesh's status.experiment.desiredPhase for a phase: Run only while faults belong attached. */
export function desiredPhaseOf(state: ExperimentPhase): 'Run' | 'Stop' {
  return state.phase === 'active' ? 'Run' : 'Stop';
}

/**
 * What a node companion does: the clock's phase, except that an active experiment whose controller
 * wrote `desiredPhase: Stop` stays detached (as Chaos Mesh's daemon obeys the desired phase). An
 * object no controller has written yet (or a manifest file) follows the clock alone.
 */
export function nodePhase(chaos: KernelChaos, inputs: PhaseInputs): ExperimentPhase {
  const state = experimentPhase(chaos, inputs);
  if (state.phase === 'active' && chaos.status?.experiment?.desiredPhase === 'Stop') {
    return { phase: 'held', reason: 'the controller set status.experiment.desiredPhase: Stop (policy, selection or pause)' };
  }
  return state;
}

/** The next instant at which `state` changes by the clock alone, or null when only an object change can move it. */
export function nextBoundary(state: ExperimentPhase): Date | null {
  switch (state.phase) {
    case 'pending':
      return state.opensAt;
    case 'active':
      return state.closesAt;
    case 'waiting':
      return state.nextOpen;
    case 'finished':
    case 'paused':
    case 'held':
    case 'invalid':
      return null;
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
