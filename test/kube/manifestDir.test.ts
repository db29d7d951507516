// ManifestDirStore: what `--manifests DIR` users rely on: every manifest file loads, changes show
// up as ADDED/MODIFIED/DELETED within a poll, and a bad document is reported and skipped.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile, unlink, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManifestDirStore } from '../../src/kube/manifestDir.js';
import type { StoreEvent } from '../../src/kube/store.js';
import type { Log } from '../../src/kube/log.js';
import { waitFor } from '../fakes/wait.js';
import { SEED_YAML as SEED } from '../fixtures/seed.js';


const POD = (name: string, extra = '') => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: {app: web${extra}}
spec:
  containers: [{name: c, image: busybox}]
`;

function collectingLog(): Log & { warnings: string[] } {
  const warnings: string[] = [];
  const note = (obj: object, msg?: string) => warnings.push(`${msg ?? ''} ${JSON.stringify(obj)}`);
  return { warnings, debug() {}, info() {}, warn: note, error: note };
}

let dir: string;
let writes = 0;

/** Writes through a temporary file and a rename, as editors and ConfigMap updates do, so no read sees half a file. */
async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = join(dir, `.tmp-${++writes}`);
  await writeFile(tmp, text);
  await rename(tmp, path);
}
let store: ManifestDirStore | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kc-manifests-'));
});
afterEach(async () => {
  store?.stop();
  store = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('ManifestDirStore', () => {
  it('loads every kind it keeps from multi-document YAML, JSON, List wrappers and subdirectories', async () => {
    await writeFile(join(dir, 'seed.yaml'), SEED);
    await writeFile(join(dir, 'multi.yml'), `${POD('a')}---\n${POD('b')}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: chaos-mount\n  labels: {kernelchaos.dev/injection: enabled}\n---\n`);
    await mkdir(join(dir, 'nodes'));
    await writeFile(join(dir, 'nodes', 'n.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { disk: 'ssd' } } },
      { apiVersion: 'kernelchaos.dev/v1alpha1', kind: 'KernelChaosPolicy', metadata: { name: 'limits', namespace: 'chaos-mount' }, spec: { maxProbability: 50 } },
    ] }));
    await writeFile(join(dir, 'deploy.yaml'), 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ignored}\n');
    await writeFile(join(dir, 'README.md'), 'not a manifest');
    store = new ManifestDirStore(dir, { log: collectingLog() });
    await store.start();
    expect(store.synced).toBe(true);
    expect(store.list('KernelChaos').map((k) => `${k.metadata.namespace}/${k.metadata.name}`)).toEqual(['chaos-testing/kernel-chaos-example']);
    expect(store.get('KernelChaos', 'chaos-testing', 'kernel-chaos-example')?.spec.failKernRequest.callchain?.[0]?.funcname).toBe('__x64_sys_mount');
    // Pods without a namespace are in `default`, as kubectl would put them.
    expect(store.list('Pod').map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).toEqual(['default/a', 'default/b']);
    expect(store.list('Pod', 'default')).toHaveLength(2);
    expect(store.list('Pod', 'other')).toHaveLength(0);
    expect(store.get('Namespace', undefined, 'chaos-mount')?.metadata?.labels).toEqual({ 'kernelchaos.dev/injection': 'enabled' });
    expect(store.get('Node', undefined, 'n1')?.metadata?.labels).toEqual({ disk: 'ssd' });
    expect(store.get('KernelChaosPolicy', 'chaos-mount', 'limits')?.spec.maxProbability).toBe(50);
    expect(store.problems).toEqual([]);
  });

  it('reports invalid documents with file and reason, skips them and keeps the rest', async () => {
    const log = collectingLog();
    await writeFile(join(dir, 'bad.yaml'), [
      POD('good'),
      'apiVersion: chaos-mesh.org/v1alpha1\nkind: KernelChaos\nmetadata: {name: broken}\nspec: {mode: one, selector: {}, failKernRequest: {failtype: 7}}\n',
      'kind: Pod\napiVersion: v1\nmetadata: {}\n',
      'just a string\n',
      'apiVersion: v1\nkind: Pod\nmetadata: {name: x\n',
    ].join('---\n'));
    store = new ManifestDirStore(dir, { log });
    await store.start();
    expect(store.list('Pod').map((p) => p.metadata?.name)).toEqual(['good']);
    expect(store.list('KernelChaos')).toEqual([]);
    const sources = store.problems.map((p) => p.source);
    // file:line of each bad document, so the user can jump to it.
    expect(sources).toEqual(['bad.yaml:9 (KernelChaos default/broken)', 'bad.yaml:14', 'bad.yaml:18', 'bad.yaml:23']);
    expect(store.problems[0]?.message).toMatch(/spec\.failKernRequest\.failtype/);
    expect(store.problems[1]?.message).toBe('Pod needs metadata.name');
    expect(store.problems[3]?.message).toMatch(/invalid YAML/);
    expect(log.warnings.filter((w) => w.includes('skipped manifest'))).toHaveLength(4);
  });

  for (const fsWatch of [true, false]) {
    it(`emits ADDED, MODIFIED and DELETED as files are added, changed and removed (${fsWatch ? 'fs.watch + polling' : 'polling only'})`, async () => {
      store = new ManifestDirStore(dir, { pollIntervalMs: 50, fsWatch, log: collectingLog() });
      const events: StoreEvent[] = [];
      store.on((e) => events.push(e));
      await store.start();
      expect(events).toEqual([]);

      await atomicWrite(join(dir, 'pods.yaml'), POD('a'));
      await waitFor('ADDED a', () => events.find((e) => e.type === 'ADDED' && e.object.metadata?.name === 'a'));

      await atomicWrite(join(dir, 'pods.yaml'), POD('a', ', tier: db'));
      const modified = await waitFor('MODIFIED a', () => events.find((e) => e.type === 'MODIFIED'));
      expect(modified.object.metadata?.labels).toEqual({ app: 'web', tier: 'db' });

      await atomicWrite(join(dir, 'pods.yaml'), `${POD('a', ', tier: db')}---\n${POD('b')}`);
      await waitFor('ADDED b', () => events.find((e) => e.type === 'ADDED' && e.object.metadata?.name === 'b'));

      await unlink(join(dir, 'pods.yaml'));
      await waitFor('both DELETED', () => events.filter((e) => e.type === 'DELETED').length === 2);
      expect(store.list('Pod')).toEqual([]);
      // Every event was a real change: unchanged objects produced none.
      expect(events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED a', 'MODIFIED a', 'ADDED b', 'DELETED a', 'DELETED b']);
    });
  }

  it('a file that turns invalid drops its objects (DELETED) and they return when fixed', async () => {
    await writeFile(join(dir, 'seed.yaml'), SEED);
    store = new ManifestDirStore(dir, { pollIntervalMs: 50, log: collectingLog() });
    const events: StoreEvent[] = [];
    store.on((e) => events.push(e));
    await store.start();
    await atomicWrite(join(dir, 'seed.yaml'), SEED.replace('failtype: 0', 'failtype: "zero"'));
    await waitFor('DELETED', () => events.find((e) => e.type === 'DELETED'));
    expect(store.problems).toHaveLength(1);
    await atomicWrite(join(dir, 'seed.yaml'), SEED);
    await waitFor('ADDED again', () => events.filter((e) => e.type === 'ADDED').length === 2);
    expect(store.problems).toEqual([]);
  });

  it('a listener that throws does not stop the others or the store', async () => {
    const log = collectingLog();
    store = new ManifestDirStore(dir, { pollIntervalMs: 50, log });
    const seen: string[] = [];
    store.on(() => {
      throw new Error('boom');
    });
    store.on((e) => seen.push(e.type));
    await store.start();
    await writeFile(join(dir, 'p.yaml'), POD('a'));
    await store.refresh();
    expect(seen).toEqual(['ADDED']);
    expect(log.warnings.some((w) => w.includes('store listener failed') && w.includes('boom'))).toBe(true);
  });

  it('refuses a missing directory with a clear message', async () => {
    store = new ManifestDirStore(join(dir, 'nope'), { log: collectingLog() });
    await expect(store.start()).rejects.toThrow(/manifest directory .*nope cannot be read/);
    await writeFile(join(dir, 'file.yaml'), POD('a'));
    await expect(new ManifestDirStore(join(dir, 'file.yaml'), { log: collectingLog() }).start()).rejects.toThrow(/is not a directory/);
    expect(() => new ManifestDirStore(dir, { pollIntervalMs: 0 })).toThrow(/pollIntervalMs/);
  });
});
