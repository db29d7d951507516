import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import jsonpatch from 'fast-json-patch';
import type { V1Pod } from '@kubernetes/client-node';
import { experimentLabelKey } from '../../src/api/labels.js';
import { allModeChaos, namespace, pod, seedChaos } from './fixtures.js';
import { decodePatch, podRequest, review, send, startTestWebhook, type TestWebhook } from './helpers.js';

let hook: TestWebhook;

beforeAll(async () => {
  hook = await startTestWebhook();
});
afterAll(async () => hook.close());

beforeEach(() => {
  for (const c of hook.store.list('KernelChaos')) hook.store.delete('KernelChaos', c.metadata.namespace, c.metadata.name ?? '');
  for (const n of hook.store.list('Namespace')) hook.store.delete('Namespace', undefined, n.metadata?.name ?? '');
});

/** Sends the pod, applies the returned patch the way the apiserver does, returns both. */
async function admit(p: V1Pod, ns: string, extra = {}) {
  const response = await review(hook, '/mutate-pods', podRequest(p, ns, extra));
  const patch = decodePatch(response);
  const patched = jsonpatch.applyPatch(structuredClone(p), patch as jsonpatch.Operation[], true).newDocument;
  return { response, patch, patched };
}

const WEB = { labelSelectors: { app: 'web' } };
const TARGET = 'kernelchaos.dev/target';

describe('POST /mutate-pods: eligibility', () => {
  it('labels a pod that opts in by annotation, keeping its own labels', async () => {
    hook.store.apply(namespace('shop'));
    hook.store.put('KernelChaos', allModeChaos('web-chaos', 'shop', WEB));
    const p = pod({ name: 'web-1', namespace: 'shop', labels: { app: 'web', tier: 'front' }, annotations: { 'kernelchaos.dev/inject': 'true' } });
    const { response, patch, patched } = await admit(p, 'shop');
    expect(response.allowed).toBe(true);
    expect(response.patchType).toBe('JSONPatch');
    expect(patched.metadata?.labels).toEqual({
      app: 'web',
      tier: 'front',
      [TARGET]: 'true',
      [experimentLabelKey('shop', 'web-chaos')]: 'true',
    });
    expect(patched.metadata?.annotations?.['kernelchaos.dev/experiments']).toBe('shop/web-chaos');
    // Existing maps are extended key by key, with '/' escaped as ~1, never replaced.
    expect(patch.every((op) => op.op === 'add')).toBe(true);
    expect(patch.map((op) => op.path)).toContain('/metadata/labels/kernelchaos.dev~1target');
  });

  it('labels every pod of a namespace labelled kernelchaos.dev/injection=enabled', async () => {
    hook.store.apply(namespace('shop', { 'kernelchaos.dev/injection': 'enabled' }));
    hook.store.put('KernelChaos', allModeChaos('web-chaos', 'shop', WEB));
    const { patched } = await admit(pod({ name: 'web-2', namespace: 'shop', labels: { app: 'web' } }), 'shop');
    expect(patched.metadata?.labels?.[TARGET]).toBe('true');
  });

  it('never touches a namespace labelled disabled, even when the pod opts in', async () => {
    hook.store.apply(namespace('vault', { 'kernelchaos.dev/injection': 'disabled' }));
    hook.store.put('KernelChaos', allModeChaos('vault-chaos', 'vault', WEB));
    const { response } = await admit(pod({ name: 'web', namespace: 'vault', labels: { app: 'web' }, annotations: { 'kernelchaos.dev/inject': 'true' } }), 'vault');
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeUndefined();
    expect(response.auditAnnotations?.['skip-reason']).toBe('namespace-disabled');
  });

  it('never touches kube-system nor its own namespace', async () => {
    for (const ns of ['kube-system', 'kernelchaos-system']) {
      hook.store.apply(namespace(ns, { 'kernelchaos.dev/injection': 'enabled' }));
      hook.store.put('KernelChaos', allModeChaos('sys', ns, WEB));
      const { response } = await admit(pod({ name: 'web', namespace: ns, labels: { app: 'web' }, annotations: { 'kernelchaos.dev/inject': 'true' } }), ns);
      expect(response.patch).toBeUndefined();
      expect(response.auditAnnotations?.['skip-reason']).toBe('system-namespace');
    }
  });

  it('records not-opted-in on a pod an experiment meant, and leaves other pods alone', async () => {
    hook.store.apply(namespace('shop'));
    hook.store.put('KernelChaos', allModeChaos('web-chaos', 'shop', WEB));
    const meant = await admit(pod({ name: 'web', namespace: 'shop', labels: { app: 'web' } }), 'shop');
    expect(meant.patched.metadata?.annotations).toEqual({ 'kernelchaos.dev/skip-reason': 'not-opted-in' });
    expect(meant.patched.metadata?.labels).toEqual({ app: 'web' });
    const other = await admit(pod({ name: 'db', namespace: 'shop', labels: { app: 'db' } }), 'shop');
    expect(other.response.patch).toBeUndefined();
    expect(other.response.auditAnnotations?.['skip-reason']).toBe('not-opted-in');
  });

  it('records no-matching-experiment on an opted-in pod no experiment selects', async () => {
    hook.store.put('KernelChaos', allModeChaos('web-chaos', 'shop', WEB));
    const p = pod({ name: 'db', namespace: 'shop', labels: { app: 'db' }, annotations: { 'kernelchaos.dev/inject': 'true' } });
    const first = await admit(p, 'shop');
    expect(first.patched.metadata?.annotations?.['kernelchaos.dev/skip-reason']).toBe('no-matching-experiment');
    expect(first.patched.metadata?.labels).toEqual({ app: 'db' });
    const again = await admit(first.patched, 'shop');
    expect(again.response.patch).toBeUndefined();
  });

  it('leaves count-limited experiments (mode one) to the controller', async () => {
    hook.store.apply(namespace('chaos-mount', { 'kernelchaos.dev/injection': 'enabled' }));
    hook.store.put('KernelChaos', seedChaos());
    const { response } = await admit(pod({ name: 'mounter', namespace: 'chaos-mount' }), 'chaos-mount');
    expect(response.patch).toBeUndefined();
    expect(response.auditAnnotations?.['deferred-to-controller']).toBe('chaos-testing/kernel-chaos-example');
  });

  it('is not disturbed by a malformed experiment in the cluster state', async () => {
    hook.store.put('KernelChaos', { apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'KernelChaos', metadata: { name: 'broken', namespace: 'shop' } } as never);
    hook.store.put('KernelChaos', { ...allModeChaos('odd', 'shop'), spec: { ...allModeChaos('odd', 'shop').spec, selector: { labelSelectors: 'app=web' } } } as never);
    hook.store.put('KernelChaos', allModeChaos('web-chaos', 'shop', WEB));
    const { patched } = await admit(pod({ name: 'w', namespace: 'shop', labels: { app: 'web' }, annotations: { 'kernelchaos.dev/inject': 'true' } }), 'shop');
    expect(patched.metadata?.annotations?.['kernelchaos.dev/experiments']).toBe('shop/web-chaos');
  });

  it('ignores experiments that are being deleted', async () => {
    const chaos = allModeChaos('going', 'shop', WEB);
    chaos.metadata.deletionTimestamp = '2026-11-25T10:00:00Z';
    hook.store.put('KernelChaos', chaos);
    const { patched } = await admit(pod({ name: 'w', namespace: 'shop', labels: { app: 'web' }, annotations: { 'kernelchaos.dev/inject': 'true' } }), 'shop');
    expect(patched.metadata?.labels?.[TARGET]).toBeUndefined();
  });
});

describe('POST /mutate-pods: patches', () => {
  it('is idempotent: the patched pod sent again gets no patch', async () => {
    hook.store.put('KernelChaos', allModeChaos('web-chaos', 'shop', WEB));
    const p = pod({ name: 'web-1', namespace: 'shop', labels: { app: 'web' }, annotations: { 'kernelchaos.dev/inject': 'true' } });
    const first = await admit(p, 'shop');
    expect(first.patch.length).toBeGreaterThan(0);
    const second = await admit(first.patched, 'shop');
    expect(second.response.allowed).toBe(true);
    expect(second.response.patch).toBeUndefined();
    expect(second.response.patchType).toBeUndefined();
  });

  it('handles a pod with no labels or annotations map, created by generateName with no namespace in the object', async () => {
    hook.store.apply(namespace('batch', { 'kernelchaos.dev/injection': 'enabled' }));
    hook.store.put('KernelChaos', allModeChaos('all-batch', 'batch'));
    const p = pod({ generateName: 'job-' });
    const { patched } = await admit(p, 'batch');
    expect(patched.metadata?.labels).toEqual({ [TARGET]: 'true', [experimentLabelKey('batch', 'all-batch')]: 'true' });
    expect(patched.metadata?.namespace).toBeUndefined();
    expect(patched.metadata?.generateName).toBe('job-');
  });

  it('cannot match metadata.name field selectors for a generateName pod (no name yet)', async () => {
    hook.store.apply(namespace('batch', { 'kernelchaos.dev/injection': 'enabled' }));
    hook.store.put('KernelChaos', allModeChaos('by-name', 'batch', { fieldSelectors: { 'metadata.name': 'job-abcde' } }));
    const { patched } = await admit(pod({ generateName: 'job-' }), 'batch');
    expect(patched.metadata?.labels?.[TARGET]).toBeUndefined();
    expect(patched.metadata?.annotations?.['kernelchaos.dev/skip-reason']).toBe('no-matching-experiment');
  });

  it('labels for every matching experiment, including one from another namespace, and merges the annotation', async () => {
    hook.store.apply(namespace('shop', { 'kernelchaos.dev/injection': 'enabled' }));
    hook.store.put('KernelChaos', allModeChaos('a', 'shop', WEB));
    hook.store.put('KernelChaos', allModeChaos('b', 'sre', { namespaces: ['shop'], labelSelectors: { app: 'web' } }));
    const p = pod({ name: 'web', namespace: 'shop', labels: { app: 'web' }, annotations: { 'kernelchaos.dev/experiments': 'old/x' } });
    const { patched } = await admit(p, 'shop');
    expect(patched.metadata?.labels?.[experimentLabelKey('shop', 'a')]).toBe('true');
    expect(patched.metadata?.labels?.[experimentLabelKey('sre', 'b')]).toBe('true');
    expect(patched.metadata?.annotations?.['kernelchaos.dev/experiments']).toBe('old/x,shop/a,sre/b');
  });

  it('answers dryRun requests the same way', async () => {
    hook.store.put('KernelChaos', allModeChaos('web-chaos', 'shop', WEB));
    const p = pod({ name: 'web', namespace: 'shop', labels: { app: 'web' }, annotations: { 'kernelchaos.dev/inject': 'true' } });
    const wet = await admit(p, 'shop');
    const dry = await admit(p, 'shop', { dryRun: true });
    expect(dry.patched).toEqual(wet.patched);
  });

  it('only acts on CREATE', async () => {
    hook.store.put('KernelChaos', allModeChaos('web-chaos', 'shop', WEB));
    const p = pod({ name: 'web', namespace: 'shop', labels: { app: 'web' }, annotations: { 'kernelchaos.dev/inject': 'true' } });
    const { response } = await admit(p, 'shop', { operation: 'UPDATE', oldObject: p });
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeUndefined();
  });

  it('counts skipped pods by reason in /metrics', async () => {
    await admit(pod({ name: 'x', namespace: 'kube-system' }), 'kube-system');
    const metrics = await send(hook, 'GET', '/metrics');
    expect(metrics.text).toMatch(/kernelchaos_webhook_injector_skips_total\{reason="system-namespace"\} [1-9]/);
  });
});
