// bpfki cannot fault the node: over real mutual TLS sockets, pids outside a pod container (pid 1,
// kernel threads in the root cgroup, host services) are refused, and only the identities allowed
// per service may call it; a read-only identity can read the Companion service but not inject.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateKernelChaos } from '../../src/api/validate.js';
import { BpfkiInjector } from '../../src/companion/bpfki.js';
import { CgroupResolver } from '../../src/companion/cgroup-resolver.js';
import {
  bpfkiHandlers, clientCredentials, companionHandlers, guardService, loadBpfkiService, loadCompanionService, serve, serverCredentials,
  type MtlsMaterial, type RunningServer,
} from '../../src/companion/grpc.js';
import { Companion } from '../../src/companion/lifecycle.js';
import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import { createCa, createClientCert, createServingCert, randomSerial, type PemPair } from '../../src/tls/certs.js';
import { FakeEngine, FakeStore, MemorySink, everyMinutes, fakeValidate, silentLog } from './fakes.js';

const POD_UID = '0b5c7d1e-2f3a-4b5c-8d9e-0123456789ab';
const CONTAINER = 'c'.repeat(64);
const CONTAINER_CGROUP = `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_UID.replace(/-/g, '_')}.slice/cri-containerd-${CONTAINER}.scope`;
/** pid -> its cgroup in the fixture host (a real /proc layout and real cgroup directories). */
const PIDS: Record<number, string> = {
  1: '/init.scope',
  2: '/',
  300: '/system.slice/containerd.service',
  400: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_UID.replace(/-/g, '_')}.slice`,
  500: `/${CONTAINER_CGROUP}`,
};

const dir = mkdtempSync(join(tmpdir(), 'kc-bpfki-scope-'));
const cgroupRoot = join(dir, 'cgroup');
const procRoot = join(dir, 'proc');
const engine = new FakeEngine();
const servers: RunningServer[] = [];
let companion: Companion;
let bpfkiPort = 0;
let companionPort = 0;
const refusals: string[] = [];
const material: Record<string, MtlsMaterial> = {};

function call<T>(client: grpc.Client, method: string, request: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (req: object, cb: (err: grpc.ServiceError | null, res: T) => void) => void>)[method];
    if (!fn) throw new Error(`no method ${method}`);
    fn.call(client, request, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function asClient<T>(who: string, service: 'bpfki' | 'companion', method: string, request: object): Promise<T> {
  const Client = service === 'bpfki' ? loadBpfkiService() : loadCompanionService();
  const creds = material[who];
  if (!creds) throw new Error(`no identity ${who}`);
  const client = new Client(`127.0.0.1:${service === 'bpfki' ? bpfkiPort : companionPort}`, clientCredentials(creds));
  try {
    return await call<T>(client, method, request);
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  writeFileSync(join(mkdirSync(cgroupRoot, { recursive: true }) ?? cgroupRoot, 'cgroup.controllers'), 'cpu memory\n');
  for (const [pid, cgroup] of Object.entries(PIDS)) {
    mkdirSync(join(cgroupRoot, cgroup), { recursive: true });
    mkdirSync(join(procRoot, pid), { recursive: true });
    writeFileSync(join(procRoot, pid, 'cgroup'), `0::${cgroup}\n`);
  }
  const ca = createCa({ commonName: 'scope-ca' });
  const serving = createServingCert(ca, { service: 'kernelchaos-companion', namespace: 'kernelchaos-system', extraIps: ['127.0.0.1'] });
  const pem = (p: { cert: string; key: string }): MtlsMaterial => ({ ca: Buffer.from(ca.cert), cert: Buffer.from(p.cert), key: Buffer.from(p.key) });
  material.controller = pem(createClientCert(ca, { commonName: 'chaos-controller' }));
  material.dashboard = pem(createClientCert(ca, { commonName: 'dashboard' }));
  material.intruder = pem(createClientCert(ca, { commonName: 'intruder' }));
  // Signed by the same CA, but for serving only, or with no extended key usage at all.
  material.serverOnly = pem(createServingCert(ca, { service: 'chaos-controller', namespace: 'chaos-mesh' }));
  material.noEku = pem(certWithoutEku(ca, 'chaos-controller'));
  const tls = pem(serving);

  companion = new Companion({
    node: 'node-a', store: new FakeStore(), engine, resolver: { resolve: async () => ({ kind: 'not-found', reason: 'none', tried: [] }) },
    validate: fakeValidate, parseCron: everyMinutes, sink: new MemorySink(), log: silentLog,
  });
  await companion.start();
  const injector = new BpfkiInjector({ resolver: new CgroupResolver({ cgroupRoot, procRoot }), engine, validate: validateKernelChaos, log: silentLog });
  const onRefused = (r: string): void => void refusals.push(r);
  const b = await serve(loadBpfkiService(), guardService(bpfkiHandlers(injector), { kind: 'names', names: ['chaos-controller'] }, 'bpfki.BPFKIService', onRefused),
    { host: '127.0.0.1', port: 0, credentials: serverCredentials(tls) });
  const c = await serve(loadCompanionService(), guardService(companionHandlers(companion, injector), { kind: 'names', names: ['chaos-controller', 'dashboard'] }, 'kernelchaos.v1.Companion', onRefused),
    { host: '127.0.0.1', port: 0, credentials: serverCredentials(tls) });
  servers.push(b, c);
  bpfkiPort = b.port;
  companionPort = c.port;
});

afterAll(async () => {
  await companion.stop();
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** A leaf the CA signed with no extendedKeyUsage at all: TLS accepts it for any purpose. */
function certWithoutEku(ca: PemPair, commonName: string): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const caCert = forge.pki.certificateFromPem(ca.cert);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([{ name: 'basicConstraints', cA: false }]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

const FAIL = { ftype: 0, callchain: [{ funcname: '__x64_sys_mount' }] };

describe('bpfki scope: only containers of pods on this node', () => {
  it('refuses pid 1, a kernel thread in the root cgroup, a host service and a pod-level cgroup, arming nothing', async () => {
    const before = engine.arms.length;
    for (const [pid, reason] of [[1, /cgroup \/init\.scope, which is not a container of a pod on this node/], [2, /root cgroup/], [300, /system\.slice\/containerd\.service/], [400, /not a container of a pod/]] as const) {
      await expect(asClient('controller', 'bpfki', 'FailMMOrBIO', { pid, ...FAIL })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringMatching(reason) });
    }
    expect(engine.arms.length).toBe(before);
  });

  it('arms a process inside a pod container, on that container cgroup only', async () => {
    const res = await asClient<{ ret: number; msg: string }>('controller', 'bpfki', 'FailMMOrBIO', { pid: 500, ...FAIL });
    expect(res.ret).toBe(0);
    expect(res.msg).toContain(CONTAINER_CGROUP);
    await asClient('controller', 'bpfki', 'RecoverMMOrBIO', { pid: 500, ...FAIL });
    expect(engine.arms.at(-1)?.disarmed).toBe(true);
  });

  it('refuses pid 1 of this very host with the real /proc and cgroup tree', async () => {
    const real = new CgroupResolver({ cgroupRoot: '/sys/fs/cgroup', procRoot: '/proc' });
    const r = await real.resolvePodContainerPid(1);
    expect(r.kind).not.toBe('resolved');
  });
});

describe('bpfki client identity', () => {
  it('refuses an unknown CN, and a certificate without clientAuth, before anything runs', async () => {
    const before = engine.arms.length;
    await expect(asClient('intruder', 'bpfki', 'FailMMOrBIO', { pid: 500, ...FAIL })).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED, details: 'bpfki.BPFKIService: client CN=intruder is not allowed (allowed: chaos-controller)',
    });
    // Even with an allowed CN: TLS refuses a serverAuth-only certificate, and we refuse one without any EKU.
    await expect(asClient('serverOnly', 'bpfki', 'FailMMOrBIO', { pid: 500, ...FAIL })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(asClient('noEku', 'bpfki', 'FailMMOrBIO', { pid: 500, ...FAIL })).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED, details: 'bpfki.BPFKIService: client certificate CN=chaos-controller is not issued for client authentication (extendedKeyUsage clientAuth)',
    });
    expect(engine.arms.length).toBe(before);
    expect(refusals.some((r) => r.startsWith('FailMMOrBIO: bpfki.BPFKIService: client CN=intruder'))).toBe(true);
  });

  it('lets a read-only identity read the Companion service but not inject or recover', async () => {
    await expect(asClient('dashboard', 'companion', 'ListInjections', {})).resolves.toMatchObject({ node: 'node-a' });
    await expect(asClient('dashboard', 'bpfki', 'FailMMOrBIO', { pid: 500, ...FAIL })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    await expect(asClient('dashboard', 'bpfki', 'RecoverMMOrBIO', { pid: 500, ...FAIL })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    await expect(asClient('intruder', 'companion', 'ListInjections', {})).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  });

  it('ends a refused stream with PERMISSION_DENIED', async () => {
    const client = new (loadCompanionService())(`127.0.0.1:${companionPort}`, clientCredentials(material.intruder as MtlsMaterial));
    const stream = (client as unknown as { WatchInjections(req: object): grpc.ClientReadableStream<unknown> }).WatchInjections({ include_current: true });
    const err = await new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    client.close();
  });
});
