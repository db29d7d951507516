// When an experiment's faults should be attached: a pure function of the KernelChaos object and the
// clock. Nothing is remembered between calls except the optional `firstSeen` time of objects that
// carry no creationTimestamp (manifest files), so a restarted companion lands in the same state.
import { parseGoDuration } from '../api/duration.js';
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

export type SchedulePhase = ScheduleState['phase'];

export type ScheduleState =
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
  /** The timing fields cannot be understood (the webhook normally rejects these first). */
  | { phase: 'invalid'; field: string; reason: string };

export interface ScheduleInputs {
  now: Date;
  /** When this companion first saw the object; used only when metadata.creationTimestamp is absent. */
  firstSeen?: Date;
  parseCron: CronParser;
}

export function isPaused(chaos: Pick<KernelChaos, 'metadata'>): boolean {
  return chaos.metadata.annotations?.[PAUSE_ANNOTATION] === 'true';
}

/** Computes where `chaos` stands at `inputs.now`. */
export function scheduleState(chaos: KernelChaos, inputs: ScheduleInputs): ScheduleState {
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

  let durationMs: number | null = null;
  if (chaos.spec.duration !== undefined) {
    durationMs = parseGoDuration(chaos.spec.duration);
    if (durationMs === null || durationMs <= 0) {
      return {
        phase: 'invalid',
        field: 'spec.duration',
        reason: `must be a positive Go duration such as 90s or 1m30s, got ${JSON.stringify(chaos.spec.duration)}`,
      };
    }
  }

  const state = chaos.spec.scheduler
    ? recurringState(chaos.spec.scheduler.cron, durationMs, start, inputs)
    : oneShotState(durationMs, start, now);
  // Pause wins over every live phase, but a finished or broken experiment stays what it is.
  if (isPaused(chaos) && (state.phase === 'active' || state.phase === 'pending' || state.phase === 'waiting')) {
    return { phase: 'paused' };
  }
  return state;
}

function startTime(chaos: KernelChaos, inputs: ScheduleInputs): Date | null {
  const raw = chaos.metadata.creationTimestamp;
  if (raw === undefined || raw === null || raw === '') return inputs.firstSeen ?? inputs.now;
  const ms = Date.parse(raw);
  return Number.isNaN(ms) ? null : new Date(ms);
}

function oneShotState(durationMs: number | null, start: Date, now: Date): ScheduleState {
  if (now < start) return { phase: 'pending', opensAt: start };
  if (durationMs === null) return { phase: 'active', openedAt: start, closesAt: null };
  const closesAt = new Date(start.getTime() + durationMs);
  if (now < closesAt) return { phase: 'active', openedAt: start, closesAt };
  return { phase: 'finished', reason: `the duration ${formatMs(durationMs)} ended at ${closesAt.toISOString()}` };
}

function recurringState(cron: string, durationMs: number | null, created: Date, inputs: ScheduleInputs): ScheduleState {
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

/** The next instant at which `state` changes by the clock alone, or null when only an object change can move it. */
export function nextBoundary(state: ScheduleState): Date | null {
  switch (state.phase) {
    case 'pending':
      return state.opensAt;
    case 'active':
      return state.closesAt;
    case 'waiting':
      return state.nextOpen;
    case 'finished':
    case 'paused':
    case 'invalid':
      return null;
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
