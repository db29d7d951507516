// kernelchaos's controller running a Chaos Mesh Schedule of KernelChaos against the fake apiserver
// (Schedule CRD without a status subresource, as Chaos Mesh ships it): children made on the
// schedule with Chaos Mesh's names, owner references and labels, at most historyLimit kept, Forbid
// honoured; a second controller finds the same state.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Controller } from '../../src/controller/controller.js';
import { ScheduleRunner } from '../../src/controller/schedule-runner.js';
import { silentLog } from '../../src/kube/log.js';
import type { KernelChaos } from '../../src/api/types.js';
import { DEFAULT_RESOURCES, FakeApiServer } from '../fakes/apiserver.js';
import { waitFor } from '../fakes/wait.js';
import { clients, makeController, podBody, type Clients } from './harness.js';

const NS = 'apps';
const SCHEDULES = { group: 'chaos-mesh.org', version: 'v1alpha1', plural: 'schedules' } as const;
const KC = { group: 'chaos-mesh.org', version: 'v1alpha1', plural: 'kernelchaos' } as const;

let server: FakeApiServer;
let c: Clients;
const controllers: Controller[] = [];

async function start(identity: string): Promise<Controller> {
  const kc = server.kubeConfig(identity);
  const ctl = makeController(kc, { identity, namespace: 'kernelchaos-system', schedules: new ScheduleRunner(kc, { log: silentLog, pollMs: 300 }) });
  controllers.push(ctl);
  await ctl.start();
  return ctl;
}

async function children(): Promise<KernelChaos[]> {
  const list = (await c.custom.listNamespacedCustomObject({ ...KC, namespace: NS, labelSelector: 'managed-by=sk' })) as { items: KernelChaos[] };
  return list.items;
}

function scheduleBody(spec: Record<string, unknown>) {
  return {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'Schedule',
    metadata: { name: 'sk', namespace: NS },
    spec: {
      schedule: '@every 1s',
      type: 'KernelChaos',
      historyLimit: 2,
      kernelChaos: { mode: 'all', selector: { labelSelectors: { app: 'web' } }, failKernRequest: { failtype: 0, times: 1 }, duration: '1s' },
      ...spec,
    },
  };
}

beforeEach(async () => {
  server = await new FakeApiServer({
    resources: [...DEFAULT_RESOURCES, { group: 'chaos-mesh.org', version: 'v1alpha1', plural: 'schedules', kind: 'Schedule', namespaced: true, custom: true }],
  }).start();
  c = clients(server.kubeConfig('user'));
  await c.core.createNamespace({ body: { metadata: { name: NS, labels: { 'kernelchaos.dev/injection': 'enabled' } } } });
  await c.core.createNamespace({ body: { metadata: { name: 'kernelchaos-system' } } });
  await c.core.createNamespacedPod({ namespace: NS, body: podBody('web-0', { app: 'web' }) });
});

afterEach(async () => {
  for (const ctl of controllers.splice(0)) await ctl.stop();
  await server.stop();
});

describe('Schedule of KernelChaos run by kernelchaos', () => {
  it('creates owned children on schedule, ends each by its duration, keeps at most historyLimit, records status', async () => {
    await start('ctl-a');
    const created = (await c.custom.createNamespacedCustomObject({ ...SCHEDULES, namespace: NS, body: scheduleBody({}) })) as { metadata: { uid: string } };
    const seen = new Set<string>();
    await waitFor('four runs', async () => {
      for (const k of await children()) seen.add(k.metadata.name ?? '');
      return seen.size >= 4;
    }, 20_000);
    const kids = await children();
    expect(kids.length).toBeLessThanOrEqual(2 + 1); // historyLimit, plus one the gc has not reached yet
    for (const k of kids) {
      expect(k.metadata.name).toMatch(/^sk-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
      expect(k.metadata.labels).toEqual({ 'managed-by': 'sk' });
      expect((k.metadata as { ownerReferences?: unknown }).ownerReferences).toEqual([
        { apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'Schedule', name: 'sk', uid: created.metadata.uid, controller: true, blockOwnerDeletion: true },
      ]);
      expect(k.spec.duration).toBe('1s');
    }
    await waitFor('gc to the limit', async () => (await children()).length <= 2, 10_000);
    const s = (await c.custom.getNamespacedCustomObject({ ...SCHEDULES, namespace: NS, name: 'sk' })) as { status?: { time?: string; active?: Array<{ name: string }> } };
    expect(Date.parse(s.status?.time ?? '')).toBeGreaterThan(0);
    expect(s.status?.active?.length).toBeGreaterThan(0);
    // A finished child's status: the main controller stopped it when its duration ended.
    const finished = (await children()).find((k) => k.status?.experiment?.desiredPhase === 'Stop');
    expect(finished).toBeDefined();
  });

  it('Forbid with a child that never ends: one child only; deleting it lets the next run start', async () => {
    await start('ctl-a');
    await c.custom.createNamespacedCustomObject({
      ...SCHEDULES,
      namespace: NS,
      body: scheduleBody({ kernelChaos: { mode: 'all', selector: {}, failKernRequest: { failtype: 0, times: 1 } } }),
    });
    const first = await waitFor('one child', async () => ((await children()).length === 1 ? (await children())[0] : undefined), 10_000);
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await children()).map((k) => k.metadata.name)).toEqual([first.metadata.name]);
    await c.custom.deleteNamespacedCustomObject({ ...KC, namespace: NS, name: first.metadata.name ?? '' });
    await waitFor('the next run', async () => (await children()).some((k) => k.metadata.name !== first.metadata.name), 10_000);
  });
});
