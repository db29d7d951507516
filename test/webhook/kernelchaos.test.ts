import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jsonpatch from 'fast-json-patch';
import { allModeChaos, policy, seedChaos } from './fixtures.js';
import { decodePatch, kernelChaosRequest, review, startTestWebhook, type TestWebhook } from './helpers.js';

let hook: TestWebhook;
// A Wednesday, 10:30 UTC: inside office hours.
const NOW = new Date('2026-11-25T10:30:00Z');

beforeAll(async () => {
  hook = await startTestWebhook({ now: () => NOW });
});
afterAll(async () => hook.close());

describe('POST /validate-kernelchaos', () => {
  it("allows the seed example from Chaos Mesh's documentation, without a patch", async () => {
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(seedChaos()));
    expect(r.allowed).toBe(true);
    expect(r.status).toBeUndefined();
    expect(r.patch).toBeUndefined();
    expect(r.patchType).toBeUndefined();
  });

  it('allows a Chaos Mesh 2.x duration alone, warns on 0s, denies a negative one', async () => {
    const chaos = seedChaos() as unknown as { spec: Record<string, unknown> };
    delete chaos.spec.scheduler;
    chaos.spec.duration = '30s';
    const ok = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos));
    expect(ok.allowed).toBe(true);
    chaos.spec.duration = '0s';
    const zero = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos));
    expect(zero.allowed).toBe(true);
    expect(zero.warnings).toContain('spec.duration is 0s: the experiment ends as soon as it starts');
    chaos.spec.duration = '-1s';
    const negative = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos));
    expect(negative.allowed).toBe(false);
    expect(negative.status?.message).toContain('spec.duration: must not be negative');
  });

  it('denies a bad probability with 422 and the field path in status.message', async () => {
    const chaos = seedChaos();
    chaos.spec.failKernRequest.probability = 101;
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos));
    expect(r.allowed).toBe(false);
    expect(r.status?.code).toBe(422);
    expect(r.status?.reason).toBe('Invalid');
    expect(r.status?.message).toMatch(/spec\.failKernRequest\.probability: .*101/);
    expect(r.patch).toBeUndefined();
  });

  it("lists every field error in one message, '; '-joined", async () => {
    const chaos = seedChaos() as unknown as { spec: Record<string, unknown> };
    chaos.spec.mode = 'some';
    (chaos.spec.failKernRequest as Record<string, unknown>).failtype = 7;
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos));
    expect(r.allowed).toBe(false);
    const parts = r.status?.message.split('; ') ?? [];
    expect(parts.some((p) => p.startsWith('spec.mode: '))).toBe(true);
    expect(parts.some((p) => p.startsWith('spec.failKernRequest.failtype: '))).toBe(true);
  });

  it('denies a misspelled field naming the field it meant', async () => {
    const chaos = seedChaos() as unknown as { spec: Record<string, unknown> };
    chaos.spec.failKernRequst = chaos.spec.failKernRequest;
    delete chaos.spec.failKernRequest;
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos));
    expect(r.allowed).toBe(false);
    expect(r.status?.message).toContain('failKernRequest');
  });

  it('denies a garbage object clearly instead of failing', async () => {
    for (const object of ['just a string', 42, null, [1, 2], { kind: 'KernelChaos' }]) {
      const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(object));
      expect(r.allowed).toBe(false);
      expect([400, 422]).toContain(r.status?.code);
      expect(r.status?.message.length).toBeGreaterThan(10);
    }
  });

  it('passes warnings through, each at most 120 characters', async () => {
    const chaos = seedChaos();
    chaos.spec.failKernRequest.headers = ['linux/mmzone.h'];
    chaos.spec.failKernRequest.probability = 100;
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos));
    expect(r.allowed).toBe(true);
    expect(r.warnings?.some((w) => /headers/.test(w))).toBe(true);
    for (const w of r.warnings ?? []) expect(w.length).toBeLessThanOrEqual(120);
  });

  it('warns when a selector names a namespace that is never targeted', async () => {
    const chaos = allModeChaos('x', 'team-a', { namespaces: ['kube-system'] });
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos));
    expect(r.allowed).toBe(true);
    expect(r.warnings).toContain('spec.selector: namespace kube-system is never targeted (system namespace)');
  });

  it('takes the namespace from the request when the object has none (kubectl -n)', async () => {
    const chaos = allModeChaos('x', 'team-p');
    delete chaos.metadata.namespace;
    hook.store.put('KernelChaosPolicy', policy('team-p', 'only-bio', { allowedFailtypes: [2] }));
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos, { namespace: 'team-p' }));
    expect(r.allowed).toBe(false);
    expect(r.status?.message).toContain('team-p/only-bio');
    hook.store.delete('KernelChaosPolicy', 'team-p', 'only-bio');
  });

  it('is the same verdict under dryRun', async () => {
    const bad = seedChaos();
    bad.spec.failKernRequest.probability = 101;
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(bad, { dryRun: true }));
    expect(r.allowed).toBe(false);
    expect((await review(hook, '/validate-kernelchaos', kernelChaosRequest(seedChaos(), { dryRun: true }))).allowed).toBe(true);
  });
});

describe('namespace policies', () => {
  it('denies with 403, naming the policy, the field and the limit', async () => {
    hook.store.put('KernelChaosPolicy', policy('team-a', 'limits', { maxProbability: 50 }));
    const chaos = allModeChaos('x', 'team-a');
    chaos.spec.failKernRequest.probability = 80;
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos));
    expect(r.allowed).toBe(false);
    expect(r.status?.code).toBe(403);
    expect(r.status?.reason).toBe('Forbidden');
    expect(r.status?.message).toBe('spec.failKernRequest.probability: 80 exceeds policy team-a/limits maxProbability 50');
    chaos.spec.failKernRequest.probability = 40;
    expect((await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos))).allowed).toBe(true);
  });

  it('holds an experiment to the policies of the namespaces it targets', async () => {
    hook.store.put('KernelChaosPolicy', policy('chaos-mount', 'no-slab', { allowedFailtypes: [1, 2] }));
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(seedChaos()));
    expect(r.allowed).toBe(false);
    expect(r.status?.message).toContain('policy chaos-mount/no-slab allowedFailtypes [1, 2]');
    hook.store.delete('KernelChaosPolicy', 'chaos-mount', 'no-slab');
  });

  it('does not apply policies on UPDATE of an unchanged spec (pausing stays possible)', async () => {
    hook.store.put('KernelChaosPolicy', policy('team-u', 'strict', { allowedFailtypes: [2] }));
    const old = allModeChaos('x', 'team-u');
    const paused = structuredClone(old);
    paused.metadata.annotations = { 'experiment.chaos-mesh.org/pause': 'true' };
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(paused, { operation: 'UPDATE', oldObject: old }));
    expect(r.allowed).toBe(true);
  });
});

describe('UPDATE and DELETE', () => {
  it('denies a spec change, naming how to change an experiment', async () => {
    const old = allModeChaos('x', 'team-b');
    const changed = structuredClone(old);
    changed.spec.failKernRequest.probability = 10;
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(changed, { operation: 'UPDATE', oldObject: old }));
    expect(r.allowed).toBe(false);
    expect(r.status?.code).toBe(422);
    expect(r.status?.message).toMatch(/^spec: a KernelChaos spec cannot change after creation/);
    expect(r.status?.message).toContain('experiment.chaos-mesh.org/pause');
  });

  it('allows pausing and resuming by annotation, and label changes', async () => {
    const old = allModeChaos('x', 'team-b');
    const paused = structuredClone(old);
    paused.metadata.annotations = { 'experiment.chaos-mesh.org/pause': 'true' };
    paused.metadata.labels = { team: 'b' };
    expect((await review(hook, '/validate-kernelchaos', kernelChaosRequest(paused, { operation: 'UPDATE', oldObject: old }))).allowed).toBe(true);
    const resumed = structuredClone(paused);
    resumed.metadata.annotations = { 'experiment.chaos-mesh.org/pause': 'false' };
    expect((await review(hook, '/validate-kernelchaos', kernelChaosRequest(resumed, { operation: 'UPDATE', oldObject: paused }))).allowed).toBe(true);
  });

  it('treats a spec that differs only by defaults as unchanged', async () => {
    const old = allModeChaos('x', 'team-b'); // selector {} (stored before defaulting)
    const defaulted = structuredClone(old);
    defaulted.spec.selector = { namespaces: ['team-b'] };
    expect((await review(hook, '/validate-kernelchaos', kernelChaosRequest(defaulted, { operation: 'UPDATE', oldObject: old }))).allowed).toBe(true);
  });

  it('allows DELETE, even of an object that would no longer validate', async () => {
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(null, { operation: 'DELETE', oldObject: { spec: 'garbage' } }));
    expect(r.allowed).toBe(true);
  });
});

describe('POST /mutate-kernelchaos', () => {
  it('defaults selector.namespaces to the own namespace as a JSONPatch', async () => {
    const chaos = allModeChaos('x', 'team-c');
    const r = await review(hook, '/mutate-kernelchaos', kernelChaosRequest(chaos));
    expect(r.allowed).toBe(true);
    expect(r.patchType).toBe('JSONPatch');
    const patched = jsonpatch.applyPatch(structuredClone(chaos), decodePatch(r) as jsonpatch.Operation[]).newDocument;
    expect(patched.spec.selector.namespaces).toEqual(['team-c']);
    // The defaulted object needs no further patch (reinvocation adds nothing).
    const again = await review(hook, '/mutate-kernelchaos', kernelChaosRequest(patched));
    expect(again.patch).toBeUndefined();
    expect(again.patchType).toBeUndefined();
  });

  it('defaults from the request namespace when the object has none (kubectl -n), leaving metadata alone', async () => {
    const chaos = allModeChaos('x', 'team-d');
    delete chaos.metadata.namespace;
    const r = await review(hook, '/mutate-kernelchaos', kernelChaosRequest(chaos, { namespace: 'team-d' }));
    const patch = decodePatch(r);
    expect(patch).toEqual([{ op: 'add', path: '/spec/selector/namespaces', value: ['team-d'] }]);
  });

  it('denies an invalid object rather than defaulting it', async () => {
    const chaos = seedChaos();
    chaos.spec.failKernRequest.probability = 101;
    const r = await review(hook, '/mutate-kernelchaos', kernelChaosRequest(chaos));
    expect(r.allowed).toBe(false);
    expect(r.patch).toBeUndefined();
    expect(r.status?.message).toContain('spec.failKernRequest.probability');
  });
});

describe('POST /validate-kernelchaospolicy', () => {
  const policyRequest = (object: unknown) => ({
    kind: { group: 'kernelchaos.dev', version: 'v1alpha1', kind: 'KernelChaosPolicy' },
    resource: { group: 'kernelchaos.dev', version: 'v1alpha1', resource: 'kernelchaospolicies' },
    namespace: 'team-a',
    object,
  });

  it('allows a valid policy and denies a bad one with the path', async () => {
    const good = policy('team-a', 'limits', { maxProbability: 50, maxDuration: '10m', allowedFailtypes: [0, 1] });
    expect((await review(hook, '/validate-kernelchaospolicy', policyRequest(good))).allowed).toBe(true);
    const bad = policy('team-a', 'limits', { maxProbability: 500 });
    const r = await review(hook, '/validate-kernelchaospolicy', policyRequest(bad));
    expect(r.allowed).toBe(false);
    expect(r.status?.code).toBe(422);
    expect(r.status?.message).toContain('spec.maxProbability');
  });
});
