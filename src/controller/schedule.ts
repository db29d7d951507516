// Chaos Mesh's Schedule of KernelChaos, run where Chaos Mesh is not installed: pure decisions from
// the Schedule, its children (KernelChaos labelled managed-by=<schedule>) and the clock, as Chaos
// Mesh's schedule controllers (cron, gc, active, pause) decide them:
// - a run is due at the most recent fire time after status.time (the last spawn; creation before
//   the first), no earlier than now - startingDeadlineSeconds; more than 100 missed fires is an error;
// - a due run later than startingDeadlineSeconds is missed (an Event), not started;
// - Forbid (the default): no new child while one has not finished (desiredPhase Run, a container
//   still injected, or its duration not over);
// - each child is named <schedule>-<5 characters>, owned by the Schedule (controller, block owner
//   deletion), labelled managed-by=<schedule>, in the Schedule's namespace, with kernelChaos as spec;
// - beyond historyLimit the oldest finished children are deleted; running ones are kept;
// - status.active lists every child by name; the pause annotation is copied onto every child.
// The 5 characters come from the Schedule's uid and the fire time, so a retried spawn after a crash
// finds the child it already made (AlreadyExists) instead of making a second.
import { createHash } from 'node:crypto';
import { parseSchedule } from '../api/cron.js';
import { PAUSE_ANNOTATION } from '../api/labels.js';
import type { KernelChaos } from '../api/types.js';
import { validateSchedule } from '../api/validate-chaos-mesh.js';
import { experimentPhase } from '../schedule/phase.js';
import { parseCron } from '../schedule/cron.js';

/** Chaos Mesh's label on a Schedule's children (v1alpha1.LabelManagedBy). */
export const MANAGED_BY_LABEL = 'managed-by';
export const MAX_MISSED_RUNS = 100;

export interface ScheduleObject {
  apiVersion: string;
  kind: 'Schedule';
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
  };
  spec: Record<string, unknown>;
  status?: { active?: ChildRef[]; time?: string | null };
}

export interface ChildRef {
  apiVersion: string;
  kind: 'KernelChaos';
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

export type ChildBody = Omit<KernelChaos, 'metadata'> & { metadata: KernelChaos['metadata'] & { ownerReferences: OwnerReference[] } };

export type ScheduleAction =
  | { type: 'createChild'; body: ChildBody; firedAt: Date }
  | { type: 'setLastScheduleTime'; time: Date }
  | { type: 'deleteChild'; name: string }
  | { type: 'setActive'; active: ChildRef[] }
  | { type: 'setChildPause'; name: string; paused: boolean }
  | { type: 'event'; eventType: 'Normal' | 'Warning'; reason: string; message: string };

export interface SchedulePlan {
  actions: ScheduleAction[];
  /** When the decisions change by the clock alone (the next fire, a child's end). */
  nextWakeAt?: Date;
}

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** `<name>-xxxxx` in Kubernetes' generated-name alphabet, fixed by (uid, fire time). */
export function childName(schedule: ScheduleObject, firedAt: Date): string {
  const digest = createHash('sha256').update(`${schedule.metadata.uid ?? schedule.metadata.name ?? ''}/${firedAt.toISOString()}`).digest();
  let suffix = '';
  for (let i = 0; i < 5; i += 1) suffix += NAME_ALPHABET[(digest[i] as number) % NAME_ALPHABET.length];
  return `${schedule.metadata.name ?? ''}-${suffix}`;
}

export function isPausedSchedule(schedule: ScheduleObject): boolean {
  return schedule.metadata.annotations?.[PAUSE_ANNOTATION] === 'true';
}

/** Chaos Mesh's IsChaosFinished for a child, with when it will be over by the clock (if known). */
export function childFinished(child: KernelChaos, now: Date): { finished: boolean; until?: Date } {
  const phase = experimentPhase(child, { now, parseCron });
  const status = child.status?.experiment;
  const stillInjected = (status?.containerRecords ?? []).some((r) => r.phase === 'Injected');
  if (phase.phase === 'active' && phase.closesAt) return { finished: false, until: phase.closesAt };
  // Only a duration that is over ends a child; without one it runs until deleted.
  if (phase.phase === 'finished') return { finished: status?.desiredPhase !== 'Run' && !stillInjected };
  return { finished: false };
}

type DueRun = { kind: 'none'; next: Date | null } | { kind: 'due'; at: Date; next: Date | null } | { kind: 'error'; message: string };

/** Chaos Mesh's getRecentUnmetScheduleTime over our cron parser. */
export function dueRun(schedule: ScheduleObject, now: Date): DueRun {
  const expr = schedule.spec.schedule;
  if (typeof expr !== 'string') return { kind: 'error', message: 'spec.schedule is not a string' };
  const created = Date.parse(schedule.metadata.creationTimestamp ?? '');
  const last = schedule.status?.time ? Date.parse(schedule.status.time) : NaN;
  let earliest = !Number.isNaN(last) ? last : created;
  if (Number.isNaN(earliest)) return { kind: 'error', message: 'no creationTimestamp' };
  const deadline = schedule.spec.startingDeadlineSeconds;
  if (typeof deadline === 'number' && deadline > 0) earliest = Math.max(earliest, now.getTime() - deadline * 1000);
  if (earliest > now.getTime()) return { kind: 'error', message: `the last run time ${new Date(earliest).toISOString()} is later than now` };
  // @every counts from the earliest time, as robfig's constant-delay schedule does.
  const parsed = parseSchedule(expr, { secondsOptional: true, anchor: new Date(earliest) });
  if (!parsed.ok) return { kind: 'error', message: `spec.schedule: ${parsed.message}` };
  const sched = parsed.schedule;
  let missed: Date | null = null;
  let t = sched.nextAfter(new Date(earliest));
  let next = t;
  let count = 0;
  while (t !== null && t.getTime() <= now.getTime()) {
    missed = t;
    t = sched.nextAfter(t);
    next = t;
    count += 1;
    if (count > MAX_MISSED_RUNS) {
      return { kind: 'error', message: `more than ${MAX_MISSED_RUNS} missed start times: set or lower spec.startingDeadlineSeconds, or check clock skew` };
    }
  }
  return missed === null ? { kind: 'none', next } : { kind: 'due', at: missed, next };
}

function refOf(child: KernelChaos): ChildRef {
  return {
    apiVersion: child.apiVersion,
    kind: 'KernelChaos',
    namespace: child.metadata.namespace ?? 'default',
    name: child.metadata.name ?? '',
    ...(child.metadata.uid ? { uid: child.metadata.uid } : {}),
  };
}

function sameActive(a: readonly ChildRef[] | undefined, b: readonly ChildRef[]): boolean {
  const x = a ?? [];
  return x.length === b.length && x.every((r, i) => r.name === b[i]?.name && r.namespace === b[i]?.namespace);
}

function earlier(a: Date | undefined, b: Date | null | undefined): Date | undefined {
  if (!b) return a;
  return a === undefined || b < a ? b : a;
}

export function planSchedule(schedule: ScheduleObject, allChildren: readonly KernelChaos[], now: Date): SchedulePlan {
  const actions: ScheduleAction[] = [];
  let wake: Date | undefined;
  if (schedule.metadata.deletionTimestamp) return { actions };
  const name = schedule.metadata.name ?? '';
  const namespace = schedule.metadata.namespace ?? 'default';
  // Only children this Schedule owns (the label alone could be anyone's).
  const children = allChildren.filter(
    (c) => c.metadata.labels?.[MANAGED_BY_LABEL] === name && (c.metadata.namespace ?? 'default') === namespace && !c.metadata.deletionTimestamp,
  );
  const verdict = validateSchedule(schedule);
  if (verdict.valid !== true) {
    const why = verdict.valid === false ? verdict.errors.map((e) => `${e.path}: ${e.message}`).join('; ') : verdict.reason;
    actions.push({ type: 'event', eventType: 'Warning', reason: 'Invalid', message: `not run by kernelchaos: ${why}`.slice(0, 1000) });
    return { actions };
  }

  // active: every child, by name.
  const active = children.map(refOf).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (!sameActive(schedule.status?.active, active)) actions.push({ type: 'setActive', active });

  // pause: children follow the Schedule's annotation.
  const paused = isPausedSchedule(schedule);
  for (const c of children) {
    const childPaused = c.metadata.annotations?.[PAUSE_ANNOTATION] === 'true';
    if (childPaused !== paused) actions.push({ type: 'setChildPause', name: c.metadata.name ?? '', paused });
  }

  // gc: the oldest beyond historyLimit, once finished.
  const limit = typeof schedule.spec.historyLimit === 'number' ? schedule.spec.historyLimit : 0;
  const byAge = [...children].sort((a, b) => Date.parse(a.metadata.creationTimestamp ?? '') - Date.parse(b.metadata.creationTimestamp ?? ''));
  const excess = byAge.length - limit;
  for (const c of byAge.slice(0, Math.max(0, excess))) {
    const f = childFinished(c, now);
    if (f.finished) actions.push({ type: 'deleteChild', name: c.metadata.name ?? '' });
    else wake = earlier(wake, f.until);
  }

  if (paused) return { actions, ...(wake ? { nextWakeAt: wake } : {}) };

  // cron: spawn the due run.
  const due = dueRun(schedule, now);
  if (due.kind === 'error') {
    actions.push({ type: 'event', eventType: 'Warning', reason: 'Failed', message: `cannot compute the next run: ${due.message}` });
    return { actions, ...(wake ? { nextWakeAt: wake } : {}) };
  }
  wake = earlier(wake, due.next);
  if (due.kind === 'none') return { actions, ...(wake ? { nextWakeAt: wake } : {}) };
  const deadline = schedule.spec.startingDeadlineSeconds;
  if (typeof deadline === 'number' && due.at.getTime() + deadline * 1000 < now.getTime()) {
    actions.push({ type: 'event', eventType: 'Warning', reason: 'MissedSchedule', message: `missed the run at ${due.at.toISOString()} (startingDeadlineSeconds ${deadline})` });
    return { actions, ...(wake ? { nextWakeAt: wake } : {}) };
  }
  const policy = schedule.spec.concurrencyPolicy;
  if (policy !== 'Allow') {
    const running = children.map((c) => ({ c, f: childFinished(c, now) })).find((x) => !x.f.finished);
    if (running) {
      actions.push({ type: 'event', eventType: 'Normal', reason: 'ScheduleForbid', message: `${running.c.metadata.name ?? ''} is still running; concurrencyPolicy Forbid` });
      wake = earlier(wake, running.f.until);
      return { actions, ...(wake ? { nextWakeAt: wake } : {}) };
    }
  }
  const body: ChildBody = {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: {
      name: childName(schedule, due.at),
      namespace,
      labels: { [MANAGED_BY_LABEL]: name },
      ownerReferences: [
        { apiVersion: schedule.apiVersion, kind: 'Schedule', name, uid: schedule.metadata.uid ?? '', controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: structuredClone(schedule.spec.kernelChaos) as KernelChaos['spec'],
  };
  actions.push({ type: 'createChild', body, firedAt: due.at });
  actions.push({ type: 'setLastScheduleTime', time: now });
  actions.push({ type: 'event', eventType: 'Normal', reason: 'Spawned', message: `created ${body.metadata.name ?? ''} for the run at ${due.at.toISOString()}` });
  return { actions, ...(wake ? { nextWakeAt: wake } : {}) };
}
