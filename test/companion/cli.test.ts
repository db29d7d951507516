import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig, main } from '../../src/cli/companion.js';
import { clientCredentials, loadBpfkiService, loadCompanionService, type WireExperimentStatus } from '../../src/companion/grpc.js';
import { createCa, createClientCert, createServingCert } from '../../src/tls/certs.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
// What bin/kernelchaos.js does, from the TypeScript sources.
const LAUNCH = `const { main } = await import(${JSON.stringify(join(ROOT, 'src/cli/main.ts'))}); process.exitCode = await main(process.argv.slice(1));`;
const base = { cgroupRoot: '/sys/fs/cgroup', procRoot: '/proc', grpcHost: '0.0.0.0', attachMode: 'auto' as const, namespace: 'kernelchaos-system', logLevel: 'info' };

describe('kernelchaos companion options', () => {
  it('takes the node from NODE_NAME, and says which flag is missing otherwise', () => {
    const fromEnv = buildConfig({ ...base }, { NODE_NAME: 'worker-1' });
    expect(fromEnv.ok && fromEnv.config.node).toBe('worker-1');
    expect(fromEnv.ok && fromEnv.config.source).toEqual({ kind: 'kubernetes' });
    const missing = buildConfig({ ...base }, {});
    expect(missing).toEqual({ ok: false, message: expect.stringContaining('--node is required') });
  });
  it('refuses gRPC or bpfki without all three TLS files (mutual TLS only)', () => {
    expect(buildConfig({ ...base, node: 'n', grpcPort: 9443 }, {})).toMatchObject({ ok: false, message: expect.stringContaining('mutual TLS only') });
    expect(buildConfig({ ...base, node: 'n', bpfkiPort: 50051 }, {})).toMatchObject({ ok: false, message: expect.stringContaining('--bpfki-port needs') });
    // Chaos Mesh dials bpfki without TLS: allowed only on the explicit flag, bound where asked.
    expect(buildConfig({ ...base, node: 'n', bpfkiPort: 50051, bpfkiPlaintext: true, bpfkiHost: '10.0.0.5' }, {})).toMatchObject({
      ok: true,
      config: { bpfkiPort: 50051, bpfkiPlaintext: { host: '10.0.0.5' } },
    });
    expect(buildConfig({ ...base, node: 'n', bpfkiPlaintext: true }, {})).toMatchObject({ ok: false, message: expect.stringContaining('--bpfki-plaintext needs --bpfki-port') });
    expect(buildConfig({ ...base, node: 'n', tlsCert: 'a' }, {})).toMatchObject({ ok: false, message: expect.stringContaining('go together') });
    const ok = buildConfig({ ...base, node: 'n', tlsCert: 'c', tlsKey: 'k', tlsCa: 'ca' }, {});
    expect(ok.ok && ok.config.grpc).toEqual({ host: '0.0.0.0', port: 9443, tls: { certFile: 'c', keyFile: 'k', caFile: 'ca' }, clients: { kind: 'any' } });
    expect(ok.ok && ok.config.bpfkiPort).toBeUndefined();
    const tls = { tlsCert: 'c', tlsKey: 'k', tlsCa: 'ca' };
    expect(buildConfig({ ...base, ...tls, node: 'n', bpfkiPort: 50051 }, {})).toMatchObject({ ok: false, message: expect.stringContaining('--bpfki-port needs --bpfki-clients') });
    const bpfki = buildConfig({ ...base, ...tls, node: 'n', bpfkiPort: 50051, bpfkiClients: 'chaos-controller, spiffe://x', grpcClients: 'dash' }, {});
    expect(bpfki.ok && bpfki.config.bpfkiClients).toEqual({ kind: 'names', names: ['chaos-controller', 'spiffe://x'] });
    expect(bpfki.ok && bpfki.config.grpc?.clients).toEqual({ kind: 'names', names: ['dash'] });
  });
  it('refuses two sources of cluster state', () => {
    expect(buildConfig({ ...base, node: 'n', manifests: 'd', kubeconfig: 'k' }, {})).toMatchObject({ ok: false, message: expect.stringContaining('exclude each other') });
  });
  it('documents who may call bpfki and what it may fault in --help', async () => {
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
    try {
      expect(await main(['--help'])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(out).toContain('--bpfki-port');
    expect(out).toMatch(/Only the identities\s+in --bpfki-clients/);
    expect(out).toMatch(/never the root cgroup, a host\s+process or the companion itself/);
    expect(out).toContain('--cgroup-root');
  });
  it('rejects a bad port with the flag named', async () => {
    let err = '';
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
    try {
      expect(await main(['--node', 'n', '--grpc-port', 'http'])).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(err).toContain("--grpc-port");
    expect(err).toContain("must be a port number");
  });
});

describe('kernelchaos companion process (--manifests, no fault armed)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kc-companion-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports an invalid experiment as Failed over gRPC, stays up, and exits 0 on SIGTERM after detaching', async () => {
    const manifests = join(dir, 'manifests');
    const cgroupRoot = join(dir, 'cgroup');
    mkdirSync(manifests);
    mkdirSync(cgroupRoot);
    writeFileSync(join(cgroupRoot, 'cgroup.controllers'), 'memory pids\n');
    const ca = createCa();
    const serving = createServingCert(ca, { service: 'kernelchaos-companion', namespace: 'kernelchaos', extraIps: ['127.0.0.1'] });
    const client = createClientCert(ca, { commonName: 'test' });
    for (const [name, text] of Object.entries({ 'ca.crt': ca.cert, 'tls.crt': serving.cert, 'tls.key': serving.key })) writeFileSync(join(dir, name), text);
    writeFileSync(
      join(manifests, 'chaos.yaml'),
      `apiVersion: chaos-mesh.org/v1alpha1
kind: KernelChaos
metadata: {name: bad-predicate, namespace: chaos}
spec:
  mode: all
  selector: {namespaces: [app]}
  failKernRequest:
    failtype: 0
    callchain:
      - funcname: d_alloc_parallel
        parameters: "struct dentry *parent"
        predicate: "system(1)"
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: app
  uid: 11111111-2222-3333-4444-555555555555
  labels: {kernelchaos.dev/target: "true"}
  annotations: {kernelchaos.dev/experiments: chaos/bad-predicate}
spec:
  nodeName: node-1
  containers: [{name: app, image: busybox}]
status:
  phase: Running
  qosClass: BestEffort
  containerStatuses:
    - {name: app, image: busybox, imageID: busybox, ready: true, restartCount: 0, containerID: "containerd://${'ab'.repeat(32)}", state: {running: {}}}
`,
    );
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', LAUNCH, '--', 'companion', '--node', 'node-1', '--manifests', manifests,
        '--cgroup-root', cgroupRoot, '--proc-root', join(dir, 'proc'), '--grpc-host', '127.0.0.1', '--grpc-port', '0',
        '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--tls-ca', join(dir, 'ca.crt')],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const port = await new Promise<number>((resolvePort, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /"grpcPort":(\d+)/.exec(stderr);
        if (m) resolvePort(Number(m[1]));
      });
      void exited.then((code) => reject(new Error(`companion exited ${code}: ${stderr}`)));
    });
    const Client = loadCompanionService();
    const c = new Client(`127.0.0.1:${port}`, clientCredentials({ ca: Buffer.from(ca.cert), cert: Buffer.from(client.cert), key: Buffer.from(client.key) }));
    const status = await new Promise<WireExperimentStatus>((res, rej) =>
      (c as unknown as { GetExperimentStatus(r: object, cb: (e: grpc.ServiceError | null, v: WireExperimentStatus) => void): void })
        .GetExperimentStatus({ namespace: 'chaos', name: 'bad-predicate' }, (e, v) => (e ? rej(e) : res(v))));
    c.close();
    expect(status.records).toHaveLength(1);
    expect(status.records[0]).toMatchObject({ id: 'app/web/app', phase: 'Failed' });
    expect(status.records[0]?.reason).toContain('callchain[0].predicate');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('all faults detached: companion received SIGTERM');
  });

  it('with --bpfki-plaintext serves bpfki without TLS (as Chaos Mesh dials it) and answers a real request', async () => {
    const manifests = join(dir, 'plain-manifests');
    mkdirSync(manifests);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', LAUNCH, '--', 'companion', '--node', 'node-1', '--manifests', manifests,
        '--cgroup-root', join(dir, 'cgroup'), '--proc-root', join(dir, 'proc'), '--bpfki-port', '0', '--bpfki-plaintext', '--bpfki-host', '127.0.0.1'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const port = await new Promise<number>((resolvePort, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /"bpfkiPort":(\d+)/.exec(stderr);
        if (m) resolvePort(Number(m[1]));
      });
      void exited.then((code) => reject(new Error(`companion exited ${code}: ${stderr}`)));
    });
    expect(stderr).toContain('WITHOUT TLS (--bpfki-plaintext)');
    const Bpfki = loadBpfkiService();
    const b = new Bpfki(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    // A pid that does not exist: the service answers (no TLS needed) and refuses it by name.
    const answer = await new Promise<{ code?: number; details?: string }>((res) =>
      (b as unknown as { FailMMOrBIO(r: object, o: object, cb: (e: grpc.ServiceError | null) => void): void }).FailMMOrBIO(
        { pid: 999_999_999, ftype: 0, callchain: [{ funcname: '__x64_sys_mount' }] },
        { deadline: Date.now() + 10_000 },
        (e) => res(e ? { code: e.code, details: e.details } : {}),
      ),
    );
    b.close();
    expect(answer.code).not.toBe(grpc.status.UNAVAILABLE);
    expect(answer.details).toMatch(/999999999/);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
