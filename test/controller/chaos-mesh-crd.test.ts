// The controller beside Chaos Mesh, on Chaos Mesh's real KernelChaos CRD (its Helm chart's, kept as a
// fixture) served by the fake apiserver with that CRD's own subresources and pruning schema: the
// profile is read at start-up, status is written with the object, what the schema prunes is never
// rewritten, and the ownership marker keeps every object to one controller.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHAOS_MESH_FINALIZER, CHAOS_MESH_OWNER, MANAGED_BY_ANNOTATION, TARGET_LABEL, experimentLabelKey } from '../../src/api/labels.js';
import type { Controller } from '../../src/controller/controller.js';
import { ScheduleRunner } from '../../src/controller/schedule-runner.js';
import { silentLog } from '../../src/kube/log.js';
import { reportConfigMap } from '../../src/kube/reports.js';
import { FakeApiServer } from '../fakes/apiserver.js';
import { crdResources, profileCrds } from '../fakes/crds.js';
import { waitFor } from '../fakes/wait.js';
import { KC, clients, experimentBody, getChaos, makeController, podBody, type Clients } from './harness.js';

const NS = 'apps';
const SYSTEM_NS = 'kernelchaos-system';
let server: FakeApiServer;
let c: Clients;
const controllers: Controller[] = [];

async function start(identity: string, opts: { leaseName?: string; namespace?: string } = {}): Promise<Controller> {
  const kubeConfig = server.kubeConfig(identity);
  // --schedules=auto with a runner: beside Chaos Mesh's Schedule CRD it must stay idle.
  const schedules = new ScheduleRunner(kubeConfig, { log: silentLog });
  const ctl = makeController(kubeConfig, { identity, namespace: opts.namespace ?? SYSTEM_NS, crdProfile: 'auto', schedules, ...(opts.leaseName ? { leaseName: opts.leaseName } : {}) });
  controllers.push(ctl);
  await ctl.start();
  return ctl;
}

beforeEach(async () => {
  const crds = profileCrds('chaos-mesh');
  server = await new FakeApiServer({ resources: crdResources(crds) }).start();
  for (const crd of crds) server.create(crd);
  c = clients(server.kubeConfig('user'));
  await c.core.createNamespace({ body: { metadata: { name: NS, labels: { 'kernelchaos.dev/injection': 'enabled' } } } });
  await c.core.createNamespace({ body: { metadata: { name: SYSTEM_NS } } });
  await c.core.createNamespace({ body: { metadata: { name: 'other-system' } } });
  await c.core.createNamespacedPod({ namespace: NS, body: podBody('web-0', { app: 'web' }) });
});
afterEach(async () => {
  for (const ctl of controllers.splice(0)) await ctl.stop();
  await server.stop();
});

describe("controller on Chaos Mesh's CRD", () => {
  it('detects the profile, claims the object, writes status with it (value a string); what the CRD prunes is never rewritten; a duration ends', async () => {
    const ctl = await start('ctl');
    expect(ctl.profile.current).toMatchObject({ profile: 'chaos-mesh', schedules: 'chaos-mesh', workflows: true });
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: experimentBody('exp', { mode: 'fixed', value: '1', duration: '3s' }) });
    const running = await waitFor('Run', async () => {
      const e = await getChaos(c, NS, 'exp');
      return e?.status?.experiment?.desiredPhase === 'Run' ? e : undefined;
    });
    expect(running.metadata.annotations?.[MANAGED_BY_ANNOTATION]).toBe(`${SYSTEM_NS}/kernelchaos-controller`);
    expect(running.status?.conditions?.find((x) => x.type === 'Selected')?.status).toBe('True');
    expect((await c.core.listNamespacedPod({ namespace: NS, labelSelector: `${TARGET_LABEL}=true` })).items).toHaveLength(1);

    // A companion's report: Chaos Mesh's schema keeps id, phase and counts, prunes faultsInjected and node, has no summary.
    const uid = running.metadata.uid ?? '';
    const records = [{ id: `${NS}/web-0/app`, selectorKey: '.', phase: 'Injected' as const, injectedCount: 1, recoveredCount: 0, faultsInjected: 4 }];
    await c.core.createNamespacedConfigMap({ namespace: SYSTEM_NS, body: reportConfigMap(SYSTEM_NS, { node: 'n1', experiment: { namespace: NS, name: 'exp', uid }, faultsInjected: 4, records }) });
    const injected = await waitFor('AllInjected', async () => {
      const e = await getChaos(c, NS, 'exp');
      return e?.status?.conditions?.find((x) => x.type === 'AllInjected')?.status === 'True' ? e : undefined;
    });
    expect(injected.status?.experiment?.containerRecords).toEqual([{ id: `${NS}/web-0/app`, selectorKey: '.', phase: 'Injected', injectedCount: 1, recoveredCount: 0 }]);
    expect(injected.status?.experiment?.summary).toBeUndefined();
    // Every status write went to the object itself (no /status), and with the records settled none follows.
    const writes = () => server.requests.filter((r) => r.user === 'ctl' && r.method === 'PATCH' && r.path.endsWith('/kernelchaos/exp'));
    expect(server.requests.some((r) => r.path.endsWith('/kernelchaos/exp/status'))).toBe(false);
    const settled = writes().length;
    await new Promise((r) => setTimeout(r, 1_200)); // statusIntervalMs 200, resync 1 s: several passes
    expect(writes().length).toBe(settled);

    await waitFor('Stop', async () => (await getChaos(c, NS, 'exp'))?.status?.experiment?.desiredPhase === 'Stop', 8_000);
    // Chaos Mesh's schedule controller runs Schedules here: ours never even listed them.
    expect(server.requests.filter((r) => r.path.includes('/apis/chaos-mesh.org/v1alpha1/schedules')).map((r) => r.path)).toEqual([]);
    expect((await c.core.listNamespacedPod({ namespace: NS, labelSelector: `${TARGET_LABEL}=true` })).items).toHaveLength(0);
  });

  it('the ownership marker keeps a second controller off: objects marked for another kernelchaos instance or for Chaos Mesh, or carrying Chaos Mesh\'s finalizer, are left alone', async () => {
    await start('ctl-a');
    const b = await start('ctl-b', { namespace: 'other-system' });
    expect(b.owner).toBe('other-system/kernelchaos-controller');
    const body = (name: string, annotations: Record<string, string>, finalizers: string[] = []) => {
      const e = experimentBody(name, { mode: 'all', selector: { labelSelectors: { app: 'web' } } });
      return { ...e, metadata: { ...e.metadata, annotations, finalizers } };
    };
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: body('unclaimed', {}) });
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: body('for-b', { [MANAGED_BY_ANNOTATION]: b.owner }) });
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: body('for-chaos-mesh', { [MANAGED_BY_ANNOTATION]: CHAOS_MESH_OWNER }) });
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: body('chaos-mesh-ran-it', {}, [CHAOS_MESH_FINALIZER]) });

    // Exactly one controller claims the unmarked object; each runs what it owns and labels the pod for it.
    const claimed = await waitFor('claimed and running', async () => {
      const e = await getChaos(c, NS, 'unclaimed');
      return e?.status?.experiment?.desiredPhase === 'Run' ? e : undefined;
    });
    const winner = claimed.metadata.annotations?.[MANAGED_BY_ANNOTATION];
    expect([`${SYSTEM_NS}/kernelchaos-controller`, b.owner]).toContain(winner);
    await waitFor('for-b running', async () => (await getChaos(c, NS, 'for-b'))?.status?.experiment?.desiredPhase === 'Run');
    const pod = await waitFor('both labels', async () => {
      const p = await c.core.readNamespacedPod({ namespace: NS, name: 'web-0' });
      const labels = p.metadata?.labels ?? {};
      return labels[experimentLabelKey(NS, 'unclaimed')] && labels[experimentLabelKey(NS, 'for-b')] ? p : undefined;
    });
    // Neither removes the other's label (a few resyncs later, still both) and neither touches Chaos Mesh's objects.
    await new Promise((r) => setTimeout(r, 1_200));
    const later = await c.core.readNamespacedPod({ namespace: NS, name: 'web-0' });
    expect(later.metadata?.labels).toEqual(pod.metadata?.labels);
    expect(Object.keys(later.metadata?.labels ?? {}).filter((k) => k.startsWith('kernelchaos.dev/exp-'))).toHaveLength(2);
    for (const name of ['for-chaos-mesh', 'chaos-mesh-ran-it']) {
      const e = await getChaos(c, NS, name);
      expect(e?.status, name).toBeUndefined();
      expect(e?.metadata.finalizers ?? [], name).not.toContain('kernelchaos.dev/pod-labels');
      expect(server.requests.filter((r) => r.method !== 'GET' && r.path.endsWith(`/kernelchaos/${name}`) && r.user !== 'user'), name).toEqual([]);
    }
    // for-b was written by ctl-b only; the unclaimed one by its winner only.
    const writers = (name: string) => new Set(server.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/kernelchaos/${name}`)).map((r) => r.user));
    expect(writers('for-b')).toEqual(new Set(['ctl-b']));
    const winnerIdentity = winner === b.owner ? 'ctl-b' : 'ctl-a';
    const claimAttempts = server.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/kernelchaos/unclaimed') && r.status === 200 && r.user !== winnerIdentity);
    expect(claimAttempts).toEqual([]);
  });
});
