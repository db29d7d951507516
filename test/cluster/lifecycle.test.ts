// The controller's label and status lifecycle against a real cluster (kind, minikube or any
// kubeconfig): `npm run test:cluster`. Needs the CRDs (`kubectl apply -f manifests/crds/`) and
// permission to create namespaces, pods, KernelChaos objects and Leases. Everything it creates lives
// in two fresh namespaces that are deleted afterwards. Pods need not be scheduled: selection does
// not depend on phase.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ApiextensionsV1Api, CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { EXPERIMENTS_ANNOTATION, FINALIZER, TARGET_LABEL, experimentLabelKey } from '../../src/api/labels.js';
import { loadKubeConfig } from '../../src/kube/kubeconfig.js';
import type { Controller } from '../../src/controller/controller.js';
import { KC, clients, experimentBody, getChaos, makeController, podBody, type Clients } from '../controller/harness.js';
import { waitFor } from '../fakes/wait.js';

function skipReason(): string | undefined {
  if (process.env.KERNELCHAOS_TEST_CLUSTER !== '1') return 'set KERNELCHAOS_TEST_CLUSTER=1 (npm run test:cluster)';
  const files = (process.env.KUBECONFIG ?? join(homedir(), '.kube', 'config')).split(':').filter((f) => f !== '');
  if (!files.some((f) => existsSync(f)) && !process.env.KUBERNETES_SERVICE_HOST) {
    return `no kubeconfig found (${files.join(', ')}); point KUBECONFIG at a cluster, e.g. \`kind create cluster\``;
  }
  return undefined;
}

const reason = skipReason();
if (reason) console.warn(`test/cluster skipped: ${reason}`);
const suffix = randomBytes(3).toString('hex');
const NS = `kc-test-${suffix}`;
const SYSTEM_NS = `kc-test-${suffix}-system`;

let kc: KubeConfig;
let c: Clients;
let ready = false;
const controllers: Controller[] = [];

describe.skipIf(reason !== undefined)(`controller lifecycle on a real cluster${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    kc = loadKubeConfig();
    c = clients(kc);
    try {
      await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: 'kernelchaos.chaos-mesh.org' });
    } catch (error) {
      throw new Error(`the KernelChaos CRD is not installed (kubectl apply -f manifests/crds/): ${String(error).split('\n')[0]}`);
    }
    ready = true;
    await c.core.createNamespace({ body: { metadata: { name: NS, labels: { 'kernelchaos.dev/injection': 'enabled' } } } });
    await c.core.createNamespace({ body: { metadata: { name: SYSTEM_NS } } });
    for (const [name, app] of [['web-0', 'web'], ['web-1', 'web'], ['web-2', 'web'], ['db-0', 'db']] as const) {
      // A new namespace's default ServiceAccount appears shortly after it; pod creation waits for it.
      await waitFor(`pod ${name} created`, async () => {
        await c.core.createNamespacedPod({ namespace: NS, body: podBody(name, { app }) });
        return true;
      }, 30_000);
    }
  });

  afterAll(async () => {
    if (!ready) return;
    // Experiments first, while a controller still runs to release their finalizers.
    try {
      const list = (await c.custom.listNamespacedCustomObject({ ...KC, namespace: NS })) as { items: Array<{ metadata: { name: string } }> };
      for (const item of list.items) await c.custom.deleteNamespacedCustomObject({ ...KC, namespace: NS, name: item.metadata.name });
      await waitFor('experiments gone', async () => ((await c.custom.listNamespacedCustomObject({ ...KC, namespace: NS })) as { items: unknown[] }).items.length === 0, 30_000);
    } catch (error) {
      console.warn(`cleanup: ${String(error).split('\n')[0]}`);
    } finally {
      for (const ctl of controllers.splice(0)) await ctl.stop();
      for (const ns of [NS, SYSTEM_NS]) await c.core.deleteNamespace({ name: ns }).catch(() => undefined);
    }
  });

  it('labels, finalizes, reports status; only the lease holder acts; delete cleans up', async () => {
    const a = makeController(kc, { identity: `test-a-${suffix}`, namespace: SYSTEM_NS });
    const b = makeController(kc, { identity: `test-b-${suffix}`, namespace: SYSTEM_NS });
    controllers.push(a, b);
    await Promise.all([a.start(), b.start()]);
    const leader = await waitFor('a leader', () => (a.isLeader ? a : b.isLeader ? b : undefined));
    const standby = leader === a ? b : a;

    await c.custom.createNamespacedCustomObject({ ...KC, namespace: NS, body: experimentBody('exp', { mode: 'all', selector: { labelSelectors: { app: 'web' } } }) });
    const label = experimentLabelKey(NS, 'exp');
    await waitFor('three pods labelled', async () => (await c.core.listNamespacedPod({ namespace: NS, labelSelector: `${TARGET_LABEL}=true,${label}=true` })).items.length === 3, 30_000);
    const web0 = await c.core.readNamespacedPod({ namespace: NS, name: 'web-0' });
    expect(web0.metadata?.labels?.app).toBe('web');
    expect(web0.metadata?.annotations?.[EXPERIMENTS_ANNOTATION]).toBe(`${NS}/exp`);
    expect((await c.core.readNamespacedPod({ namespace: NS, name: 'db-0' })).metadata?.labels?.[TARGET_LABEL]).toBeUndefined();

    const exp = await waitFor('status', async () => {
      const e = await getChaos(c, NS, 'exp');
      return e?.status?.experiment?.desiredPhase === 'Run' ? e : undefined;
    }, 30_000);
    expect(exp.metadata.finalizers).toContain(FINALIZER);
    expect(exp.status?.conditions?.find((x) => x.type === 'Selected')?.status).toBe('True');
    await waitFor('Selected event', async () => (await c.core.listNamespacedEvent({ namespace: NS })).items.some((e) => e.reason === 'Selected'), 30_000);

    const lease = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: SYSTEM_NS, name: 'kernelchaos-controller' });
    expect(lease.spec?.holderIdentity).toBe(leader === a ? `test-a-${suffix}` : `test-b-${suffix}`);

    // Failover: the standby takes over and keeps labelling.
    await leader.stop();
    await waitFor('standby leads', () => standby.isLeader, 30_000);
    await c.core.createNamespacedPod({ namespace: NS, body: podBody('web-3', { app: 'web' }) });
    await waitFor('late pod labelled', async () => (await c.core.readNamespacedPod({ namespace: NS, name: 'web-3' })).metadata?.labels?.[label] === 'true', 30_000);

    await c.custom.deleteNamespacedCustomObject({ ...KC, namespace: NS, name: 'exp' });
    await waitFor('experiment gone', async () => (await getChaos(c, NS, 'exp')) === undefined, 30_000);
    const left = await c.core.listNamespacedPod({ namespace: NS, labelSelector: TARGET_LABEL });
    expect(left.items.map((p) => p.metadata?.name)).toEqual([]);
  }, 120_000);
});
