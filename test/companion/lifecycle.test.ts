import { beforeEach, describe, expect, it } from 'vitest';
import type { Resolution } from '../../src/companion/cgroup-resolver.js';
import { Companion, type InjectionChange } from '../../src/companion/lifecycle.js';
import { allotmentsConfigMap } from '../../src/kube/reports.js';
import { FakeClock, FakeEngine, FakeStore, MemorySink, chaosObject, everyMinutes, fakeValidate, podObject, silentLog } from './fakes.js';

const hex = (n: number): string => n.toString(16).padStart(64, '0');
const T0 = new Date('2026-01-01T10:00:30Z');

let store: FakeStore;
let engine: FakeEngine;
let clock: FakeClock;
let sink: MemorySink;
let cgroups: Map<string, bigint>;
let companion: Companion;
let changes: InjectionChange[];

function build(): Companion {
  const resolver = {
    resolve: async ({ ref }: { ref: { id: string } }): Promise<Resolution> => {
      const id = cgroups.get(ref.id);
      return id === undefined
        ? { kind: 'not-found', reason: `no cgroup for ${ref.id.slice(0, 12)}`, tried: [] }
        : { kind: 'resolved', path: `/sys/fs/cgroup/fake/${ref.id}`, cgroupId: id, via: 'systemd' };
    },
  };
  const c = new Companion({ node: 'node-a', store, engine, resolver, validate: fakeValidate, parseCron: everyMinutes, sink, log: silentLog, clock });
  c.on('change', (ch) => changes.push(ch));
  return c;
}

/** Lets debounced store events run their reconcile. */
async function settle(): Promise<void> {
  clock.advanceTo(new Date(clock.now().getTime() + 50));
  await companion.whenIdle();
}

async function advanceTo(iso: string): Promise<void> {
  clock.advanceTo(new Date(iso));
  await companion.whenIdle();
}

beforeEach(() => {
  store = new FakeStore();
  engine = new FakeEngine();
  clock = new FakeClock(T0.getTime());
  sink = new MemorySink();
  cgroups = new Map([[hex(1), 101n], [hex(2), 102n], [hex(3), 103n], [hex(4), 104n]]);
  changes = [];
  companion = build();
});

describe('Companion lifecycle', () => {
  it('arms one program for a targeted running container and records it Injected, with Events', async () => {
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    expect(engine.live()).toHaveLength(1);
    expect(engine.live()[0]?.targets).toEqual([101n]);
    expect(engine.live()[0]?.request.callchain[0]?.funcname).toBe('__x64_sys_mount');
    const records = sink.written.get('chaos/exp');
    expect(records).toEqual([expect.objectContaining({ id: 'app/web/app', phase: 'Injected', injectedCount: 1, recoveredCount: 0, node: 'node-a' })]);
    expect(sink.events.map((e) => `${e.involved.kind}:${e.reason}`)).toEqual(['Pod:FaultInjected', 'KernelChaos:FaultInjected']);
    expect(companion.injections()[0]).toMatchObject({ containers: ['app/web/app'], cgroupIds: [101n] });
    expect(changes.map((c) => c.kind)).toEqual(['armed']);
  });

  it('ignores pods on other nodes and pods without the target label', async () => {
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('elsewhere', { node: 'node-b', experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    store.put('Pod', podObject('unlabelled', { targeted: false, experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(2) }] }));
    await companion.start();
    expect(engine.arms).toHaveLength(0);
  });

  it('detaches when the duration ends, waking exactly at the boundary', async () => {
    store.put('KernelChaos', chaosObject('exp', { spec: { duration: '2m' } }));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    expect(engine.live()).toHaveLength(1);
    expect(companion.nextWakeAt()).toEqual(new Date('2026-01-01T10:02:00Z'));
    await advanceTo('2026-01-01T10:01:59.999Z');
    expect(engine.live()).toHaveLength(1);
    await advanceTo('2026-01-01T10:02:00Z');
    expect(engine.live()).toHaveLength(0);
    expect(sink.written.get('chaos/exp')?.[0]).toMatchObject({ phase: 'Not Injected', injectedCount: 1, recoveredCount: 1 });
    expect(sink.written.get('chaos/exp')?.[0]?.reason).toMatch(/finished/);
    expect(companion.nextWakeAt()).toBeNull();
  });

  it('follows a cron schedule: arms at each fire, disarms after the duration, no wake-ups in between', async () => {
    store.put('KernelChaos', chaosObject('exp', { spec: { duration: '2m', scheduler: { cron: '@every 10m' } } }));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    expect(engine.live()).toHaveLength(1); // 10:00 fire, open until 10:02
    await advanceTo('2026-01-01T10:02:00Z');
    expect(engine.live()).toHaveLength(0);
    expect(clock.pending()).toEqual([new Date('2026-01-01T10:10:00Z').getTime()]);
    await advanceTo('2026-01-01T10:10:00Z');
    expect(engine.live()).toHaveLength(1);
    expect(engine.arms).toHaveLength(2);
    await advanceTo('2026-01-01T10:12:00Z');
    expect(engine.live()).toHaveLength(0);
    expect(sink.written.get('chaos/exp')?.[0]).toMatchObject({ injectedCount: 2, recoveredCount: 2 });
  });

  it('re-arms when the spec changes, and disarms when the KernelChaos is deleted', async () => {
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    const first = engine.live()[0];
    store.put('KernelChaos', chaosObject('exp', { generation: 2, spec: { failKernRequest: { failtype: 1 } } }));
    await settle();
    expect(first?.disarmed).toBe(true);
    expect(engine.live()).toHaveLength(1);
    expect(engine.live()[0]?.request.failtype).toBe(1);
    store.remove('KernelChaos', 'chaos', 'exp');
    await settle();
    expect(engine.live()).toHaveLength(0);
    expect(changes.at(-1)).toMatchObject({ kind: 'disarmed' });
  });

  it('pauses and resumes with the annotation', async () => {
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    store.put('KernelChaos', chaosObject('exp', { annotations: { 'experiment.chaos-mesh.org/pause': 'true' } }));
    await settle();
    expect(engine.live()).toHaveLength(0);
    expect(sink.written.get('chaos/exp')?.[0]?.reason).toMatch(/paused/);
    store.put('KernelChaos', chaosObject('exp', { annotations: { 'experiment.chaos-mesh.org/pause': 'false' } }));
    await settle();
    expect(engine.live()).toHaveLength(1);
  });

  it('disarms when the pod goes or stops being targeted', async () => {
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    store.put('Pod', podObject('web', { targeted: false, experiments: [], containers: [{ name: 'app', id: hex(1) }] }));
    await settle();
    expect(engine.live()).toHaveLength(0);
    expect(sink.written.get('chaos/exp')?.[0]).toMatchObject({ phase: 'Not Injected', reason: 'the pod is gone or no longer targeted' });
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await settle();
    expect(engine.live()).toHaveLength(1);
    store.remove('Pod', 'app', 'web');
    await settle();
    expect(engine.live()).toHaveLength(0);
  });

  it('follows a restarted container to its new cgroup without re-arming', async () => {
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(2) }] }));
    await settle();
    expect(engine.arms).toHaveLength(1);
    expect(engine.live()[0]?.targets).toEqual([102n]);
    expect(sink.written.get('chaos/exp')?.[0]).toMatchObject({ phase: 'Injected', injectedCount: 2, recoveredCount: 1 });
    expect(sink.events.some((e) => e.reason === 'FaultReattached')).toBe(true);
  });

  it('one experiment on many containers shares a program; several experiments on one container each get one', async () => {
    store.put('KernelChaos', chaosObject('a'));
    store.put('KernelChaos', chaosObject('b', { spec: { failKernRequest: { failtype: 2 } } }));
    store.put('Pod', podObject('web', { experiments: ['chaos/a', 'chaos/b'], containers: [{ name: 'app', id: hex(1) }, { name: 'side', id: hex(2) }] }));
    store.put('Pod', podObject('db', { experiments: ['chaos/a'], containers: [{ name: 'pg', id: hex(3) }] }));
    await companion.start();
    const live = engine.live();
    expect(live).toHaveLength(2);
    const byType = new Map(live.map((f) => [f.request.failtype, f.targets]));
    expect(byType.get(0)).toEqual([101n, 102n, 103n]);
    expect(byType.get(2)).toEqual([101n, 102n]);
    store.remove('Pod', 'app', 'db');
    await settle();
    expect(engine.arms).toHaveLength(2);
    expect(engine.live().find((f) => f.request.failtype === 0)?.targets).toEqual([101n, 102n]);
    expect(sink.written.get('chaos/a')?.map((r) => `${r.id}:${r.phase}`)).toEqual(['app/db/pg:Not Injected', 'app/web/app:Injected', 'app/web/side:Injected']);
  });

  it('containerNames narrows to the named containers', async () => {
    store.put('KernelChaos', chaosObject('exp', { spec: { containerNames: ['side'] } }));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }, { name: 'side', id: hex(2) }] }));
    await companion.start();
    expect(engine.live()[0]?.targets).toEqual([102n]);
    expect(sink.written.get('chaos/exp')?.map((r) => r.id)).toEqual(['app/web/side']);
  });

  it('waits for a container that is not running yet, then attaches when it starts', async () => {
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', running: false }] }));
    await companion.start();
    expect(engine.arms).toHaveLength(0);
    expect(sink.written.get('chaos/exp')?.[0]).toMatchObject({ phase: 'Not Injected', reason: 'container not running: ContainerCreating' });
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await settle();
    expect(engine.live()).toHaveLength(1);
  });

  it('an arm failure becomes a Failed record with the reason, nothing attached, then a backed-off retry', async () => {
    engine.failNext.push('the verifier rejected the program: R1 invalid mem access');
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    expect(engine.live()).toHaveLength(0);
    const rec = sink.written.get('chaos/exp')?.[0];
    expect(rec).toMatchObject({ phase: 'Failed' });
    expect(rec?.reason).toContain('R1 invalid mem access');
    expect(sink.events.filter((e) => e.type === 'Warning').map((e) => e.reason)).toContain('FaultFailed');
    expect(changes.map((c) => c.kind)).toEqual(['failed']);
    // No busy retry: the next wake is the 5 s backoff.
    expect(companion.nextWakeAt()).toEqual(new Date(T0.getTime() + 5000));
    await advanceTo(new Date(T0.getTime() + 5000).toISOString());
    expect(engine.live()).toHaveLength(1);
    expect(sink.written.get('chaos/exp')?.[0]).toMatchObject({ phase: 'Injected' });
  });

  it('an invalid experiment is reported Failed with the field, never armed', async () => {
    store.put('KernelChaos', chaosObject('bad', { spec: { failKernRequest: { failtype: 7 } } }));
    store.put('Pod', podObject('web', { experiments: ['chaos/bad'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    expect(engine.arms).toHaveLength(0);
    expect(sink.written.get('chaos/bad')?.[0]?.reason).toContain('spec.failKernRequest.failtype');
  });

  it('a cgroup that is not there yet is retried with backoff', async () => {
    cgroups.delete(hex(4));
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(4) }] }));
    await companion.start();
    expect(engine.arms).toHaveLength(0);
    expect(sink.written.get('chaos/exp')?.[0]).toMatchObject({ phase: 'Failed' });
    cgroups.set(hex(4), 104n);
    await advanceTo(new Date(T0.getTime() + 1000).toISOString());
    expect(engine.live()[0]?.targets).toEqual([104n]);
  });

  it('on stop detaches everything and records why', async () => {
    store.put('KernelChaos', chaosObject('a'));
    store.put('KernelChaos', chaosObject('b'));
    store.put('Pod', podObject('web', { experiments: ['chaos/a', 'chaos/b'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    expect(engine.live()).toHaveLength(2);
    await companion.stop('companion received SIGTERM');
    expect(engine.live()).toHaveLength(0);
    expect(sink.written.get('chaos/a')?.[0]).toMatchObject({ phase: 'Not Injected', reason: 'companion received SIGTERM', recoveredCount: 1 });
    expect(clock.pending()).toEqual([]);
    // Changes after stop are ignored: nothing is armed again.
    store.put('KernelChaos', chaosObject('c'));
    await settle();
    expect(engine.live()).toHaveLength(0);
  });

  it('a program that finishes loading after stop is detached at once', async () => {
    let release: () => void = () => {};
    engine.gate = new Promise<void>((r) => (release = r));
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    const started = companion.start();
    while (engine.calls === 0) await new Promise((r) => setImmediate(r));
    const stopped = companion.stop('SIGTERM');
    release();
    await started;
    await stopped;
    expect(engine.arms).toHaveLength(1);
    expect(engine.live()).toHaveLength(0);
  });

  it('counters flow into records and the watch stream only while something is armed', async () => {
    store.put('KernelChaos', chaosObject('exp'));
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    const fault = engine.live()[0];
    if (!fault) throw new Error('not armed');
    fault.faults = 7n;
    fault.calls = 9n;
    await advanceTo(new Date(T0.getTime() + 5000).toISOString());
    expect(sink.written.get('chaos/exp')?.[0]?.faultsInjected).toBe(7);
    expect(changes.at(-1)).toMatchObject({ kind: 'counters', injection: { faults: 7n, calls: 9n } });
    store.remove('KernelChaos', 'chaos', 'exp');
    await settle();
    expect(clock.pending()).toEqual([]);
  });

  it('a restarted companion seeds counts from the status it wrote before', async () => {
    const chaos = chaosObject('exp');
    chaos.status = { experiment: { containerRecords: [{ id: 'app/web/app', selectorKey: '.', phase: 'Injected', injectedCount: 3, recoveredCount: 2, faultsInjected: 40, node: 'node-a' }] } };
    store.put('KernelChaos', chaos);
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    await companion.start();
    expect(sink.written.get('chaos/exp')?.[0]).toMatchObject({ injectedCount: 4, recoveredCount: 2, faultsInjected: 40 });
  });

  it('times: arms under the allotment the controller wrote for this node, re-arms when it changes, and says which budget in records and reports', async () => {
    const chaos = chaosObject('exp', { spec: { failKernRequest: { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }], times: 5 } } });
    store.put('KernelChaos', chaos);
    // Two nodes hold targets: without an allotment the even share (3 of 5 for node-a), said as such.
    store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
    store.put('Pod', podObject('db', { node: 'node-b', experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(2) }] }));
    await companion.start();
    expect(engine.live()[0]?.options.claimed).toBe(2);
    expect(sink.budgets.get('chaos/exp')).toEqual({ allotment: 3, source: 'even-share' });
    expect(JSON.stringify(sink.written.get('chaos/exp'))).toMatch(/times budget 3 of 5 \(even share over the nodes with targets: no allotment from the controller yet\)/);

    // The controller's allotment arrives: re-armed under it, the report echoes its version.
    const allot = (allotment: number, version: number) =>
      store.put('ConfigMap', allotmentsConfigMap('kernelchaos-system', { node: 'node-a', allotments: { 'uid-exp': { allotment, version, ceiling: allotment } } }));
    allot(1, 1);
    // Another node's entry in the same namespace is not this node's.
    store.put('ConfigMap', allotmentsConfigMap('kernelchaos-system', { node: 'node-b', allotments: { 'uid-exp': { allotment: 4, version: 1, ceiling: 4 } } }));
    await settle();
    expect(engine.arms).toHaveLength(2);
    expect(engine.live()).toHaveLength(1);
    expect(engine.live()[0]?.options.claimed).toBe(4);
    expect(sink.budgets.get('chaos/exp')).toEqual({ allotment: 1, source: 'allotment', version: 1 });
    expect(JSON.stringify(sink.written.get('chaos/exp'))).toMatch(/times budget 1 of 5 \(allotted by the controller\)/);

    // A new version with the same allotment changes nothing armed; the echo follows it.
    allot(1, 2);
    await settle();
    expect(engine.arms).toHaveLength(2);
    expect(sink.budgets.get('chaos/exp')).toEqual({ allotment: 1, source: 'allotment', version: 2 });

    // The program used 1 fault, then the allotment grows to 3: re-armed with what remains (2).
    (engine.live()[0] as { faults: bigint }).faults = 1n;
    allot(3, 3);
    await settle();
    expect(engine.arms).toHaveLength(3);
    expect(engine.live()[0]?.options.claimed).toBe(5 - 2);
  });
});
