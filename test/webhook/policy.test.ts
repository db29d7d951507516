import { describe, expect, it } from 'vitest';
import { checkPolicies, formatViolation, reachableNamespaces } from '../../src/policy/check.js';
import { inWindow } from '../../src/policy/windows.js';
import { allModeChaos, policy, seedChaos } from './fixtures.js';

const NOW = new Date('2026-11-25T10:30:00Z'); // a Wednesday

describe('reachableNamespaces', () => {
  it('is the own namespace for an empty selector', () => {
    expect(reachableNamespaces(allModeChaos('x', 'team-a'))).toEqual(['team-a']);
  });

  it('adds selector.namespaces and the namespaces of explicit pods', () => {
    const chaos = allModeChaos('x', 'team-a', { namespaces: ['team-b'], pods: { 'team-c': ['p1'] } });
    expect(reachableNamespaces(chaos)).toEqual(['team-a', 'team-b', 'team-c']);
  });
});

describe('checkPolicies', () => {
  it('forbids predicates and limits frames and predicate length per namespace', () => {
    const chaos = seedChaos();
    chaos.spec.failKernRequest.callchain = [
      { funcname: '__x64_sys_mount' },
      { funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name', predicate: 'STRCMP(name->name, "bananas")' },
    ];
    const strict = [policy('chaos-mount', 'strict', { allowPredicates: false, maxFrames: 1, maxPredicateLength: 10 })];
    expect(checkPolicies(chaos, strict, NOW).map(formatViolation)).toEqual([
      'spec.failKernRequest.callchain: has 2 frames; policy chaos-mount/strict maxFrames 1',
      'spec.failKernRequest.callchain[1].predicate: parameters and predicates are not allowed by policy chaos-mount/strict allowPredicates false: remove them (the frame still matches by funcname)',
      'spec.failKernRequest.callchain[1].predicate: is 29 characters; policy chaos-mount/strict maxPredicateLength 10',
    ]);
    const lax = [policy('chaos-mount', 'lax', { allowPredicates: true, maxFrames: 2, maxPredicateLength: 29 })];
    expect(checkPolicies(chaos, lax, NOW)).toEqual([]);
    // Another namespace's policy does not apply.
    expect(checkPolicies(chaos, [policy('elsewhere', 'strict', { allowPredicates: false })], NOW)).toEqual([]);
  });

  it('names the policy, the field and the limit', () => {
    const chaos = allModeChaos('x', 'team-a');
    chaos.spec.failKernRequest.probability = 80;
    const v = checkPolicies(chaos, [policy('team-a', 'limits', { maxProbability: 50 })], NOW);
    expect(v.map(formatViolation)).toEqual(['spec.failKernRequest.probability: 80 exceeds policy team-a/limits maxProbability 50']);
  });

  it('counts an omitted or zero probability as 100', () => {
    const seed = seedChaos();
    const limits = [policy('chaos-mount', 'limits', { maxProbability: 50 })];
    expect(checkPolicies(seed, limits, NOW)[0]?.message).toMatch(/100 .*exceeds policy chaos-mount\/limits maxProbability 50/);
    seed.spec.failKernRequest.probability = 0;
    expect(checkPolicies(seed, limits, NOW)).toHaveLength(1);
  });

  it("applies the policies of the selector's namespaces, not of unrelated ones", () => {
    const seed = seedChaos(); // in chaos-testing, targets chaos-mount
    const policies = [
      policy('chaos-mount', 'strict', { allowedFailtypes: [2] }),
      policy('elsewhere', 'strict', { allowedFailtypes: [2] }),
    ];
    const v = checkPolicies(seed, policies, NOW);
    expect(v.map((x) => x.policy)).toEqual(['chaos-mount/strict']);
    expect(formatViolation(v[0]!)).toBe('spec.failKernRequest.failtype: 0 is not allowed by policy chaos-mount/strict allowedFailtypes [2]');
  });

  it('applies the policies of namespaces named by explicit pods', () => {
    const chaos = allModeChaos('x', 'team-a', { pods: { 'team-c': ['db-0'] } });
    expect(checkPolicies(chaos, [policy('team-c', 'modes', { allowedModes: ['one'] })], NOW).map(formatViolation)).toEqual([
      'spec.mode: all is not allowed by policy team-c/modes allowedModes [one]',
    ]);
  });

  it('requires duration and times when the policy caps them, and checks the caps', () => {
    const chaos = allModeChaos('x', 'team-a');
    const limits = [policy('team-a', 'caps', { maxDuration: '1m', maxTimes: 5 })];
    const v1 = checkPolicies(chaos, limits, NOW).map(formatViolation); // duration 5m, times 10
    expect(v1).toContain('spec.duration: 5m exceeds policy team-a/caps maxDuration 1m');
    expect(v1).toContain('spec.failKernRequest.times: 10 exceeds policy team-a/caps maxTimes 5');
    delete chaos.spec.duration;
    delete chaos.spec.failKernRequest.times;
    const v2 = checkPolicies(chaos, limits, NOW);
    expect(v2.map((v) => v.path).sort()).toEqual(['spec.duration', 'spec.failKernRequest.times']);
    expect(v2.every((v) => /must be set/.test(v.message))).toBe(true);
    chaos.spec.duration = '45s';
    chaos.spec.failKernRequest.times = 5;
    expect(checkPolicies(chaos, limits, NOW)).toEqual([]);
  });

  it('checks call-chain functions against exact names and prefix* patterns, and requireCallchain', () => {
    const chaos = allModeChaos('x', 'team-a');
    chaos.spec.failKernRequest.callchain = [{ funcname: 'ext4_mount' }, { funcname: 'd_alloc_parallel' }];
    const limits = [policy('team-a', 'fns', { allowedFunctions: ['ext4_*', '__x64_sys_mount'] })];
    expect(checkPolicies(chaos, limits, NOW).map(formatViolation)).toEqual([
      'spec.failKernRequest.callchain[1].funcname: d_alloc_parallel is not allowed by policy team-a/fns allowedFunctions [ext4_*, __x64_sys_mount]',
    ]);
    chaos.spec.failKernRequest.callchain = [];
    const v = checkPolicies(chaos, [policy('team-a', 'chain', { requireCallchain: true })], NOW);
    expect(v[0]?.path).toBe('spec.failKernRequest.callchain');
  });

  it('allows creation only inside the schedule windows, and scheduled runs only starting inside them', () => {
    const chaos = allModeChaos('x', 'team-a');
    delete chaos.spec.scheduler;
    const office = [policy('team-a', 'hours', { allowedScheduleWindows: [{ days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], start: '09:00', end: '17:00' }] })];
    expect(checkPolicies(chaos, office, NOW)).toEqual([]);
    const night = new Date('2026-11-25T22:00:00Z');
    expect(checkPolicies(chaos, office, night).map(formatViolation)[0]).toMatch(
      /^metadata: experiments may only be created inside policy team-a\/hours allowedScheduleWindows \[Mon,Tue,Wed,Thu,Fri 09:00-17:00 UTC\], now is Wed 22:00 UTC$/,
    );
    // UPDATE (pausing) is never held to the window.
    expect(checkPolicies(chaos, office, night, { checkCreationWindow: false })).toEqual([]);

    chaos.spec.scheduler = { cron: '0 10 * * *' }; // daily 10:00, including weekends
    const v = checkPolicies(chaos, office, NOW);
    expect(v.map((x) => x.path)).toEqual(['spec.scheduler.cron']);
    expect(v[0]?.message).toMatch(/^runs at Sat 10:00 UTC, outside policy team-a\/hours/);
    chaos.spec.scheduler = { cron: '0 10 * * 1-5' };
    expect(checkPolicies(chaos, office, NOW)).toEqual([]);
  });

  it('reports every violation of every reachable policy at once', () => {
    const chaos = allModeChaos('x', 'team-a', { namespaces: ['team-b'] });
    chaos.spec.failKernRequest.probability = 90;
    const v = checkPolicies(
      chaos,
      [policy('team-a', 'a', { maxProbability: 50 }), policy('team-b', 'b', { maxProbability: 10, allowedFailtypes: [1] })],
      NOW,
    );
    expect(v.map((x) => `${x.policy}:${x.rule}`)).toEqual(['team-a/a:maxProbability', 'team-b/b:allowedFailtypes', 'team-b/b:maxProbability']);
  });
});

describe('schedule windows', () => {
  it('wraps past midnight, counting the night from the day it opens', () => {
    const w = { days: ['Fri' as const], start: '22:00', end: '06:00' };
    expect(inWindow(w, new Date('2026-11-27T23:00:00Z'))).toBe(true); // Fri 23:00
    expect(inWindow(w, new Date('2026-11-28T03:00:00Z'))).toBe(true); // Sat 03:00
    expect(inWindow(w, new Date('2026-11-28T07:00:00Z'))).toBe(false);
    expect(inWindow(w, new Date('2026-11-26T23:00:00Z'))).toBe(false); // Thu 23:00
  });

  it('end is exclusive', () => {
    const w = { start: '09:00', end: '17:00' };
    expect(inWindow(w, new Date('2026-11-25T16:59:00Z'))).toBe(true);
    expect(inWindow(w, new Date('2026-11-25T17:00:00Z'))).toBe(false);
  });
});
