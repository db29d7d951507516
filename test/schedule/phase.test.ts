import { describe, expect, it } from 'vitest';
import { desiredPhaseOf, nextBoundary, nodePhase, experimentPhase, type CronParser, type Recurrence } from '../../src/schedule/phase.js';
import type { KernelChaos } from '../../src/api/types.js';
import { parseCron as realCron } from '../../src/schedule/cron.js';

// A recurrence that fires every `periodMs` since the epoch: exact, so expectations are easy to read.
function every(periodMs: number): Recurrence {
  return {
    nextAfter: (at) => new Date((Math.floor(at.getTime() / periodMs) + 1) * periodMs),
    previousAtOrBefore: (at) => new Date(Math.floor(at.getTime() / periodMs) * periodMs),
  };
}
const parseCron: CronParser = (expr) => {
  const m = /^@every (\d+)m$/.exec(expr);
  if (m) return { ok: true, recurrence: every(Number(m[1]) * 60_000) };
  if (expr === '@once-at-10:05') {
    const at = new Date('2026-01-01T10:05:00Z');
    return {
      ok: true,
      recurrence: { nextAfter: (d) => (d < at ? at : null), previousAtOrBefore: (d) => (d >= at ? at : null) },
    };
  }
  return { ok: false, reason: `not a cron expression: ${expr}` };
};

function chaos(over: { duration?: string; cron?: string; created?: string | null; paused?: boolean; deleting?: boolean }): KernelChaos {
  return {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: {
      name: 'k',
      namespace: 'ns',
      ...(over.created !== null ? { creationTimestamp: over.created ?? '2026-01-01T10:00:00Z' } : {}),
      ...(over.paused ? { annotations: { 'experiment.chaos-mesh.org/pause': 'true' } } : {}),
      ...(over.deleting ? { deletionTimestamp: '2026-01-01T10:00:30Z' } : {}),
    },
    spec: {
      mode: 'all',
      selector: {},
      failKernRequest: { failtype: 0 },
      ...(over.duration !== undefined ? { duration: over.duration } : {}),
      ...(over.cron ? { scheduler: { cron: over.cron } } : {}),
    },
  };
}
const at = (hms: string): Date => new Date(`2026-01-01T${hms}Z`);

describe('experimentPhase', () => {
  const cases: Array<[string, Parameters<typeof chaos>[0], string, unknown]> = [
    ['no duration, no scheduler: active forever from creation', {}, '12:00:00', { phase: 'active', openedAt: at('10:00:00'), closesAt: null }],
    ['created in the future (clock skew): pending', {}, '09:59:00', { phase: 'pending', opensAt: at('10:00:00') }],
    ['duration only, inside', { duration: '90s' }, '10:01:29', { phase: 'active', openedAt: at('10:00:00'), closesAt: at('10:01:30') }],
    ['duration only, at the end: closed (half-open window)', { duration: '90s' }, '10:01:30', { phase: 'finished' }],
    ['duration only, long after', { duration: '1m30s' }, '11:00:00', { phase: 'finished' }],
    ['cron + duration, inside a run', { cron: '@every 10m', duration: '2m' }, '10:11:59', { phase: 'active', openedAt: at('10:10:00'), closesAt: at('10:12:00') }],
    ['cron + duration, between runs', { cron: '@every 10m', duration: '2m' }, '10:12:00', { phase: 'waiting', nextOpen: at('10:20:00') }],
    ['cron: the fire at creation opens a run', { cron: '@every 10m', duration: '2m' }, '10:00:00', { phase: 'active', openedAt: at('10:00:00'), closesAt: at('10:02:00') }],
    ['cron: a fire before creation does not count', { cron: '@every 10m', duration: '5m', created: '2026-01-01T10:01:00Z' }, '10:02:00', { phase: 'pending', opensAt: at('10:10:00') }],
    ['cron that fires no more: finished', { cron: '@once-at-10:05', duration: '1m' }, '10:06:00', { phase: 'finished' }],
    ['cron before its only fire: pending', { cron: '@once-at-10:05', duration: '1m' }, '10:04:00', { phase: 'pending', opensAt: at('10:05:00') }],
    ['paused while active', { paused: true }, '10:30:00', { phase: 'paused' }],
    ['paused between runs', { cron: '@every 10m', duration: '2m', paused: true }, '10:15:00', { phase: 'paused' }],
    ['paused after the end stays finished', { duration: '1m', paused: true }, '10:30:00', { phase: 'finished' }],
    ['being deleted', { deleting: true }, '10:00:40', { phase: 'finished' }],
    ['bad duration', { duration: '10 minutes' }, '10:00:40', { phase: 'invalid', field: 'spec.duration' }],
    ['zero duration (Chaos Mesh accepts it): ends at once', { duration: '0s' }, '10:00:00', { phase: 'finished' }],
    ['negative duration', { duration: '-5s' }, '10:00:40', { phase: 'invalid', field: 'spec.duration' }],
    ['duration "" is no duration', { duration: '' }, '12:00:00', { phase: 'active', openedAt: at('10:00:00'), closesAt: null }],
    ['scheduler without duration', { cron: '@every 10m' }, '10:00:40', { phase: 'invalid', field: 'spec.duration' }],
    ['bad cron', { cron: 'every day', duration: '1m' }, '10:00:40', { phase: 'invalid', field: 'spec.scheduler.cron' }],
    ['bad creationTimestamp', { created: 'yesterday' }, '10:00:40', { phase: 'invalid', field: 'metadata.creationTimestamp' }],
  ];
  for (const [name, spec, now, expected] of cases) {
    it(name, () => {
      expect(experimentPhase(chaos(spec), { now: at(now), parseCron })).toMatchObject(expected as object);
    });
  }

  it('without creationTimestamp, counts the duration from when the companion first saw the object', () => {
    const c = chaos({ duration: '1m', created: null });
    const firstSeen = at('10:00:00');
    expect(experimentPhase(c, { now: at('10:00:59'), firstSeen, parseCron })).toMatchObject({ phase: 'active', closesAt: at('10:01:00') });
    expect(experimentPhase(c, { now: at('10:01:00'), firstSeen, parseCron })).toMatchObject({ phase: 'finished' });
  });

  it('a restarted companion (same objects, same clock) reaches the same state', () => {
    const c = chaos({ cron: '@every 10m', duration: '3m' });
    for (let minute = 0; minute < 60; minute += 1) {
      const now = new Date(at('10:00:00').getTime() + minute * 60_000);
      expect(experimentPhase(structuredClone(c), { now, parseCron })).toEqual(experimentPhase(c, { now, parseCron }));
    }
  });

  it('walking a fake clock through boundaries opens and closes each run exactly once', () => {
    const c = chaos({ cron: '@every 10m', duration: '2m' });
    let now = at('10:00:30');
    const phases: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      const state = experimentPhase(c, { now, parseCron });
      phases.push(`${state.phase}@${now.toISOString().slice(11, 16)}`);
      const next = nextBoundary(state);
      expect(next).not.toBeNull();
      now = next as Date;
    }
    expect(phases).toEqual(['active@10:00', 'waiting@10:02', 'active@10:10', 'waiting@10:12', 'active@10:20', 'waiting@10:22']);
  });

  it('desiredPhase is Run only while active; the companion (nodePhase) holds an active run the controller stopped', () => {
    const c = chaos({ duration: '1m' });
    const now = at('10:00:30');
    expect(desiredPhaseOf(experimentPhase(c, { now, parseCron }))).toBe('Run');
    expect(desiredPhaseOf(experimentPhase(c, { now: at('10:01:00'), parseCron }))).toBe('Stop');
    expect(desiredPhaseOf(experimentPhase(chaos({ paused: true }), { now, parseCron }))).toBe('Stop');
    expect(nodePhase(c, { now, parseCron }).phase).toBe('active');
    expect(nodePhase({ ...c, status: { experiment: { desiredPhase: 'Run' } } }, { now, parseCron }).phase).toBe('active');
    expect(nodePhase({ ...c, status: { experiment: { desiredPhase: 'Stop' } } }, { now, parseCron })).toMatchObject({ phase: 'held' });
    // Stop never opens a window the clock says is closed, and Run never keeps one open.
    expect(nodePhase({ ...c, status: { experiment: { desiredPhase: 'Run' } } }, { now: at('10:01:00'), parseCron }).phase).toBe('finished');
  });

  it('has no boundary to wake for when only an object change can move the state', () => {
    expect(nextBoundary({ phase: 'paused' })).toBeNull();
    expect(nextBoundary({ phase: 'active', openedAt: at('10:00:00'), closesAt: null })).toBeNull();
  });
});

describe('experimentPhase with the real cron parser (src/api/cron.ts)', () => {
  it('5-field cron: runs at each */5 minute for the duration', () => {
    const c = chaos({ cron: '*/5 * * * *', duration: '1m', created: '2026-01-01T10:02:00Z' });
    expect(experimentPhase(c, { now: at('10:03:00'), parseCron: realCron })).toEqual({ phase: 'pending', opensAt: at('10:05:00') });
    expect(experimentPhase(c, { now: at('10:05:30'), parseCron: realCron })).toEqual({ phase: 'active', openedAt: at('10:05:00'), closesAt: at('10:06:00') });
    expect(experimentPhase(c, { now: at('10:06:00'), parseCron: realCron })).toEqual({ phase: 'waiting', nextOpen: at('10:10:00') });
  });
  it('@every counts from the creationTimestamp', () => {
    const c = chaos({ cron: '@every 90s', duration: '30s', created: '2026-01-01T10:00:10Z' });
    expect(experimentPhase(c, { now: at('10:00:20'), parseCron: realCron })).toMatchObject({ phase: 'active', openedAt: at('10:00:10'), closesAt: at('10:00:40') });
    expect(experimentPhase(c, { now: at('10:00:40'), parseCron: realCron })).toEqual({ phase: 'waiting', nextOpen: at('10:01:40') });
    expect(experimentPhase(c, { now: at('10:01:50'), parseCron: realCron })).toMatchObject({ phase: 'active', closesAt: at('10:02:10') });
  });
  it('reports the parser\'s message for a bad expression', () => {
    const s = experimentPhase(chaos({ cron: '* * *', duration: '1m' }), { now: at('10:00:00'), parseCron: realCron });
    expect(s).toMatchObject({ phase: 'invalid', field: 'spec.scheduler.cron' });
    expect(s.phase === 'invalid' && s.reason).toMatch(/5 fields/);
  });
});
