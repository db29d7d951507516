// The pure handlers, without sockets: the cases that matter for cluster safety and the response
// invariants the apiserver enforces.
import { beforeAll, describe, expect, it } from 'vitest';
import { InMemoryStore } from '../../src/kube/memory.js';
import { allow, allowWithPatch, deny, parseAdmissionReview, truncateWarning } from '../../src/webhook/admission.js';
import type { WebhookContext } from '../../src/webhook/context.js';
import { mutateKernelChaos, reviewKernelChaos } from '../../src/webhook/kernelchaos.js';
import { mutatePod } from '../../src/webhook/pods.js';
import { allModeChaos, pod } from './fixtures.js';

let ctx: WebhookContext;
beforeAll(async () => {
  const store = new InMemoryStore();
  await store.start();
  ctx = { store, now: () => new Date('2026-11-25T10:30:00Z'), ownNamespace: 'kernelchaos-system' };
});

describe('response invariants', () => {
  it('truncates warnings to 120 characters and flattens newlines', () => {
    const long = truncateWarning('x'.repeat(500));
    expect(long).toHaveLength(120);
    expect(long.endsWith('...')).toBe(true);
    expect(truncateWarning('a\nb')).toBe('a b');
    expect(allow('u', ['w'.repeat(200), 'w'.repeat(200)]).response.warnings).toEqual(['w'.repeat(117) + '...']);
  });

  it('keeps the warnings within the apiserver\'s 4096 characters in total, saying how many were left out', () => {
    const many = Array.from({ length: 100 }, (_, i) => `warning ${i} `.padEnd(120, 'x'));
    const out = allow('u', many).response.warnings ?? [];
    expect(out.join('').length).toBeLessThanOrEqual(4096);
    expect(out.every((w) => w.length <= 120)).toBe(true);
    expect(out[out.length - 1]).toBe(`${100 - (out.length - 1)} more warning(s) not shown`);
    expect(out.length).toBeGreaterThan(30);
  });

  it('never carries a patch without patchType, nor an empty patch', () => {
    expect(allowWithPatch('u', []).response).toEqual({ uid: 'u', allowed: true });
    const r = allowWithPatch('u', [{ op: 'add', path: '/a', value: 1 }]).response;
    expect(r.patchType).toBe('JSONPatch');
    expect(JSON.parse(Buffer.from(r.patch ?? '', 'base64').toString())).toEqual([{ op: 'add', path: '/a', value: 1 }]);
  });

  it('puts the denial reason in status.message with an HTTP-style code and reason', () => {
    expect(deny('u', 403, 'no').response.status).toEqual({ code: 403, message: 'no', reason: 'Forbidden' });
    expect(deny('u', 422, 'bad').response.status?.reason).toBe('Invalid');
  });

  it('refuses envelopes it cannot answer, naming what is wrong', () => {
    expect(parseAdmissionReview({ request: { uid: 'x', operation: 'PATCH' } })).toEqual({
      ok: false,
      message: 'request.operation: must be CREATE, UPDATE, DELETE or CONNECT, got "PATCH"',
    });
    expect(parseAdmissionReview({ kind: 'Pod', request: { uid: 'x' } }).ok).toBe(false);
    expect(parseAdmissionReview({ request: { uid: '' } }).ok).toBe(false);
    expect(parseAdmissionReview({ request: { uid: 'x' } }).ok).toBe(true);
  });
});

describe('cluster safety', () => {
  it('lets the controller remove its finalizer from an old object that newer rules reject', () => {
    const old = allModeChaos('legacy', 'team-a') as unknown as Record<string, Record<string, unknown>>;
    (old.spec as Record<string, unknown>).failKernRequest = { failtype: 9 }; // invalid today
    const deleting = structuredClone(old);
    deleting.metadata = { ...deleting.metadata, deletionTimestamp: '2026-11-25T10:00:00Z', finalizers: [] };
    (old.metadata as Record<string, unknown>).finalizers = ['kernelchaos.dev/pod-labels'];
    const request = { uid: 'u', operation: 'UPDATE' as const, namespace: 'team-a', object: deleting, oldObject: old };
    expect(reviewKernelChaos(request, ctx).response.allowed).toBe(true);
    expect(mutateKernelChaos(request, ctx).response).toEqual({ uid: 'u', allowed: true });
  });

  it('never patches a pod on DELETE or CONNECT, nor an unknown kind of object', () => {
    expect(mutatePod({ uid: 'u', operation: 'DELETE', namespace: 'a', oldObject: pod({ name: 'p' }) }, ctx).response).toEqual({ uid: 'u', allowed: true });
    const garbage = mutatePod({ uid: 'u', operation: 'CREATE', namespace: 'a', object: 'not a pod' }, ctx).response;
    expect(garbage.allowed).toBe(false);
    expect(garbage.status?.code).toBe(400);
  });
});
