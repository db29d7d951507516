// Schedule and Workflow admission over real TLS: Chaos Mesh's manifests (test/fixtures/chaos-mesh)
// get Chaos Mesh's verdict, with every field error at once, and a hostile Schedule never takes the server down.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { review, startTestWebhook, type TestWebhook } from './helpers.js';

let hook: TestWebhook;
beforeAll(async () => {
  hook = await startTestWebhook({});
});
afterAll(async () => hook.close());

const fixture = (name: string): Record<string, unknown> =>
  parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'chaos-mesh', name), 'utf8')) as Record<string, unknown>;

function request(object: unknown, resource: 'schedules' | 'workflows') {
  return {
    kind: { group: 'chaos-mesh.org', version: 'v1alpha1', kind: resource === 'schedules' ? 'Schedule' : 'Workflow' },
    resource: { group: 'chaos-mesh.org', version: 'v1alpha1', resource },
    namespace: 'chaos-mesh',
    object,
  };
}

describe('POST /validate-schedule and /validate-workflow', () => {
  it('allows a KernelChaos Schedule and Workflow, denies the broken ones with every field path', async () => {
    expect((await review(hook, '/validate-schedule', request(fixture('composed-schedule-kernelchaos.yaml'), 'schedules'))).allowed).toBe(true);
    expect((await review(hook, '/validate-workflow', request(fixture('composed-workflow-kernelchaos.yaml'), 'workflows'))).allowed).toBe(true);
    const bad = await review(hook, '/validate-schedule', request(fixture('composed-schedule-kernelchaos-bad.yaml'), 'schedules'));
    expect(bad.allowed).toBe(false);
    expect(bad.status?.code).toBe(422);
    const fields = [...(bad.status?.message ?? '').matchAll(/(?:^|; )(spec\.[\w.[\]]+): /g)].map((m) => m[1]);
    expect(fields).toEqual(['spec.concurrencyPolicy', 'spec.historyLimit', 'spec.kernelChaos.failKernRequest.probability', 'spec.kernelChaos.value', 'spec.schedule', 'spec.startingDeadlineSeconds']);
    const duration = await review(hook, '/validate-workflow', request(fixture('composed-workflow-kernelchaos-duration.yaml'), 'workflows'));
    expect(duration.status?.message).toMatch(/^spec\.templates\[0\]\.kernelChaos\.duration: must not be set in a Workflow/);
  });

  it("UPDATE: a status write or metadata edit (the Schedule's controller updates the whole object) passes; a changed spec is checked in full", async () => {
    const bad = fixture('composed-schedule-kernelchaos-bad.yaml');
    const withStatus = { ...bad, status: { active: [], time: '2026-12-01T00:00:00Z' } };
    expect((await review(hook, '/validate-schedule', { ...request(withStatus, 'schedules'), operation: 'UPDATE', oldObject: bad })).allowed).toBe(true);
    const good = fixture('composed-schedule-kernelchaos.yaml');
    const edited = await review(hook, '/validate-schedule', { ...request(bad, 'schedules'), operation: 'UPDATE', oldObject: good });
    expect(edited.allowed).toBe(false);
    expect(edited.status?.code).toBe(422);
  });

  it("allows a Schedule of another chaos kind, saying it was not checked (Chaos Mesh's webhook is)", async () => {
    const r = await review(hook, '/validate-schedule', request(fixture('cm-examples-schedule-podchaos.yaml'), 'schedules'));
    expect(r.allowed).toBe(true);
    expect(r.warnings?.some((w) => w.startsWith('not checked by kernelchaos: spec.podChaos'))).toBe(true);
  });

  it('answers hostile Schedules and keeps serving', async () => {
    const deep: Record<string, unknown> = {};
    let cursor = deep;
    for (let i = 0; i < 200; i += 1) cursor = (cursor.n = {}) as Record<string, unknown>;
    for (const object of [null, 'x', [], { kind: 'Schedule', spec: { schedule: 'a'.repeat(100_000), type: {}, kernelChaos: [] } }, { spec: deep }, { kind: 'Schedule', spec: { type: 'Workflow', workflow: { templates: Array.from({ length: 2000 }, () => ({ templateType: 'KernelChaos' })) } } }]) {
      const r = await review(hook, '/validate-schedule', request(object, 'schedules'));
      expect(r.allowed).toBe(false);
      expect(r.status?.message.length).toBeGreaterThan(5);
    }
    expect((await review(hook, '/validate-schedule', request(fixture('composed-schedule-kernelchaos.yaml'), 'schedules'))).allowed).toBe(true);
  });
});
