// Cluster mode through @kubernetes/client-node against the fake apiserver (test/fakes): the
// companion watches only its node's targeted pods, arms, writes its container records into its own
// node report in the release namespace (never the KernelChaos status: the controller writes that),
// records Events on the pod and the experiment, and disarms when the KernelChaos is deleted. The kernel side is a recording
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
import { parseReport, reportConfigMap, reportName } from '../../src/kube/reports.js';
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
    // This node's report from an earlier run: the counts continue from it.
    await core.createNamespace({ body: { metadata: { name: 'kernelchaos-system' } } });
    await core.createNamespacedConfigMap({
      namespace: 'kernelchaos-system',
      body: reportConfigMap('kernelchaos-system', {
        node: 'node-1',
        experiment: { namespace: 'chaos', name: 'mount-fail', uid: chaos.metadata.uid ?? '' },
        faultsInjected: 0,
        records: [{ id: 'app/web/app', selectorKey: '.', phase: 'Not Injected', injectedCount: 4, recoveredCount: 4, faultsInjected: 0 }],
      }),
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

    const report = await waitFor('this node\'s report', async () => {
      const cm = await core.readNamespacedConfigMap({ namespace: 'kernelchaos-system', name: reportName(chaos.metadata.uid ?? '', 'node-1') });
      const r = parseReport(cm);
      return r?.records.some((x) => x.phase === 'Injected') ? r : undefined;
    });
    expect(report.records.map((r) => `${r.id}:${r.phase}:${r.injectedCount}`)).toEqual(['app/web/app:Injected:5']);
    // The status is the controller's alone.
    expect(server.requests.filter((r) => r.method !== 'GET' && r.path.includes('/kernelchaos/'))).toEqual([]);

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
