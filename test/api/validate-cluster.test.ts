// `validate --cluster`: policies, namespaces and the context namespace come from the cluster the
// kubeconfig names (the fake apiserver, spoken to through @kubernetes/client-node).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runValidate } from '../../src/cli/validate.js';
import { FakeApiServer } from '../fakes/apiserver.js';
import { seedChaos as seed } from '../fixtures/seed.js';

const repo = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'kc-validate-cluster-'));
const server = new FakeApiServer();
let kubeconfig = '';

beforeAll(async () => {
  await server.start();
  for (const name of ['shop', 'chaos-testing', 'chaos-mount']) server.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  server.create(parse(readFileSync(join(repo, 'examples/cluster/shop-policy.yaml'), 'utf8')) as Record<string, unknown>);
  const config = JSON.parse(server.kubeConfig().exportConfig()) as { contexts: { context: { namespace?: string } }[] };
  for (const c of config.contexts) c.context.namespace = 'shop';
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, JSON.stringify(config));
});

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runValidate(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

describe('kernelchaos validate --cluster', () => {
  it("applies the cluster's policies to a manifest without a namespace, placed in the context's namespace", async () => {
    const chaos = seed();
    delete (chaos.metadata as { namespace?: string }).namespace;
    const file = join(dir, 'exp.yaml');
    writeFileSync(file, stringify({ ...chaos, spec: { ...chaos.spec, selector: { namespaces: ['shop'] } } }));
    const offline = await run(['-f', file]);
    expect(offline.code).toBe(0);
    const r = await run(['-f', file, '--cluster', '--kubeconfig', kubeconfig, '--now', '2025-01-06T10:00:00Z']);
    expect(r.err).toBe('');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/KernelChaos\/shop\/kernel-chaos-example: spec\.failKernRequest\.probability: 100 .* exceeds policy shop\/shop-limits maxProbability 10/);
    expect(r.out).toContain('1 denied by policy');
  });

  it('refuses a namespace the cluster does not have, and warns about selected ones it lacks', async () => {
    const file = join(dir, 'ghost.yaml');
    const chaos = seed();
    writeFileSync(file, stringify({ ...chaos, metadata: { ...chaos.metadata, namespace: 'ghost' }, spec: { ...chaos.spec, selector: { namespaces: ['nowhere'] } } }));
    const r = await run(['-f', file, '--cluster', '--kubeconfig', kubeconfig]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('metadata.namespace: namespace ghost does not exist in the cluster: create it first');
    // A Namespace created by the same apply counts.
    const withNs = join(dir, 'with-ns.yaml');
    writeFileSync(withNs, `${stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ghost' } })}---\n${readFileSync(file, 'utf8')}`);
    const ok = await run(['-f', withNs, '--cluster', '--kubeconfig', kubeconfig]);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('warning: namespace nowhere does not exist in the cluster: it selects no pods');
  });

  it('exits 2 naming the server when the cluster cannot be read', async () => {
    const config = JSON.parse(readFileSync(kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
    for (const c of config.clusters) c.cluster.server = 'http://127.0.0.1:1';
    const broken = join(dir, 'broken-kubeconfig');
    writeFileSync(broken, JSON.stringify(config));
    const r = await run(['-f', join(repo, 'examples/cluster/kernel-chaos-example.yaml'), '--cluster', '--kubeconfig', broken, '--timeout', '5']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--cluster: cannot list (namespaces|kernelchaospolicies) on http:\/\/127\.0\.0\.1:1/);
    expect((await run(['-f', file0(), '--kubeconfig', kubeconfig])).code).toBe(2);
  });
});

function file0(): string {
  return join(repo, 'examples/cluster/kernel-chaos-example.yaml');
}
