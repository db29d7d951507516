// `kernelchaos validate` offline gives the webhook's verdict: every KernelChaos of examples/, as
// written, moved into each policy's namespace, tamed to fit a policy, and broken, against every
// KernelChaosPolicy in the repo (and none), inside and outside the policies' schedule windows.
// The webhook side is the real HTTPS server with the same policies in its store.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import jsonpatch from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { readManifestSources } from '../../src/api/manifests.js';
import type { KernelChaosPolicy } from '../../src/api/types.js';
import { runValidate } from '../../src/cli/validate.js';
import { truncateWarning } from '../../src/webhook/admission.js';
import { decodePatch, kernelChaosRequest, review, startTestWebhook, type TestWebhook } from './helpers.js';

const repo = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'kc-parity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Obj = Record<string, unknown> & { metadata: Record<string, unknown>; spec: Record<string, unknown> };

interface Case {
  label: string;
  object: Obj;
}

/** Inside the example policies' windows (Monday 10:00 UTC) and outside them (Sunday). */
const TIMES = ['2025-01-06T10:00:00Z', '2025-01-05T10:00:00Z'];

async function documentsOf(path: string): Promise<unknown[]> {
  return (await readManifestSources([path])).flatMap((d) => (d.ok ? [d.object] : []));
}

function variants(example: Obj, file: string, namespaces: readonly string[]): Case[] {
  const out: Case[] = [{ label: `${file}`, object: example }];
  for (const ns of namespaces) {
    const moved = structuredClone(example);
    moved.metadata.namespace = ns;
    moved.spec.selector = { namespaces: [ns] };
    out.push({ label: `${file} in ${ns}`, object: moved });
    const tamed = structuredClone(moved);
    const fault = tamed.spec.failKernRequest as Record<string, unknown>;
    tamed.spec.mode = 'one';
    tamed.spec.duration = '5m';
    fault.failtype = 0;
    fault.probability = 5;
    fault.times = 10;
    fault.callchain = [{ funcname: 'ext4_fill_super' }];
    out.push({ label: `${file} in ${ns}, within the policy`, object: tamed });
  }
  const broken = structuredClone(example);
  (broken.spec.failKernRequest as Record<string, unknown>).probability = 101;
  broken.spec.mode = 'fixed';
  out.push({ label: `${file} broken`, object: broken });
  // No namespace: both sides place it in `default`, kubectl's namespace.
  const unplaced = structuredClone(example);
  delete unplaced.metadata.namespace;
  out.push({ label: `${file} without a namespace`, object: unplaced });
  return out;
}

let hooks: TestWebhook[] = [];
const cases: Case[] = [];
let policyFiles: { file: string; policies: KernelChaosPolicy[] }[] = [];

beforeAll(async () => {
  const policyPaths = ['examples/policy/kernelchaospolicy.yaml', 'examples/cluster/shop-policy.yaml'];
  policyFiles = await Promise.all(
    policyPaths.map(async (p) => ({ file: join(repo, p), policies: (await documentsOf(join(repo, p))) as KernelChaosPolicy[] })),
  );
  const namespaces = [...new Set(policyFiles.flatMap((p) => p.policies.map((x) => x.metadata.namespace ?? 'default')))];
  const docs = await readManifestSources([join(repo, 'examples')]);
  for (const d of docs) {
    if (!d.ok || (d.object as { kind?: unknown }).kind !== 'KernelChaos') continue;
    cases.push(...variants(d.object as Obj, d.source.slice(repo.length + 1), namespaces));
  }
  hooks = await Promise.all(TIMES.map((t) => startTestWebhook({ now: () => new Date(t) })));
});

afterAll(async () => {
  await Promise.all(hooks.map((h) => h.close()));
});

async function offline(file: string, policy: string | undefined, now: string, output: 'json' | 'yaml'): Promise<{ code: number; out: string }> {
  let out = '';
  const args = ['-f', file, '--now', now, '-o', output, ...(policy ? ['--policy', policy] : [])];
  const code = await runValidate(args, { stdout: (s) => (out += s), stderr: () => {} });
  return { code, out };
}

interface Report {
  documents: { status: string; errors?: { path: string; message: string }[]; warnings: { message: string }[] }[];
}

describe('validate offline = the webhook', () => {
  it('gives the same verdict, messages, warnings and defaulted object for every example and policy', async () => {
    const outcomes = { allowed: 0, invalid: 0, denied: 0 };
    let compared = 0;
    for (const [i, c] of cases.entries()) {
      const file = join(dir, `case-${i}.yaml`);
      writeFileSync(file, stringify(c.object));
      for (const policy of [undefined, ...policyFiles]) {
        for (const [t, now] of TIMES.entries()) {
          const hook = hooks[t] as TestWebhook;
          hook.store.replace((policy?.policies ?? []).map((p) => ({ kind: 'KernelChaosPolicy' as const, object: p })));
          // kubectl sends the context namespace when the manifest has none.
          const request = kernelChaosRequest(c.object, { namespace: (c.object.metadata.namespace as string | undefined) ?? 'default' });
          const webhook = await review(hook, '/validate-kernelchaos', request);
          const local = await offline(file, policy?.file, now, 'json');
          const doc = (JSON.parse(local.out) as Report).documents[0];
          const where = `${c.label}, policy ${policy?.file ?? 'none'}, at ${now}`;
          expect(doc, where).toBeDefined();
          if (!doc) continue;
          const status = webhook.allowed ? 'valid' : webhook.status?.code === 403 ? 'denied' : 'invalid';
          expect(doc.status, where).toBe(status);
          expect(local.code, where).toBe(webhook.allowed ? 0 : 1);
          if (!webhook.allowed) {
            expect((doc.errors ?? []).map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; '), where).toBe(webhook.status?.message);
          }
          const localWarnings = [...new Set(doc.warnings.map((w) => truncateWarning(w.message)))];
          expect(localWarnings, where).toEqual(webhook.warnings ?? []);
          if (webhook.allowed) {
            // -o yaml prints what the mutating webhook's patch makes of the object.
            const mutated = decodePatch(await review(hook, '/mutate-kernelchaos', request));
            const stored = jsonpatch.applyPatch(structuredClone(c.object), mutated as jsonpatch.Operation[]).newDocument;
            expect(parse((await offline(file, policy?.file, now, 'yaml')).out), where).toEqual(stored);
            outcomes.allowed++;
          } else if (status === 'denied') outcomes.denied++;
          else outcomes.invalid++;
          compared++;
        }
      }
    }
    // Every outcome occurs, so the comparison above is not vacuous.
    expect(outcomes.allowed).toBeGreaterThan(10);
    expect(outcomes.denied).toBeGreaterThan(10);
    expect(outcomes.invalid).toBeGreaterThan(10);
    expect(compared).toBe(cases.length * (policyFiles.length + 1) * TIMES.length);
  }, 120_000);

  it('applies policies found among the inputs, and those of --policy directories', async () => {
    const shop = cases.find((c) => c.label.endsWith('in shop'));
    expect(shop).toBeDefined();
    const file = join(dir, 'shop.yaml');
    writeFileSync(file, stringify(shop?.object));
    let out = '';
    const io = { stdout: (s: string) => (out += s), stderr: () => {} };
    expect(await runValidate(['-f', file, '-f', join(repo, 'examples/cluster/shop-policy.yaml'), '--now', TIMES[0] as string], io)).toBe(1);
    expect(out).toContain('1 valid, 0 invalid, 1 denied by policy');
    out = '';
    expect(await runValidate(['-f', file, '--policy', join(repo, 'examples/cluster'), '--now', TIMES[0] as string], io)).toBe(1);
    expect(out).toMatch(/KernelChaos\/shop\/[\w-]+: spec\.failKernRequest\.probability: \d+ .*exceeds policy shop\/shop-limits maxProbability 10/);
    expect(out).toContain('0 valid, 0 invalid, 1 denied by policy');
  });
});
