// The label and status lifecycle through @kubernetes/client-node against the fake apiserver:
// what a user sees after `kubectl apply` and `kubectl delete` of a KernelChaos.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { EXPERIMENTS_ANNOTATION, FINALIZER, TARGET_LABEL, experimentLabelKey } from '../../src/api/labels.js';
import type { Controller } from '../../src/controller/controller.js';
import { REPORT_SELECTOR, reportConfigMap } from '../../src/kube/reports.js';
import { FakeApiServer } from '../fakes/apiserver.js';
import { waitFor } from '../fakes/wait.js';
import { KC, clients, experimentBody, getChaos, makeController, podBody, type Clients } from './harness.js';

const NS = 'chaos-mount';
const SYSTEM_NS = 'kernelchaos-system';
const EXP_LABEL = experimentLabelKey(NS, 'exp');

let server: FakeApiServer;
let kc: KubeConfig;
let c: Clients;
const controllers: Controller[] = [];

async function startController(identity: string, token = identity, now?: () => Date): Promise<Controller> {
  const ctl = makeController(server.kubeConfig(token), { identity, namespace: SYSTEM_NS, ...(now ? { now } : {}) });
  controllers.push(ctl);
  await ctl.start();
  return ctl;
}

async function labelsOf(name: string): Promise<Record<string, string>> {
  return (await c.core.readNamespacedPod({ namespace: NS, name })).metadata?.labels ?? {};
}

beforeEach(async () => {
  server = await new FakeApiServer().start();
  kc = server.kubeConfig('user');
  c = clients(kc);
  await c.core.createNamespace({ body: { metadata: { name: NS, labels: { 'kernelchaos.dev/injection': 'enabled' } } } });
  await c.core.createNamespace({ body: { metadata: { name: 'closed' } } });
  await c.core.createNamespace({ body: { metadata: { name: SYSTEM_NS } } });
  for (const name of ['web-0', 'web-1', 'web-2']) await c.core.createNamespacedPod({ namespace: NS, body: podBody(name, { app: 'web' }) });
  await c.core.createNamespacedPod({ namespace: NS, body: podBody('db-0', { app: 'db' }) });
  await c.core.createNamespacedPod({ namespace: 'closed', body: podBody('web-x', { app: 'web' }) });
});

afterEach(async () => {
  for (const ctl of controllers.splice(0)) await ctl.stop();
  await server.stop();
});

describe('controller lifecycle against the Kubernetes API', () => {
  it('labels the targeted running pods, adds the finalizer, writes status and an Event; delete removes every label and releases the finalizer', async () => {
    await startController('ctl-a');
    await c.custom.createNamespacedCustomObject({
      ...KC,
      namespace: NS,
      body: experimentBody('exp', { mode: 'all', selector: { namespaces: [NS, 'closed'], labelSelectors: { app: 'web' } } }),
    });
    await waitFor('three pods labelled', async () => {
      const all = await c.core.listNamespacedPod({ namespace: NS, labelSelector: `${TARGET_LABEL}=true` });
      return all.items.length === 3;
    });
    expect(await labelsOf('web-0')).toEqual({ app: 'web', [TARGET_LABEL]: 'true', [EXP_LABEL]: 'true' });
    expect((await c.core.readNamespacedPod({ namespace: NS, name: 'web-1' })).metadata?.annotations?.[EXPERIMENTS_ANNOTATION]).toBe(`${NS}/exp`);
    expect(await labelsOf('db-0')).toEqual({ app: 'db' });
    // Not opted in: matched by the selector, never touched.
    expect((await c.core.readNamespacedPod({ namespace: 'closed', name: 'web-x' })).metadata?.labels).toEqual({ app: 'web' });

    const exp = await waitFor('status written', async () => {
      const e = await getChaos(c, NS, 'exp');
      return e?.status?.experiment?.desiredPhase ? e : undefined;
    });
    expect(exp.metadata.finalizers).toEqual([FINALIZER]);
    expect(exp.status?.conditions).toEqual([
      { type: 'Selected', status: 'True', reason: 'PodsSelected' },
      { type: 'AllInjected', status: 'False', reason: 'Waiting' },
      { type: 'AllRecovered', status: 'False', reason: 'NoRecords' },
      { type: 'Paused', status: 'False', reason: 'NotPaused' },
    ]);
    expect(exp.status?.experiment?.desiredPhase).toBe('Run');
    const events = await waitFor('Selected event', async () => {
      const list = await c.core.listNamespacedEvent({ namespace: NS });
      const found = list.items.filter((e) => e.reason === 'Selected');
      return found.length > 0 ? found : undefined;
    });
    expect(events).toHaveLength(1);
    expect(events[0]?.involvedObject.kind).toBe('KernelChaos');
    expect(events[0]?.involvedObject.uid).toBe(exp.metadata.uid);
    expect(events[0]?.message).toMatch(/^Selected 3 pod\(s\): chaos-mount\/web-0, chaos-mount\/web-1, chaos-mount\/web-2; 1 matching pod\(s\) not eligible/);

    // A pod created later that matches is labelled too.
    await c.core.createNamespacedPod({ namespace: NS, body: podBody('web-3', { app: 'web' }) });
    await waitFor('late pod labelled', async () => (await labelsOf('web-3'))[EXP_LABEL] === 'true');

    await c.custom.deleteNamespacedCustomObject({ ...KC, namespace: NS, name: 'exp' });
    await waitFor('experiment gone', async () => (await getChaos(c, NS, 'exp')) === undefined);
    for (const name of ['web-0', 'web-1', 'web-2', 'web-3']) {
      const p = await c.core.readNamespacedPod({ namespace: NS, name });
      expect(p.metadata?.labels).toEqual({ app: 'web' });
      expect(p.metadata?.annotations?.[EXPERIMENTS_ANNOTATION]).toBeUndefined();
    }
    // The finalizer was removed only after the last label patch.
    const writes = server.requests.filter((r) => r.method === 'PATCH' && r.status === 200);
    const lastPodPatch = writes.map((r) => r.path.includes('/pods/')).lastIndexOf(true);
    const finalizerRelease = writes.findIndex((r, i) => i > lastPodPatch && r.path.endsWith('/kernelchaos/exp'));
    expect(finalizerRelease).toBeGreaterThan(lastPodPatch);
  });

  it('retries a label patch that conflicts with a concurrent writer, keeping the other writer’s label', async () => {
    let interfered = false;
    server.hook((req, s) => {
      if (!interfered && req.method === 'PATCH' && req.resource.plural === 'pods' && req.name === 'web-1') {
        interfered = true;
        // Another client changes the pod between the controller's read and its write.
        s.mutate('v1', 'Pod', NS, 'web-1', (o) => {
          o.metadata.labels = { ...o.metadata.labels, 'team.example.com/owner': 'payments' };
        });
      }
    });
    await startController('ctl-a');
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: experimentBody('exp', { mode: 'all', selector: { labelSelectors: { app: 'web' } } }) });
    await waitFor('web-1 labelled', async () => (await labelsOf('web-1'))[EXP_LABEL] === 'true');
    expect(await labelsOf('web-1')).toEqual({ app: 'web', 'team.example.com/owner': 'payments', [TARGET_LABEL]: 'true', [EXP_LABEL]: 'true' });
    expect(server.requests.some((r) => r.method === 'PATCH' && r.path.endsWith('/pods/web-1') && r.status === 409)).toBe(true);
  });

  it('recovers from a watch that expired (410 Gone) and labels pods created while it was away', async () => {
    await startController('ctl-a');
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: experimentBody('exp', { mode: 'all', selector: { labelSelectors: { app: 'web' } } }) });
    await waitFor('web-0 labelled', async () => (await labelsOf('web-0'))[EXP_LABEL] === 'true');
    let refuse = true;
    const unhook = server.hook((req) => (refuse && req.watch && req.resource.plural === 'pods' ? { status: 503, body: { kind: 'Status', code: 503 } } : undefined));
    server.closeWatches();
    await waitFor('pod watch refused', () => server.requests.some((r) => r.status === 503));
    await c.core.createNamespacedPod({ namespace: NS, body: podBody('web-late', { app: 'web' }) });
    server.compact();
    refuse = false;
    await waitFor('pod created during the outage labelled', async () => (await labelsOf('web-late'))[EXP_LABEL] === 'true');
    unhook();
    expect(server.requests.some((r) => (r.body as { watch?: string } | undefined)?.watch === 'expired')).toBe(true);
  });

  it('with two controllers only the lease holder writes; when it stops, the other takes over', async () => {
    const a = await startController('ctl-a');
    const b = await startController('ctl-b');
    const leader = await waitFor('a leader', () => (a.isLeader ? a : b.isLeader ? b : undefined));
    const standby = leader === a ? b : a;
    const leaderToken = leader === a ? 'ctl-a' : 'ctl-b';
    const standbyToken = leader === a ? 'ctl-b' : 'ctl-a';
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: experimentBody('exp', { mode: 'all', selector: { labelSelectors: { app: 'web' } } }) });
    await waitFor('labels by the leader', async () => (await labelsOf('web-2'))[EXP_LABEL] === 'true');
    await waitFor('status by the leader', async () => (await getChaos(c, NS, 'exp'))?.status?.experiment?.desiredPhase === 'Run');
    const isWrite = (r: { method: string; path: string }) => r.method !== 'GET' && !r.path.includes('/leases');
    expect(server.requests.filter((r) => r.user === standbyToken && isWrite(r))).toEqual([]);
    expect(server.requests.filter((r) => r.user === leaderToken && isWrite(r)).length).toBeGreaterThan(0);
    expect(standby.isLeader).toBe(false);
    const lease = server.get<{ spec: { holderIdentity: string } }>('coordination.k8s.io/v1', 'Lease', SYSTEM_NS, 'kernelchaos-controller');
    expect(lease?.spec.holderIdentity).toBe(leaderToken);

    await leader.stop();
    await waitFor('standby took over', () => standby.isLeader);
    await c.core.createNamespacedPod({ namespace: NS, body: podBody('web-new', { app: 'web' }) });
    await waitFor('labelled by the new leader', async () => (await labelsOf('web-new'))[EXP_LABEL] === 'true');
    expect(server.requests.some((r) => r.user === standbyToken && r.method === 'PATCH' && r.path.endsWith('/pods/web-new'))).toBe(true);
  });

  it('a leader cut off from the API steps down; the standby takes over once the lease expires', async () => {
    const a = await startController('ctl-a');
    const b = await startController('ctl-b');
    const leader = await waitFor('a leader', () => (a.isLeader ? a : b.isLeader ? b : undefined));
    const standby = leader === a ? b : a;
    const leaderToken = leader === a ? 'ctl-a' : 'ctl-b';
    const standbyToken = leader === a ? 'ctl-b' : 'ctl-a';
    // The leader's lease renewals fail from now on (a network partition, not a clean stop: no release).
    server.hook((req) => (req.resource.plural === 'leases' && req.user === leaderToken ? { status: 503, body: { kind: 'Status', code: 503 } } : undefined));
    await waitFor('old leader stepped down', () => !leader.isLeader);
    await waitFor('standby took over', () => standby.isLeader);
    const lease = server.get<{ spec: { holderIdentity: string; leaseTransitions: number } }>('coordination.k8s.io/v1', 'Lease', SYSTEM_NS, 'kernelchaos-controller');
    expect(lease?.spec.holderIdentity).toBe(standbyToken);
    expect(lease?.spec.leaseTransitions).toBeGreaterThanOrEqual(1);
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: experimentBody('exp', { mode: 'all', selector: { labelSelectors: { app: 'db' } } }) });
    await waitFor('labelled by the new leader', async () => (await labelsOf('db-0'))[EXP_LABEL] === 'true');
    const podWrites = server.requests.filter((r) => r.method === 'PATCH' && r.path.includes('/pods/'));
    expect(podWrites.every((r) => r.user === standbyToken)).toBe(true);
  });

  it('removes the labels when the duration ends and aggregates the companions’ records into conditions', async () => {
    let offsetMs = 0;
    const ctl = await startController('ctl-a', 'ctl-a', () => new Date(Date.now() + offsetMs));
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: experimentBody('exp', { mode: 'fixed', value: '2', duration: '10m', selector: { labelSelectors: { app: 'web' } } }) });
    const targeted = await waitFor('two pods labelled', async () => {
      const list = await c.core.listNamespacedPod({ namespace: NS, labelSelector: EXP_LABEL });
      return list.items.length === 2 ? list.items.map((p) => p.metadata?.name ?? '') : undefined;
    });
    // The companions of two nodes report their targeted container injected, each in its own report object.
    const uid = (await getChaos(c, NS, 'exp'))?.metadata.uid ?? '';
    for (const [i, name] of targeted.entries()) {
      const node = `n${i + 1}`;
      const records = [{ id: `${NS}/${name}/app`, selectorKey: '.', phase: 'Injected' as const, injectedCount: 1, recoveredCount: 0, faultsInjected: 5 + i }];
      await c.core.createNamespacedConfigMap({ namespace: SYSTEM_NS, body: reportConfigMap(SYSTEM_NS, { node, experiment: { namespace: NS, name: 'exp', uid }, faultsInjected: 5 + i, records }) });
    }
    await waitFor('AllInjected', async () => (await getChaos(c, NS, 'exp'))?.status?.conditions?.find((x) => x.type === 'AllInjected')?.status === 'True');
    const withRecords = await waitFor('summary', async () => {
      const e = await getChaos(c, NS, 'exp');
      return e?.status?.experiment?.summary?.faultsInjected === 11 ? e : undefined;
    });
    expect(withRecords.status?.experiment?.containerRecords?.map((r) => r.node)).toEqual(['n1', 'n2']);
    expect(withRecords.status?.experiment?.summary).toMatchObject({ nodes: 2, containers: 2, injected: 2 });

    offsetMs = 11 * 60_000;
    ctl.trigger();
    await waitFor('labels removed at the end', async () => (await c.core.listNamespacedPod({ namespace: NS, labelSelector: TARGET_LABEL })).items.length === 0);
    const ended = await waitFor('Stop', async () => {
      const e = await getChaos(c, NS, 'exp');
      return e?.status?.experiment?.desiredPhase === 'Stop' ? e : undefined;
    });
    expect(ended.status?.conditions?.find((x) => x.type === 'Selected')).toEqual({ type: 'Selected', status: 'False', reason: 'DurationEnded' });
    // The reports still count after the end (the companions keep them until the experiment is gone).
    expect(ended.status?.experiment?.containerRecords).toHaveLength(2);
    expect(ended.metadata.finalizers).toEqual([FINALIZER]);
    // Only the controller wrote the status.
    const statusWriters = new Set(server.requests.filter((r) => r.method !== 'GET' && r.path.endsWith('/kernelchaos/exp/status')).map((r) => r.user));
    expect(statusWriters).toEqual(new Set(['ctl-a']));
    // Deleting the experiment removes its reports.
    await c.custom.deleteNamespacedCustomObject({ ...KC, namespace: NS, name: 'exp' });
    await waitFor('reports deleted', async () => (await c.core.listNamespacedConfigMap({ namespace: SYSTEM_NS, labelSelector: REPORT_SELECTOR })).items.length === 0);
  });
});

describe('leader fencing', () => {
  it('a leader whose Lease reads hang stops acting by its renew deadline: one leader at every moment', async () => {
    const a = await startController('ctl-a');
    const b = await startController('ctl-b');
    const leader = await waitFor('a leader', () => (a.isLeader ? a : b.isLeader ? b : undefined));
    const standby = leader === a ? b : a;
    const leaderToken = leader === a ? 'ctl-a' : 'ctl-b';
    const standbyToken = leader === a ? 'ctl-b' : 'ctl-a';
    let both = 0;
    let samples = 0;
    const sampler = setInterval(() => {
      samples += 1;
      if (a.isLeader && b.isLeader) both += 1;
    }, 2);
    // From now on the leader's Lease reads never answer (a hung apiserver connection, not an error).
    server.hook((req) => (req.resource.plural === 'leases' && req.user === leaderToken ? new Promise<undefined>(() => {}) : undefined));
    const hungAt = server.requests.length;
    await waitFor('old leader fenced', () => !leader.isLeader);
    await waitFor('standby took over', () => standby.isLeader);
    // The new leader acts; the old one writes nothing once the new one holds the lease.
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: experimentBody('exp', { mode: 'all', selector: { labelSelectors: { app: 'db' } } }) });
    await waitFor('labelled by the new leader', async () => (await labelsOf('db-0'))[EXP_LABEL] === 'true');
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(sampler);
    expect(samples).toBeGreaterThan(100);
    expect(both).toBe(0);
    const after = server.requests.slice(hungAt);
    expect(after.filter((r) => r.user === leaderToken && r.method !== 'GET' && !r.path.includes('/leases'))).toEqual([]);
    expect(after.some((r) => r.user === standbyToken && r.method === 'PATCH' && r.path.endsWith('/pods/db-0'))).toBe(true);
    expect(leader.isLeader).toBe(false);
  });

  it('a duration alone (Chaos Mesh 2.x) ends on its own clock: labels off, desiredPhase Stop; a restarted controller keeps it so', async () => {
    const first = await startController('ctl-a');
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: experimentBody('exp', { mode: 'all', duration: '2s', selector: { labelSelectors: { app: 'web' } } }) });
    await waitFor('Run', async () => (await getChaos(c, NS, 'exp'))?.status?.experiment?.desiredPhase === 'Run');
    expect((await c.core.listNamespacedPod({ namespace: NS, labelSelector: EXP_LABEL })).items).toHaveLength(3);
    // No trigger: the controller wakes at creationTimestamp + duration by itself.
    const ended = await waitFor('Stop', async () => {
      const e = await getChaos(c, NS, 'exp');
      return e?.status?.experiment?.desiredPhase === 'Stop' ? e : undefined;
    }, 6_000);
    const created = Date.parse(ended.metadata.creationTimestamp ?? '');
    expect(Date.now() - created).toBeGreaterThanOrEqual(2_000);
    expect((await c.core.listNamespacedPod({ namespace: NS, labelSelector: TARGET_LABEL })).items).toEqual([]);
    await first.stop();
    const rv = ended.metadata.resourceVersion;
    const second = await startController('ctl-b');
    second.trigger();
    await new Promise((r) => setTimeout(r, 500));
    const after = await getChaos(c, NS, 'exp');
    expect(after?.status?.experiment?.desiredPhase).toBe('Stop');
    expect(after?.metadata.resourceVersion).toBe(rv);
    expect((await c.core.listNamespacedPod({ namespace: NS, labelSelector: TARGET_LABEL })).items).toEqual([]);
  });
});
