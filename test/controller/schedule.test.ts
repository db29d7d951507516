// The Schedule decisions (src/controller/schedule.ts) against Chaos Mesh's schedule controllers' rules.
import { describe, expect, it } from 'vitest';
import type { KernelChaos } from '../../src/api/types.js';
import { MANAGED_BY_LABEL, childName, dueRun, planSchedule, type ScheduleObject } from '../../src/controller/schedule.js';

const T0 = '2026-12-01T10:00:00Z';
const at = (s: number): Date => new Date(Date.parse(T0) + s * 1000);

function sched(spec: Record<string, unknown> = {}, status?: ScheduleObject['status'], annotations?: Record<string, string>): ScheduleObject {
  return {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'Schedule',
    metadata: { name: 'sk', namespace: 'apps', uid: 'u-1', creationTimestamp: T0, ...(annotations ? { annotations } : {}) },
    spec: {
      schedule: '@every 10s',
      type: 'KernelChaos',
      historyLimit: 2,
      kernelChaos: { mode: 'all', selector: {}, failKernRequest: { failtype: 0, times: 1 }, duration: '5s' },
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

function child(name: string, createdS: number, opts: { duration?: string; desired?: 'Run' | 'Stop'; injected?: boolean; paused?: boolean } = {}): KernelChaos {
  return {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: {
      name,
      namespace: 'apps',
      creationTimestamp: at(createdS).toISOString(),
      labels: { [MANAGED_BY_LABEL]: 'sk' },
      ...(opts.paused ? { annotations: { 'experiment.chaos-mesh.org/pause': 'true' } } : {}),
    },
    spec: { mode: 'all', selector: {}, failKernRequest: { failtype: 0 }, ...(opts.duration !== undefined ? { duration: opts.duration } : { duration: '5s' }) },
    status: {
      experiment: {
        ...(opts.desired ? { desiredPhase: opts.desired } : {}),
        containerRecords: opts.injected ? [{ id: 'apps/p/c', selectorKey: '.', phase: 'Injected', injectedCount: 1, recoveredCount: 0 }] : [],
      },
    },
  };
}
const types = (p: ReturnType<typeof planSchedule>): string[] => p.actions.map((a) => (a.type === 'event' ? `event ${a.reason}` : a.type));

describe('planSchedule', () => {
  it('nothing before the first fire; wakes at it', () => {
    const p = planSchedule(sched(), [], at(5));
    expect(types(p)).toEqual([]);
    expect(p.nextWakeAt).toEqual(at(10));
  });
  it('spawns a child as Chaos Mesh does: <name>-xxxxx, owner reference, managed-by label, the embedded spec', () => {
    const p = planSchedule(sched(), [], at(10));
    expect(types(p)).toEqual(['createChild', 'setLastScheduleTime', 'event Spawned']);
    const create = p.actions[0];
    if (create?.type !== 'createChild') throw new Error('no child');
    expect(create.body.metadata.name).toMatch(/^sk-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(create.body.metadata.name).toBe(childName(sched(), at(10)));
    expect(create.body.metadata.ownerReferences).toEqual([{ apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'Schedule', name: 'sk', uid: 'u-1', controller: true, blockOwnerDeletion: true }]);
    expect(create.body.metadata.labels).toEqual({ [MANAGED_BY_LABEL]: 'sk' });
    expect(create.body.metadata.namespace).toBe('apps');
    expect(create.body.spec).toEqual(sched().spec.kernelChaos);
    expect(create.firedAt).toEqual(at(10));
  });
  it('counts from status.time (the last spawn); a run that fired while down is started once', () => {
    expect(dueRun(sched({}, { time: at(12).toISOString() }), at(15))).toEqual({ kind: 'none', next: at(22) });
    expect(dueRun(sched({ schedule: '* * * * *' }), at(200))).toMatchObject({ kind: 'due', at: new Date('2026-12-01T10:03:00Z') });
  });
  it('startingDeadlineSeconds: a due run later than the deadline is missed, not started', () => {
    const s = sched({ schedule: '*/5 * * * *', startingDeadlineSeconds: 30 });
    expect(types(planSchedule(s, [], at(300 + 20)))).toContain('createChild');
    // 10:05 is due; at 10:06:00 it is 60 s late: the deadline window starts at 10:05:30, so nothing is due and none is started.
    expect(types(planSchedule(s, [], at(360)))).toEqual([]);
  });
  it('more than 100 missed runs is an error event, no spawn', () => {
    const p = planSchedule(sched({ schedule: '@every 1s' }), [], at(500));
    expect(types(p)).toEqual(['event Failed']);
  });
  it('Forbid (default) waits while a child runs; Allow does not', () => {
    const running = child('sk-aaaaa', 10, { desired: 'Run' });
    expect(types(planSchedule(sched({}, { time: at(10).toISOString(), active: [] }), [running], at(20)))).toEqual(['setActive', 'event ScheduleForbid']);
    expect(types(planSchedule(sched({ concurrencyPolicy: 'Allow' }, { time: at(10).toISOString() }), [running], at(20)))).toContain('createChild');
    // Its duration is over but a container is still injected: still running for Forbid.
    const lingering = child('sk-aaaaa', 0, { desired: 'Stop', injected: true });
    expect(types(planSchedule(sched({}, { time: at(0).toISOString() }), [lingering], at(20)))).toContain('event ScheduleForbid');
    const done = child('sk-aaaaa', 0, { desired: 'Stop' });
    expect(types(planSchedule(sched({}, { time: at(0).toISOString() }), [done], at(20)))).toContain('createChild');
  });
  it('historyLimit: deletes the oldest finished children beyond it, keeps running ones', () => {
    const kids = [child('sk-1', 0, { desired: 'Stop' }), child('sk-2', 10, { desired: 'Run', duration: '' }), child('sk-3', 20, { desired: 'Stop' }), child('sk-4', 30, { desired: 'Stop' })];
    const p = planSchedule(sched({ schedule: '@every 1h' }, { time: at(30).toISOString() }), kids, at(40));
    expect(p.actions.filter((a) => a.type === 'deleteChild')).toEqual([{ type: 'deleteChild', name: 'sk-1' }]);
  });
  it('status.active lists every child by name; pause is copied to children and stops spawning', () => {
    const kids = [child('sk-b', 0, { desired: 'Stop' }), child('sk-a', 0, { desired: 'Stop' })];
    const p = planSchedule(sched({}, { time: at(0).toISOString() }, { 'experiment.chaos-mesh.org/pause': 'true' }), kids, at(20));
    expect(p.actions.find((a) => a.type === 'setActive')).toMatchObject({ active: [{ name: 'sk-a' }, { name: 'sk-b' }] });
    expect(p.actions.filter((a) => a.type === 'setChildPause')).toEqual([{ type: 'setChildPause', name: 'sk-b', paused: true }, { type: 'setChildPause', name: 'sk-a', paused: true }]);
    expect(types(p)).not.toContain('createChild');
  });
  it('an invalid or hostile Schedule gets one Warning and no action', () => {
    for (const spec of [{ schedule: 'nope' }, { kernelChaos: { mode: 'x' } }, { historyLimit: -1 }, { type: 'PodChaos' }]) {
      expect(types(planSchedule(sched(spec), [], at(100)))).toEqual(['event Invalid']);
    }
  });
});
