// `kernelchaos controller` as a user runs it: flags, a kubeconfig file, SIGTERM releases the lease.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { experimentLabelKey } from '../../src/api/labels.js';
import { main } from '../../src/cli/controller.js';
import { FakeApiServer } from '../fakes/apiserver.js';
import { waitFor } from '../fakes/wait.js';
import { KC, clients, experimentBody, podBody } from './harness.js';
import { CHAOS_MESH_KERNELCHAOS_CRD, OUR_KERNELCHAOS_CRD } from '../fakes/crds.js';

const repo = resolve(import.meta.dirname, '../..');
let server: FakeApiServer;
let dir: string;

beforeEach(async () => {
  server = await new FakeApiServer().start();
  dir = await mkdtemp(join(tmpdir(), 'kc-cli-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('kernelchaos controller', () => {
  it('refuses bad flags and a missing kubeconfig with a message naming the flag', async () => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((m: unknown) => void errors.push(String(m)));
    const written: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
    expect(await main(['--health-port', 'x'])).toBe(2);
    expect(await main(['--kubeconfig', join(dir, 'missing')])).toBe(2);
    expect(await main(['--no-such-flag'])).toBe(2);
    expect(await main(['--dry-run'])).toBe(2);
    stderr.mockRestore();
    expect(written[0]).toContain("option '--health-port <n>' argument 'x' is invalid. must be a port number 0..65535, got 'x'");
    expect(errors).toEqual([
      `kernelchaos controller: --kubeconfig ${join(dir, 'missing')}: no such file`,
      'kernelchaos controller: --manifests and --dry-run go together (a directory cannot be patched); for a cluster use --kubeconfig',
    ]);
  });

  it('--manifests DIR --dry-run prints the targets of the seed example without a cluster', async () => {
    await writeFile(join(dir, 'seed.yaml'), [
      'apiVersion: chaos-mesh.org/v1alpha1',
      'kind: KernelChaos',
      'metadata: {name: kernel-chaos-example, namespace: chaos-testing}',
      'spec:',
      '  mode: one',
      '  selector: {namespaces: [chaos-mount]}',
      "  failKernRequest: {callchain: [{funcname: '__x64_sys_mount'}], failtype: 0}",
      '---',
      'apiVersion: v1',
      'kind: Namespace',
      'metadata: {name: chaos-mount, labels: {kernelchaos.dev/injection: enabled}}',
      ...['m-0', 'm-1', 'm-2'].flatMap((n) => ['---', 'apiVersion: v1', 'kind: Pod', `metadata: {name: ${n}, namespace: chaos-mount}`, 'spec: {containers: [{name: app, image: busybox}]}']),
      '',
    ].join('\n'));
    const out: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((m: unknown) => void out.push(String(m)));
    expect(await main(['--manifests', dir, '--dry-run', '--output', 'json'])).toBe(0);
    const result = JSON.parse(out.join('\n')) as { experiments: Array<{ experiment: string; plan: string; targets: string[] }>; actions: string[]; problems: unknown[] };
    expect(result.problems).toEqual([]);
    expect(result.experiments).toHaveLength(1);
    expect(result.experiments[0]?.experiment).toBe('chaos-testing/kernel-chaos-example');
    expect(result.experiments[0]?.plan).toBe('active');
    expect(result.experiments[0]?.targets).toHaveLength(1);
    expect(result.experiments[0]?.targets[0]).toMatch(/^chaos-mount\/m-[012]$/);
    expect(result.actions[0]).toBe(`label pod ${result.experiments[0]?.targets[0]} with [chaos-testing/kernel-chaos-example]`);
    // The same choice on every run (seeded by the experiment, not random).
    out.length = 0;
    expect(await main(['--manifests', dir, '--dry-run', '--output', 'json'])).toBe(0);
    expect((JSON.parse(out.join('\n')) as typeof result).experiments[0]?.targets).toEqual(result.experiments[0]?.targets);
  });

  it('runs against the cluster of --kubeconfig, labels pods, and releases the lease on SIGTERM', async () => {
    server.create(OUR_KERNELCHAOS_CRD());
    const file = await kubeconfigFile();
    const c = clients(server.kubeConfig('user'));
    await c.core.createNamespace({ body: { metadata: { name: 'apps', labels: { 'kernelchaos.dev/injection': 'enabled' } } } });
    await c.core.createNamespace({ body: { metadata: { name: 'chaos-system' } } });
    await c.core.createNamespacedPod({ namespace: 'apps', body: podBody('p', { app: 'web' }) });
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);

    const running = main(['--kubeconfig', file, '--namespace', 'chaos-system', '--identity', 'cli-replica', '--log-level', 'error']);
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: 'apps', body: experimentBody('exp', { mode: 'one' }) });
    await waitFor('pod labelled', async () => (await c.core.readNamespacedPod({ namespace: 'apps', name: 'p' })).metadata?.labels?.[experimentLabelKey('apps', 'exp')] === 'true');
    const lease = server.get<{ spec: { holderIdentity?: string } }>('coordination.k8s.io/v1', 'Lease', 'chaos-system', 'kernelchaos-controller');
    expect(lease?.spec.holderIdentity).toBe('cli-replica');

    process.emit('SIGTERM');
    expect(await running).toBe(0);
    const released = server.get<{ spec: { holderIdentity?: string } }>('coordination.k8s.io/v1', 'Lease', 'chaos-system', 'kernelchaos-controller');
    expect(released?.spec.holderIdentity).toBeUndefined();
  });

  it('--crd-profile that the installed CRD contradicts: exit 2 with one log line naming the installed CRD and the overlay to apply', async () => {
    server.create(CHAOS_MESH_KERNELCHAOS_CRD());
    const file = await kubeconfigFile();
    // The logger writes to fd 1 directly: run the CLI as a process and read its output.
    const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', join(repo, 'test/tls/run-cli.ts'), 'controller', '--kubeconfig', file, '--crd-profile', 'standalone', '--log-format', 'json'], { cwd: repo });
      let out = '';
      p.stdout.on('data', (c: Buffer) => (out += c.toString()));
      p.stderr.on('data', (c: Buffer) => (out += c.toString()));
      p.on('exit', (code) => resolve({ code, out }));
    });
    expect(run.code).toBe(2);
    const errors = run.out.split('\n').filter((l) => l.includes('"level":50')).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(errors).toEqual([
      "install profile: --crd-profile=standalone, but the installed kernelchaos.chaos-mesh.org CRD is Chaos Mesh's (beside-Chaos-Mesh profile): apply manifests/overlays/with-chaos-mesh, or drop --crd-profile to follow the CRD",
    ]);
  });
});

async function kubeconfigFile(): Promise<string> {
  const file = join(dir, 'kubeconfig');
  await writeFile(file, [
    'apiVersion: v1',
    'kind: Config',
    `clusters: [{name: fake, cluster: {server: "${server.url}", insecure-skip-tls-verify: true}}]`,
    'users: [{name: u, user: {token: cli}}]',
    'contexts: [{name: fake, context: {cluster: fake, user: u}}]',
    'current-context: fake',
    '',
  ].join('\n'));
  return file;
}
