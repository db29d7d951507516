// The controller on Chaos Mesh's KernelChaos CRD (no status subresource, as its Helm chart ships it):
// status writes land on the object itself, and pods are labelled as usual.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Controller } from '../../src/controller/controller.js';
import { DEFAULT_RESOURCES, FakeApiServer } from '../fakes/apiserver.js';
import { waitFor } from '../fakes/wait.js';
import { KC, clients, experimentBody, getChaos, makeController, podBody, type Clients } from './harness.js';

let server: FakeApiServer;
let c: Clients;
let ctl: Controller | undefined;

beforeEach(async () => {
  server = await new FakeApiServer({
    resources: DEFAULT_RESOURCES.map((r) => (r.plural === 'kernelchaos' ? { ...r, statusSubresource: false } : r)),
  }).start();
  c = clients(server.kubeConfig('user'));
  await c.core.createNamespace({ body: { metadata: { name: 'apps', labels: { 'kernelchaos.dev/injection': 'enabled' } } } });
  await c.core.createNamespace({ body: { metadata: { name: 'kernelchaos-system' } } });
  await c.core.createNamespacedPod({ namespace: 'apps', body: podBody('web-0', { app: 'web' }) });
});
afterEach(async () => {
  await ctl?.stop();
  await server.stop();
});

describe("controller on Chaos Mesh's CRD (no status subresource)", () => {
  it('writes desiredPhase and conditions with the object, value as a string, and ends a duration', async () => {
    ctl = makeController(server.kubeConfig('ctl'), { identity: 'ctl', namespace: 'kernelchaos-system' });
    await ctl.start();
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: 'apps', body: experimentBody('exp', { mode: 'fixed', value: '1', duration: '2s' }) });
    const running = await waitFor('Run', async () => {
      const e = await getChaos(c, 'apps', 'exp');
      return e?.status?.experiment?.desiredPhase === 'Run' ? e : undefined;
    });
    expect(running.status?.conditions?.find((x) => x.type === 'Selected')?.status).toBe('True');
    expect((await c.core.listNamespacedPod({ namespace: 'apps', labelSelector: 'kernelchaos.dev/target=true' })).items).toHaveLength(1);
    await waitFor('Stop', async () => (await getChaos(c, 'apps', 'exp'))?.status?.experiment?.desiredPhase === 'Stop', 8_000);
  });
});
