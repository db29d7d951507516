// InformerStore against the fake apiserver through @kubernetes/client-node: initial sync, changes,
// selectors, streams the server closes, and recovery from 410 Gone and from failing requests.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { FakeApiServer } from '../fakes/apiserver.js';
import { waitFor } from '../fakes/wait.js';
import { InformerStore } from '../../src/kube/informer.js';
import { silentLog } from '../../src/kube/log.js';
import type { StoreEvent } from '../../src/kube/store.js';
import { controllerStoreOptions } from '../../src/controller/controller.js';

let server: FakeApiServer;
let kc: KubeConfig;
let core: CoreV1Api;
let store: InformerStore | undefined;

const pod = (name: string, labels: Record<string, string> = {}, nodeName = 'n1') => ({
  metadata: { name, labels },
  spec: { nodeName, containers: [{ name: 'c', image: 'busybox' }] },
});

beforeEach(async () => {
  server = await new FakeApiServer().start();
  kc = server.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'apps', labels: { 'kernelchaos.dev/injection': 'enabled' } } } });
});
afterEach(async () => {
  store?.stop();
  store = undefined;
  await server.stop();
});

describe('InformerStore', () => {
  it('start() resolves after the initial lists of every kind; then follows changes', async () => {
    await core.createNamespacedPod({ namespace: 'apps', body: pod('p1') });
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'chaos-mesh.org', version: 'v1alpha1', plural: 'kernelchaos', namespace: 'apps',
      body: { apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'KernelChaos', metadata: { name: 'e1' }, spec: { mode: 'all', selector: {}, failKernRequest: { failtype: 0 } } },
    });
    store = new InformerStore(kc, { kinds: ['Pod', 'Namespace', 'KernelChaos', 'KernelChaosPolicy', 'Node'], log: silentLog });
    const events: StoreEvent[] = [];
    store.on((e) => events.push(e));
    expect(store.synced).toBe(false);
    await store.start();
    expect(store.synced).toBe(true);
    expect(store.list('Pod').map((p) => p.metadata?.name)).toEqual(['p1']);
    expect(store.get('KernelChaos', 'apps', 'e1')?.spec.mode).toBe('all');
    expect(store.get('Namespace', undefined, 'apps')?.metadata?.labels).toEqual({ 'kernelchaos.dev/injection': 'enabled' });
    // Objects are plain JSON as on the wire, whether they came from a list or a watch.
    expect(typeof store.get('Pod', 'apps', 'p1')?.metadata?.creationTimestamp).toBe('string');

    await core.patchNamespacedPod({ namespace: 'apps', name: 'p1', body: [{ op: 'add', path: '/metadata/labels/x', value: 'y' }] });
    await waitFor('label x in the store', () => store?.get('Pod', 'apps', 'p1')?.metadata?.labels?.x === 'y');
    await core.deleteNamespacedPod({ namespace: 'apps', name: 'p1' });
    await waitFor('p1 gone', () => store?.get('Pod', 'apps', 'p1') === undefined);
    expect(events.filter((e) => e.kind === 'Pod').map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
  });

  it("the controller's store holds only the projected fields of pods and nodes, from lists and watches", async () => {
    const full = {
      metadata: {
        name: 'web',
        labels: { app: 'web' },
        annotations: { 'kernelchaos.dev/inject': 'true', note: 'kept: annotationSelectors may name any key' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-1', uid: 'rs-uid' }],
        managedFields: [{ manager: 'kubelet', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:status': {} } }],
      },
      spec: {
        nodeName: 'n1',
        serviceAccountName: 'web',
        containers: [{ name: 'main', image: 'busybox', env: [{ name: 'A', value: 'x'.repeat(2000) }], resources: { limits: { memory: '64Mi' } } }],
        volumes: [{ name: 'data', emptyDir: {} }],
        tolerations: [{ key: 'k', operator: 'Exists' }],
      },
      status: {
        phase: 'Running',
        podIP: '10.0.0.7',
        podIPs: [{ ip: '10.0.0.7' }],
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: [{ name: 'main', containerID: 'containerd://abc', image: 'busybox', imageID: 'sha256:1', ready: true, restartCount: 0 }],
      },
    };
    await core.createNamespacedPod({ namespace: 'apps', body: full });
    await core.createNode({ body: { metadata: { name: 'n1', labels: { zone: 'a' } }, status: { capacity: { cpu: '4' }, images: [{ names: ['busybox'], sizeBytes: 1 }] } } });
    store = new InformerStore(kc, { ...controllerStoreOptions('kernelchaos-system'), log: silentLog });
    const events: StoreEvent[] = [];
    store.on((e) => events.push(e));
    await store.start();
    const expected = (labels: Record<string, string>, rv: string | undefined) => ({
      metadata: { name: 'web', namespace: 'apps', uid: expect.any(String), resourceVersion: rv, labels, annotations: full.metadata.annotations },
      spec: { nodeName: 'n1', serviceAccountName: 'web', containers: [{ name: 'main' }] },
      status: { phase: 'Running', podIP: '10.0.0.7', podIPs: [{ ip: '10.0.0.7' }], containerStatuses: [{ name: 'main', containerID: 'containerd://abc' }] },
    });
    const listed = await core.readNamespacedPod({ namespace: 'apps', name: 'web' });
    expect(store.get('Pod', 'apps', 'web')).toEqual(expected({ app: 'web' }, listed.metadata?.resourceVersion));
    expect(store.get('Node', undefined, 'n1')).toEqual({ metadata: { name: 'n1', uid: expect.any(String), resourceVersion: expect.any(String), labels: { zone: 'a' } } });

    // A label change arrives by the watch, projected the same way.
    await core.patchNamespacedPod({ namespace: 'apps', name: 'web', body: [{ op: 'add', path: '/metadata/labels/tier', value: 'front' }] });
    await waitFor('label tier in the store', () => store?.get('Pod', 'apps', 'web')?.metadata?.labels?.tier === 'front');
    const patched = await core.readNamespacedPod({ namespace: 'apps', name: 'web' });
    expect(store.get('Pod', 'apps', 'web')).toEqual(expected({ app: 'web', tier: 'front' }, patched.metadata?.resourceVersion));
    expect(JSON.stringify(store.get('Pod', 'apps', 'web')).length).toBeLessThan(JSON.stringify(patched).length / 4);
    // A change of dropped fields only: the cached pod moves to the new resourceVersion, nothing else.
    await core.patchNamespacedPod({ namespace: 'apps', name: 'web', body: [{ op: 'replace', path: '/status/conditions/0/status', value: 'False' }] });
    await waitFor('new resourceVersion in the store', async () => store?.get('Pod', 'apps', 'web')?.metadata?.resourceVersion !== patched.metadata?.resourceVersion);
    expect(store.get('Pod', 'apps', 'web')?.status).toEqual(expected({}, undefined).status);
  });

  it('watches only pods matching the label and field selectors; a pod that stops matching is deleted from the store', async () => {
    await core.createNamespacedPod({ namespace: 'apps', body: pod('target', { 'kernelchaos.dev/target': 'true' }, 'n1') });
    await core.createNamespacedPod({ namespace: 'apps', body: pod('other-node', { 'kernelchaos.dev/target': 'true' }, 'n2') });
    await core.createNamespacedPod({ namespace: 'apps', body: pod('unlabelled', {}, 'n1') });
    store = new InformerStore(kc, { kinds: ['Pod'], podLabelSelector: 'kernelchaos.dev/target=true', podFieldSelector: 'spec.nodeName=n1', log: silentLog });
    await store.start();
    expect(store.list('Pod').map((p) => p.metadata?.name)).toEqual(['target']);
    await core.patchNamespacedPod({ namespace: 'apps', name: 'unlabelled', body: [{ op: 'add', path: '/metadata/labels/kernelchaos.dev~1target', value: 'true' }] });
    await waitFor('newly labelled pod appears', () => store?.get('Pod', 'apps', 'unlabelled'));
    await core.patchNamespacedPod({ namespace: 'apps', name: 'target', body: [{ op: 'remove', path: '/metadata/labels/kernelchaos.dev~1target' }] });
    await waitFor('unlabelled pod disappears', () => store?.get('Pod', 'apps', 'target') === undefined);
    expect(store.list('Pod').map((p) => p.metadata?.name)).toEqual(['unlabelled']);
  });

  it('with `namespace`, lists and watches namespaced kinds in that namespace only', async () => {
    await core.createNamespace({ body: { metadata: { name: 'other' } } });
    await core.createNamespacedPod({ namespace: 'apps', body: pod('mine') });
    await core.createNamespacedPod({ namespace: 'other', body: pod('theirs') });
    store = new InformerStore(kc, { kinds: ['Pod', 'Namespace'], namespace: 'apps', log: silentLog });
    await store.start();
    expect(store.list('Pod').map((p) => p.metadata?.name)).toEqual(['mine']);
    // Cluster-scoped kinds are not narrowed.
    expect(store.list('Namespace').map((n) => n.metadata?.name)).toEqual(['apps', 'other']);
    await core.createNamespacedPod({ namespace: 'other', body: pod('theirs-2') });
    await core.createNamespacedPod({ namespace: 'apps', body: pod('mine-2') });
    await waitFor('mine-2', () => store?.get('Pod', 'apps', 'mine-2'));
    expect(store.get('Pod', 'other', 'theirs-2')).toBeUndefined();
    expect(server.requests.filter((r) => r.method === 'GET' && r.path.includes('/pods')).every((r) => r.path === '/api/v1/namespaces/apps/pods')).toBe(true);
  });

  it('keeps following after the server ends the watch stream', async () => {
    store = new InformerStore(kc, { kinds: ['Pod'], log: silentLog });
    await store.start();
    await waitFor('a watch open', () => server.openWatches('pods') === 1);
    server.closeWatches();
    await core.createNamespacedPod({ namespace: 'apps', body: pod('after-close') });
    await waitFor('pod created after the stream ended', () => store?.get('Pod', 'apps', 'after-close'));
  });

  for (const goneAs of ['event', 'status'] as const) {
    it(`relists after 410 Gone (${goneAs === 'event' ? 'ERROR event in the stream' : 'HTTP 410'}) and converges, deleting what vanished meanwhile`, async () => {
      await server.stop();
      server = await new FakeApiServer({ goneAs }).start();
      kc = server.kubeConfig();
      core = kc.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: 'apps' } } });
      await core.createNamespacedPod({ namespace: 'apps', body: pod('old') });
      store = new InformerStore(kc, { kinds: ['Pod'], log: silentLog, restartDelayMs: 20 });
      await store.start();
      await waitFor('a watch open', () => server.openWatches('pods') === 1);
      // Refuse watches for a while so changes happen while the store is disconnected.
      let refuse = true;
      const unhook = server.hook((req) => (refuse && req.watch ? { status: 503, body: { kind: 'Status', code: 503, message: 'unavailable' } } : undefined));
      server.closeWatches();
      await waitFor('a refused watch', () => server.requests.some((r) => r.status === 503));
      await core.deleteNamespacedPod({ namespace: 'apps', name: 'old' });
      await core.createNamespacedPod({ namespace: 'apps', body: pod('new') });
      server.compact();
      refuse = false;
      await waitFor('store converged', () => {
        const names = store?.list('Pod').map((p) => p.metadata?.name);
        return names?.length === 1 && names[0] === 'new';
      });
      unhook();
      const expired = server.requests.filter((r) => (r.body as { watch?: string } | undefined)?.watch === 'expired');
      expect(expired.length).toBeGreaterThanOrEqual(1);
      expect(expired.every((r) => r.status === (goneAs === 'status' ? 410 : 200))).toBe(true);
      // A relist happened (a list request after the initial one).
      expect(server.requests.filter((r) => r.method === 'GET' && !r.query.includes('watch') && r.path === '/api/v1/pods').length).toBeGreaterThanOrEqual(2);
    });
  }

  it('says what to do when the CRD is missing, and syncs once it is there', async () => {
    const warnings: Array<{ hint?: string }> = [];
    const log = { ...silentLog, warn: (obj: object) => void warnings.push(obj as { hint?: string }) };
    let installed = false;
    server.hook((req) => (!installed && req.resource.plural === 'kernelchaos' ? { status: 404, body: { kind: 'Status', code: 404, reason: 'NotFound' } } : undefined));
    store = new InformerStore(kc, { kinds: ['KernelChaos'], log, restartDelayMs: 10 });
    const started = store.start();
    await waitFor('a hint', () => warnings.find((w) => w.hint));
    expect(warnings.find((w) => w.hint)?.hint).toBe('the CustomResourceDefinition kernelchaos.chaos-mesh.org is not installed: kubectl apply -f manifests/crds/');
    expect(store.synced).toBe(false);
    installed = true;
    await started;
    expect(store.synced).toBe(true);
  });

  it('retries a failing initial list until it succeeds', async () => {
    let failures = 2;
    server.hook((req) => (req.method === 'GET' && !req.watch && req.resource.plural === 'pods' && failures-- > 0 ? { status: 500, body: { kind: 'Status', code: 500, message: 'etcd down' } } : undefined));
    await core.createNamespacedPod({ namespace: 'apps', body: pod('p') });
    store = new InformerStore(kc, { kinds: ['Pod', 'Namespace'], log: silentLog, restartDelayMs: 10 });
    await store.start();
    expect(store.list('Pod').map((p) => p.metadata?.name)).toEqual(['p']);
    expect(failures).toBeLessThan(0);
  });

  it('pages lists (limit/continue), asks for bookmarks, and re-watches from the bookmark after an idle cut-off without relisting', async () => {
    for (let i = 0; i < 5; i++) await core.createNamespacedPod({ namespace: 'apps', body: pod(`p${i}`) });
    store = new InformerStore(kc, { kinds: ['Pod'], log: silentLog, pageSize: 2, watchIdleMs: 400, requestTimeoutMs: 300, restartDelayMs: 10 });
    await store.start();
    expect(store.list('Pod').map((p) => p.metadata?.name)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    const lists = server.requests.filter((r) => r.path === '/api/v1/pods' && !new URLSearchParams(r.query).has('watch'));
    expect(lists.map((r) => new URLSearchParams(r.query).get('limit'))).toEqual(['2', '2', '2']);
    expect(lists.slice(1).every((r) => new URLSearchParams(r.query).has('continue'))).toBe(true);
    const watches = () => server.requests.filter((r) => r.path === '/api/v1/pods' && new URLSearchParams(r.query).get('watch') === 'true');
    await waitFor('a watch', () => watches().length > 0);
    const q = new URLSearchParams(watches()[0]?.query);
    expect(q.get('allowWatchBookmarks')).toBe('true');
    expect(Number(q.get('timeoutSeconds'))).toBeGreaterThanOrEqual(300);
    // A watch that goes silent (no events, no bookmarks: a half-open connection) is cut and re-opened.
    let hung = 0;
    const silence = server.hook((req) => {
      if (!req.watch) return undefined;
      hung += 1;
      return new Promise<undefined>(() => {});
    });
    server.closeWatches();
    await waitFor('a watch request that never answers', () => hung > 0);
    silence();
    await waitFor('re-watched after the idle cut-off', () => server.openWatches('pods') === 1, 5000);
    expect(server.requests.filter((r) => r.path === '/api/v1/pods' && !new URLSearchParams(r.query).has('watch'))).toHaveLength(3);
    await core.createNamespacedPod({ namespace: 'apps', body: pod('p5') });
    await waitFor('follows changes again', () => store?.get('Pod', 'apps', 'p5') !== undefined);
  });
});
