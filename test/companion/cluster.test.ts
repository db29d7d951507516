// Cluster mode through @kubernetes/client-node against the fake apiserver (test/fakes): the
// companion watches only its node's targeted pods, arms, merges its container records into the
// KernelChaos status subresource (leaving another node's records alone), records Events on the pod
// and the experiment, and disarms when the KernelChaos is deleted. The kernel side is a recording
// double (the VM test covers the real engine).
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KernelChaos } from '../../src/api/types.js';
import { validateKernelChaos } from '../../src/api/validate.js';
import { runCompanion, type RunningCompanion } from '../../src/companion/run.js';
import { silentLog } from '../../src/kube/log.js';
import { FakeApiServer } from '../fakes/apiserver.js';
import { waitFor } from '../fakes/wait.js';
import { FakeEngine } from './fakes.js';

const KC = { group: 'chaos-mesh.org', version: 'v1alpha1', plural: 'kernelchaos', namespace: 'chaos' };
const CID = 'ef'.repeat(32);

let server: FakeApiServer;
let kc: KubeConfig;
let dir: string;
let running: RunningCompanion | undefined;

beforeAll(async () => {
  server = await new FakeApiServer().start();
  kc = server.kubeConfig();
  dir = mkdtempSync(join(tmpdir(), 'kc-companion-cluster-'));
});
afterAll(async () => {
  await running?.stop('test done');
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('companion against the Kubernetes API', () => {
  it('arms for its node\'s targeted pod, writes its records into the status, emits Events, disarms on delete', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    for (const name of ['app', 'chaos']) await core.createNamespace({ body: { metadata: { name } } });
    const chaos = (await custom.createNamespacedCustomObject({
      ...KC,
      body: {
        apiVersion: 'chaos-mesh.org/v1alpha1',
        kind: 'KernelChaos',
        metadata: { name: 'mount-fail', namespace: 'chaos' },
        spec: { mode: 'all', selector: { namespaces: ['app'] }, failKernRequest: { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }] } },
      },
    })) as KernelChaos;
    // Another node's record, already in the status: it must survive this node's writes.
    await custom.replaceNamespacedCustomObjectStatus({
      ...KC,
      name: 'mount-fail',
      body: { ...chaos, status: { experiment: { containerRecords: [{ id: 'app/other/c', selectorKey: '.', phase: 'Injected', injectedCount: 1, recoveredCount: 0, node: 'node-2' }] } } },
    });

    const pod = await core.createNamespacedPod({
      namespace: 'app',
      body: {
        metadata: { name: 'web', labels: { 'kernelchaos.dev/target': 'true' }, annotations: { 'kernelchaos.dev/inject': 'true', 'kernelchaos.dev/experiments': 'chaos/mount-fail' } },
        spec: { nodeName: 'node-1', containers: [{ name: 'app', image: 'busybox' }] },
        status: {
          phase: 'Running',
          qosClass: 'BestEffort',
          containerStatuses: [{ name: 'app', image: 'b', imageID: 'b', ready: true, restartCount: 0, containerID: `containerd://${CID}`, state: { running: {} } }],
        },
      },
    });
    // A targeted pod on another node: not this companion's business.
    await core.createNamespacedPod({
      namespace: 'app',
      body: {
        metadata: { name: 'elsewhere', labels: { 'kernelchaos.dev/target': 'true' }, annotations: { 'kernelchaos.dev/inject': 'true', 'kernelchaos.dev/experiments': 'chaos/mount-fail' } },
        spec: { nodeName: 'node-2', containers: [{ name: 'app', image: 'busybox' }] },
      },
    });

    const cgroupRoot = join(dir, 'cgroup');
    const scope = join(cgroupRoot, 'kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${(pod.metadata?.uid ?? '').replace(/-/g, '_')}.slice`, `cri-containerd-${CID}.scope`);
    mkdirSync(scope, { recursive: true });
    writeFileSync(join(cgroupRoot, 'cgroup.controllers'), 'memory\n');
    const kubeconfig = join(dir, 'kubeconfig.json');
    writeFileSync(kubeconfig, kc.exportConfig());

    const engine = new FakeEngine();
    running = await runCompanion(
      { node: 'node-1', source: { kind: 'kubernetes', kubeconfig }, cgroupRoot, procRoot: join(dir, 'proc') },
      { engine, validate: validateKernelChaos, log: silentLog },
    );
    expect(engine.live().map((f) => f.targets)).toEqual([[statSync(scope, { bigint: true }).ino]]);

    // Only this node's pods were asked for: label and field selector on the watch.
    const podLists = server.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/pods');
    expect(podLists.length).toBeGreaterThan(0);
    for (const r of podLists) {
      const q = new URLSearchParams(r.query);
      expect(q.get('labelSelector')).toBe('kernelchaos.dev/target=true');
      expect(q.get('fieldSelector')).toBe('spec.nodeName=node-1');
    }

    const records = await waitFor('this node\'s record in the status', async () => {
      const got = (await custom.getNamespacedCustomObjectStatus({ ...KC, name: 'mount-fail' })) as KernelChaos;
      const list = got.status?.experiment?.containerRecords ?? [];
      return list.some((r) => r.node === 'node-1') ? list : undefined;
    });
    expect(records.map((r) => `${r.id}@${r.node}:${r.phase}`)).toEqual(['app/other/c@node-2:Injected', 'app/web/app@node-1:Injected']);

    const events = await waitFor('Events on the pod and the experiment', async () => {
      const [a, c] = await Promise.all([core.listNamespacedEvent({ namespace: 'app' }), core.listNamespacedEvent({ namespace: 'chaos' })]);
      const all = [...a.items, ...c.items].filter((e) => e.reason === 'FaultInjected');
      return all.length >= 2 ? all : undefined;
    });
    expect(events.map((e) => `${e.involvedObject.kind}/${e.involvedObject.name}`).sort()).toEqual(['KernelChaos/mount-fail', 'Pod/web']);
    expect(events.find((e) => e.involvedObject.kind === 'KernelChaos')?.involvedObject.uid).toBe(chaos.metadata.uid);

    await custom.deleteNamespacedCustomObject({ ...KC, name: 'mount-fail' });
    await waitFor('the fault disarmed after the KernelChaos was deleted', () => engine.live().length === 0);
    expect(engine.arms).toHaveLength(1);
  });
});
