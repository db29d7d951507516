// The real CLI process: `kernelchaos webhook`, driven by signals as the kubelet does.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { FakeApiServer } from '../fakes/apiserver.js';
import { CHAOS_MESH_KERNELCHAOS_CRD, OUR_KERNELCHAOS_CRD } from '../fakes/crds.js';
import { request as httpsRequest } from 'node:https';
import type { ClientRequest } from 'node:http';
import { seedChaos } from './fixtures.js';
import { admissionReview, kernelChaosRequest, podRequest, review, send } from './helpers.js';

const repo = resolve(import.meta.dirname, '../..');
let child: ChildProcess | undefined;
let dir: string | undefined;

afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
  child = undefined;
  dir = undefined;
});

interface Started {
  port: number;
  ca: string;
  logs: () => string;
  waitForLog: (pattern: RegExp) => Promise<void>;
  exited: Promise<number | null>;
}

/** A kubeconfig file for the fake apiserver (remove its directory with rmSync(dirname(file))). */
function kubeconfigFile(api: FakeApiServer): string {
  const file = join(mkdtempSync(join(tmpdir(), 'kc-kubeconfig-')), 'config');
  writeFileSync(file, api.kubeConfig().exportConfig());
  return file;
}

async function startCli(args: string[]): Promise<Started> {
  dir = mkdtempSync(join(tmpdir(), 'kc-cli-'));
  const caFile = join(dir, 'ca.crt');
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', join(repo, 'test/tls/run-cli.ts'), 'webhook', '--self-signed', '--self-signed-ca-out', caFile, '--port', '0', '--host', '127.0.0.1', ...args],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child = proc;
  let out = '';
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of [...waiters]) if (w.pattern.test(out)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const waitForLog = (pattern: RegExp) =>
    new Promise<void>((resolveWait, reject) => {
      if (pattern.test(out)) return resolveWait();
      waiters.push({ pattern, resolve: resolveWait });
      void exited.then(() => { if (!pattern.test(out)) reject(new Error(`exited before ${pattern}: ${out}`)); });
    });
  await waitForLog(/"msg":"listening"/);
  const port = Number(/"port":(\d+)/.exec(out)?.[1]);
  return { port, ca: readFileSync(caFile, 'utf8'), logs: () => out, waitForLog, exited };
}

describe('kernelchaos webhook (CLI)', () => {
  it('on SIGTERM: /readyz fails first, in-flight requests complete, new connections are refused, exit 0', async () => {
    const cli = await startCli(['--drain-delay', '1500ms']);
    const hook = { port: cli.port, ca: cli.ca };
    expect((await send(hook, 'GET', '/readyz')).status).toBe(200);

    // A request in flight: headers and half the body sent.
    const body = Buffer.from(JSON.stringify(admissionReview(kernelChaosRequest(seedChaos()))));
    let req!: ClientRequest;
    const answer = new Promise<{ status: number; text: string }>((resolveAnswer, reject) => {
      req = httpsRequest(
        {
          host: '127.0.0.1', port: cli.port, method: 'POST', path: '/validate-kernelchaos', ca: cli.ca, servername: 'localhost', agent: false,
          headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
    });
    req.write(body.subarray(0, 40));
    await new Promise((r) => setTimeout(r, 50)); // let the request reach the server before the signal

    child!.kill('SIGTERM');
    await cli.waitForLog(/draining/);
    const during = await send(hook, 'GET', '/readyz');
    expect(during.status).toBe(503);
    expect(during.json).toMatchObject({ reason: 'draining' });
    expect(during.headers.connection).toBe('close');

    // After the delay the listener closes; the in-flight request still completes.
    await cli.waitForLog(/stopped accepting connections/);
    await expect(send(hook, 'GET', '/healthz')).rejects.toThrow(/ECONNREFUSED|ECONNRESET|socket hang up/);
    req.end(body.subarray(40));
    const done = await answer;
    expect(done.status).toBe(200);
    expect((JSON.parse(done.text) as { response: { allowed: boolean } }).response.allowed).toBe(true);

    expect(await cli.exited).toBe(0);
    expect(cli.logs()).toMatch(/drained: every in-flight request answered/);
  });

  it('runs anywhere with no flags: self-signed, and an empty store it says so about', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kc-cli-'));
    const caFile = join(dir, 'ca.crt');
    const proc = spawn(process.execPath, ['--import', 'tsx', join(repo, 'test/tls/run-cli.ts'), 'webhook', '--port', '0', '--host', '127.0.0.1', '--drain-delay', '0s', '--self-signed-ca-out', caFile], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, KUBERNETES_SERVICE_HOST: '' },
    });
    child = proc;
    let out = '';
    await new Promise<void>((r) => proc.stdout.on('data', (c: Buffer) => { out += c.toString(); if (/"msg":"listening"/.test(out)) r(); }));
    expect(out).toMatch(/no cluster and no --manifests: using an empty store/);
    expect(out).toMatch(/no --cert\/--key: a self-signed certificate/);
    const hook = { port: Number(/"port":(\d+)/.exec(out)?.[1]), ca: readFileSync(caFile, 'utf8') };
    expect((await review(hook, '/validate-kernelchaos', kernelChaosRequest(seedChaos()))).allowed).toBe(true);
    proc.kill('SIGTERM');
    expect(await new Promise((r) => proc.on('exit', r))).toBe(0);
  });

  it('takes experiments, policies and namespaces from --manifests DIR', async () => {
    const manifests = mkdtempSync(join(tmpdir(), 'kc-manifests-'));
    try {
      writeFileSync(
        join(manifests, 'cluster.yaml'),
        [
          'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels:\n    kernelchaos.dev/injection: enabled',
          'apiVersion: kernelchaos.dev/v1alpha1\nkind: KernelChaosPolicy\nmetadata:\n  name: limits\n  namespace: chaos-mount\nspec:\n  maxProbability: 50',
          'apiVersion: chaos-mesh.org/v1alpha1\nkind: KernelChaos\nmetadata:\n  name: web\n  namespace: shop\n  uid: u-1\nspec:\n  mode: all\n  selector:\n    labelSelectors:\n      app: web\n  failKernRequest:\n    failtype: 0',
        ].join('\n---\n'),
      );
      const cli = await startCli(['--drain-delay', '0s', '--manifests', manifests]);
      const hook = { port: cli.port, ca: cli.ca };
      let ready = await send(hook, 'GET', '/readyz');
      for (let i = 0; i < 200 && ready.status !== 200; i++) ready = await send(hook, 'GET', '/readyz');
      expect(ready.status).toBe(200);
      const denied = await review(hook, '/validate-kernelchaos', kernelChaosRequest(seedChaos()));
      expect(denied.status?.message).toContain('exceeds policy chaos-mount/limits maxProbability 50');
      const p = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', labels: { app: 'web' } }, spec: { containers: [] } };
      const labelled = await review(hook, '/mutate-pods', podRequest(p, 'shop'));
      expect(labelled.auditAnnotations?.experiments).toBe('shop/web');
      child!.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
    } finally {
      rmSync(manifests, { recursive: true, force: true });
    }
  });

  it('watches policies and namespaces through the Kubernetes API with --kubeconfig', async () => {
    const api = await new FakeApiServer().start();
    try {
      api.create(OUR_KERNELCHAOS_CRD());
      api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'chaos-mount' } });
      api.create({ apiVersion: 'kernelchaos.dev/v1alpha1', kind: 'KernelChaosPolicy', metadata: { name: 'limits', namespace: 'chaos-mount' }, spec: { maxProbability: 50 } });
      const kubeconfig = kubeconfigFile(api);
      const cli = await startCli(['--drain-delay', '0s', '--kubeconfig', kubeconfig]);
      const hook = { port: cli.port, ca: cli.ca };
      await cli.waitForLog(/cluster state synced/);
      await cli.waitForLog(/install profile: standalone/);
      expect((await send(hook, 'GET', '/readyz')).status).toBe(200);
      const denied = await review(hook, '/validate-kernelchaos', kernelChaosRequest(seedChaos()));
      expect(denied.status?.message).toContain('exceeds policy chaos-mount/limits maxProbability 50');
      // A policy created later arrives through the watch.
      api.create({ apiVersion: 'kernelchaos.dev/v1alpha1', kind: 'KernelChaosPolicy', metadata: { name: 'bio-only', namespace: 'chaos-mount' }, spec: { allowedFailtypes: [2] } });
      let message = '';
      for (let i = 0; i < 500 && !message.includes('chaos-mount/bio-only'); i++) {
        message = (await review(hook, '/validate-kernelchaos', kernelChaosRequest(seedChaos()))).status?.message ?? '';
      }
      expect(message).toContain('policy chaos-mount/bio-only allowedFailtypes [2]');
      child!.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      rmSync(dirname(kubeconfig), { recursive: true, force: true });
    } finally {
      await api.stop();
    }
  });

  it('reads the install profile from the installed CRD: not ready while it is missing (said why, retried), then ready and shown on /healthz; beside Chaos Mesh an integer value is written as a string', async () => {
    const api = await new FakeApiServer().start();
    try {
      const kubeconfig = kubeconfigFile(api);
      const cli = await startCli(['--drain-delay', '0s', '--kubeconfig', kubeconfig]);
      const hook = { port: cli.port, ca: cli.ca };
      await cli.waitForLog(/the kernelchaos\.chaos-mesh\.org CRD is not installed: apply manifests\/overlays\/standalone.*retrying/);
      const waiting = await send(hook, 'GET', '/readyz');
      expect(waiting.status).toBe(503);
      expect(JSON.parse(waiting.text).reason).toMatch(/install profile unknown: the kernelchaos\.chaos-mesh\.org CRD is not installed/);
      api.create(CHAOS_MESH_KERNELCHAOS_CRD());
      await cli.waitForLog(/install profile: beside Chaos Mesh \(kernelchaos\.chaos-mesh\.org: no status subresource/);
      let ready = waiting;
      for (let i = 0; i < 100 && ready.status !== 200; i++) ready = await send(hook, 'GET', '/readyz');
      expect(ready.status).toBe(200);
      expect(JSON.parse((await send(hook, 'GET', '/healthz')).text).profile).toMatch(/^beside Chaos Mesh .*value string, no scheduler/);
      const chaos = { ...seedChaos(), spec: { ...seedChaos().spec, mode: 'fixed', value: 1 } } as ReturnType<typeof seedChaos>;
      const mutated = await review(hook, '/mutate-kernelchaos', kernelChaosRequest(chaos));
      const patch = JSON.parse(Buffer.from(String(mutated.patch), 'base64').toString('utf8')) as { op: string; path: string; value: unknown }[];
      expect(patch).toContainEqual({ op: 'replace', path: '/spec/value', value: '1' });
      child!.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      rmSync(dirname(kubeconfig), { recursive: true, force: true });
    } finally {
      await api.stop();
    }
  });

  it('--crd-profile that the installed CRD contradicts: exit 2, saying which CRD is installed and what to apply', async () => {
    const api = await new FakeApiServer().start();
    try {
      api.create(OUR_KERNELCHAOS_CRD());
      const kubeconfig = kubeconfigFile(api);
      const cli = await startCli(['--drain-delay', '0s', '--kubeconfig', kubeconfig, '--crd-profile', 'chaos-mesh']);
      expect(await cli.exited).toBe(2);
      expect(cli.logs()).toMatch(/--crd-profile=chaos-mesh, but the installed kernelchaos\.chaos-mesh\.org CRD is kernelchaos's own \(standalone profile\): apply manifests\/overlays\/standalone, or drop --crd-profile/);
      rmSync(dirname(kubeconfig), { recursive: true, force: true });
    } finally {
      await api.stop();
    }
  });

  it('rejects bad flags with exit 2 and a message naming the fix', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; err: string }>((r) => {
        const p = spawn(process.execPath, ['--import', 'tsx', join(repo, 'test/tls/run-cli.ts'), 'webhook', ...args], { cwd: repo });
        let err = '';
        // Usage errors go to stderr; errors once the logger exists are log lines (stdout).
        p.stderr.on('data', (c: Buffer) => (err += c.toString()));
        p.stdout.on('data', (c: Buffer) => (err += c.toString()));
        p.on('exit', (code) => r({ code, err }));
      });
    const halfTls = await run(['--port', '0', '--cert', '/some/tls.crt']);
    expect(halfTls.code).toBe(2);
    expect(halfTls.err).toMatch(/give --cert FILE and --key FILE .* or --self-signed/);
    const badCert = await run(['--cert', '/nonexistent/tls.crt', '--key', '/nonexistent/tls.key']);
    expect(badCert.code).toBe(2);
    expect(badCert.err).toMatch(/\/nonexistent\/tls\.crt/);
    const noDir = await run(['--self-signed', '--manifests', '/nonexistent/dir']);
    expect(noDir.code).toBe(2);
    expect(noDir.err).toMatch(/--manifests: manifest directory \/nonexistent\/dir cannot be read/);
    const badDelay = await run(['--self-signed', '--drain-delay', 'soon']);
    expect(badDelay.code).toBe(2);
    expect(badDelay.err).toMatch(/--drain-delay: must be a Go duration/);
  });
});
