// The fake apiserver keeps the API conventions the controller depends on; checked through
// @kubernetes/client-node so the fake cannot drift from what the client sends and expects.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { FakeApiServer } from './apiserver.js';

let server: FakeApiServer;
let kc: KubeConfig;
let core: CoreV1Api;
let custom: CustomObjectsApi;
const KC = { group: 'chaos-mesh.org', version: 'v1alpha1', plural: 'kernelchaos', namespace: 'apps' };

function code(error: unknown): number | undefined {
  return (error as { code?: number }).code;
}

async function failure(p: Promise<unknown>): Promise<{ code: number | undefined; message: string }> {
  try {
    await p;
  } catch (error) {
    return { code: code(error), message: String((error as { body?: unknown }).body ?? error) };
  }
  throw new Error('expected the request to fail');
}

beforeAll(async () => {
  server = await new FakeApiServer().start();
  kc = server.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: 'apps' } } });
});
afterAll(async () => {
  await server.stop();
});

describe('fake apiserver', () => {
  it('creates with uid, resourceVersion and creationTimestamp; refuses duplicates and missing namespaces', async () => {
    const pod = await core.createNamespacedPod({ namespace: 'apps', body: { metadata: { name: 'p1' }, spec: { containers: [{ name: 'c', image: 'x' }] } } });
    expect(pod.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(pod.metadata?.resourceVersion)).toBeGreaterThan(0);
    expect(pod.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect((await failure(core.createNamespacedPod({ namespace: 'apps', body: { metadata: { name: 'p1' } } }))).code).toBe(409);
    const missing = await failure(core.createNamespacedPod({ namespace: 'nowhere', body: { metadata: { name: 'p1' } } }));
    expect(missing.code).toBe(404);
    expect(missing.message).toContain('namespaces \\"nowhere\\" not found');
  });

  it('lists with a collection resourceVersion and label/field selectors', async () => {
    await core.createNamespacedPod({ namespace: 'apps', body: { metadata: { name: 'sel-a', labels: { t: 'x' } }, spec: { nodeName: 'n1', containers: [] } } });
    await core.createNamespacedPod({ namespace: 'apps', body: { metadata: { name: 'sel-b', labels: { t: 'y' } }, spec: { nodeName: 'n2', containers: [] } } });
    const byLabel = await core.listNamespacedPod({ namespace: 'apps', labelSelector: 't=x' });
    expect(byLabel.items.map((p) => p.metadata?.name)).toEqual(['sel-a']);
    expect(Number(byLabel.metadata?.resourceVersion)).toBe(server.resourceVersion);
    const byField = await core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=n2' });
    expect(byField.items.map((p) => p.metadata?.name)).toEqual(['sel-b']);
    expect((await failure(core.listPodForAllNamespaces({ fieldSelector: 'spec.priority=1' }))).code).toBe(400);
  });

  it('answers 409 Conflict to a write carrying a stale resourceVersion (update and merge patch)', async () => {
    const pod = await core.createNamespacedPod({ namespace: 'apps', body: { metadata: { name: 'occ', labels: { v: '1' } }, spec: { containers: [] } } });
    const stale = pod.metadata?.resourceVersion;
    server.mutate('v1', 'Pod', 'apps', 'occ', (o) => {
      o.metadata.labels = { v: '2' };
    });
    const put = await failure(core.replaceNamespacedPod({ namespace: 'apps', name: 'occ', body: { ...pod, metadata: { ...pod.metadata, labels: { v: '3' } } } }));
    expect(put.code).toBe(409);
    expect(put.message).toContain('the object has been modified');
    const patch = await failure(
      core.patchNamespacedPod(
        { namespace: 'apps', name: 'occ', body: { metadata: { resourceVersion: stale, labels: { v: '3' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    expect(patch.code).toBe(409);
    // A patch without a resourceVersion applies to the latest state.
    const ok = await core.patchNamespacedPod(
      { namespace: 'apps', name: 'occ', body: { metadata: { labels: { w: '1' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(ok.metadata?.labels).toEqual({ v: '2', w: '1' });
  });

  it('applies JSON patches with test operations (422 when a test fails) and merge patches that delete with null', async () => {
    await core.createNamespacedPod({ namespace: 'apps', body: { metadata: { name: 'jp', labels: { a: '1', b: '2' } }, spec: { containers: [] } } });
    const patched = await core.patchNamespacedPod({
      namespace: 'apps',
      name: 'jp',
      body: [
        { op: 'test', path: '/metadata/labels/a', value: '1' },
        { op: 'add', path: '/metadata/labels/c', value: '3' },
        { op: 'remove', path: '/metadata/labels/b' },
      ],
    });
    expect(patched.metadata?.labels).toEqual({ a: '1', c: '3' });
    expect((await failure(core.patchNamespacedPod({ namespace: 'apps', name: 'jp', body: [{ op: 'test', path: '/metadata/labels/a', value: 'nope' }] }))).code).toBe(422);
    const merged = await core.patchNamespacedPod(
      { namespace: 'apps', name: 'jp', body: { metadata: { labels: { a: null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    expect(merged.metadata?.labels).toEqual({ c: '3' });
  });

  it('keeps status behind the status subresource for KernelChaos and bumps generation on spec changes', async () => {
    const created = (await custom.createNamespacedCustomObject({
      ...KC,
      body: { apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'KernelChaos', metadata: { name: 'e1' }, spec: { mode: 'all', selector: {}, failKernRequest: { failtype: 0 } }, status: { experiment: { desiredPhase: 'Run' } } },
    })) as { metadata: { generation: number; resourceVersion: string }; status?: unknown };
    expect(created.status).toBeUndefined();
    expect(created.metadata.generation).toBe(1);
    const viaMain = (await custom.patchNamespacedCustomObject(
      { ...KC, name: 'e1', body: { status: { experiment: { desiredPhase: 'Run' } }, metadata: { labels: { x: 'y' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as { status?: unknown; metadata: { generation: number } };
    expect(viaMain.status).toBeUndefined();
    expect(viaMain.metadata.generation).toBe(1);
    const viaStatus = (await custom.patchNamespacedCustomObjectStatus(
      { ...KC, name: 'e1', body: { status: { experiment: { desiredPhase: 'Stop' } }, spec: { mode: 'one' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as { status?: { experiment: { desiredPhase: string } }; spec: { mode: string } };
    expect(viaStatus.status?.experiment.desiredPhase).toBe('Stop');
    expect(viaStatus.spec.mode).toBe('all');
    const specChange = (await custom.patchNamespacedCustomObject(
      { ...KC, name: 'e1', body: { spec: { mode: 'one' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as { metadata: { generation: number } };
    expect(specChange.metadata.generation).toBe(2);
    const smp = await failure(
      custom.patchNamespacedCustomObject({ ...KC, name: 'e1', body: { metadata: { labels: { z: '1' } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch)),
    );
    expect(smp.code).toBe(415);
  });

  it('deletes an object with finalizers only when the last finalizer is removed', async () => {
    await custom.createNamespacedCustomObject({
      ...KC,
      body: { apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'KernelChaos', metadata: { name: 'fin', finalizers: ['kernelchaos.dev/pod-labels'] }, spec: { mode: 'all', selector: {}, failKernRequest: { failtype: 0 } } },
    });
    await custom.deleteNamespacedCustomObject({ ...KC, name: 'fin' });
    const terminating = (await custom.getNamespacedCustomObject({ ...KC, name: 'fin' })) as { metadata: { deletionTimestamp?: string } };
    expect(terminating.metadata.deletionTimestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    const added = await failure(
      custom.patchNamespacedCustomObject({ ...KC, name: 'fin', body: [{ op: 'add', path: '/metadata/finalizers/-', value: 'other' }] }),
    );
    expect(added.code).toBe(422);
    expect(added.message).toContain('no new finalizers');
    await custom.patchNamespacedCustomObject({ ...KC, name: 'fin', body: [{ op: 'remove', path: '/metadata/finalizers/0' }] });
    expect((await failure(custom.getNamespacedCustomObject({ ...KC, name: 'fin' }))).code).toBe(404);
  });

  it('serves leases with optimistic concurrency', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const lease = await leases.createNamespacedLease({ namespace: 'apps', body: { metadata: { name: 'l' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } } });
    await leases.replaceNamespacedLease({ namespace: 'apps', name: 'l', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'b' } } });
    const conflict = await failure(leases.replaceNamespacedLease({ namespace: 'apps', name: 'l', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'c' } } }));
    expect(conflict.code).toBe(409);
    expect((await leases.readNamespacedLease({ namespace: 'apps', name: 'l' })).spec?.holderIdentity).toBe('b');
  });

  it('stores events', async () => {
    await core.createNamespacedEvent({ namespace: 'apps', body: { metadata: { generateName: 'e-' }, involvedObject: { kind: 'Pod', name: 'p1', namespace: 'apps' }, reason: 'Selected', message: 'hello', type: 'Normal' } });
    const events = await core.listNamespacedEvent({ namespace: 'apps' });
    expect(events.items.map((e) => e.reason)).toContain('Selected');
  });
});
