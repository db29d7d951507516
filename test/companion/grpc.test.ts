import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateKernelChaos } from '../../src/api/validate.js';
import { BpfkiInjector } from '../../src/companion/bpfki.js';
import type { PodContainerResolution, Resolution } from '../../src/companion/cgroup-resolver.js';
import {
  bpfkiHandlers,
  clientCredentials,
  companionHandlers,
  loadBpfkiService,
  loadCompanionService,
  serve,
  serverCredentials,
  watchedServerCredentials,
  type MtlsMaterial,
  type RunningServer,
  type WireExperimentStatus,
  type WireInjection,
  type WireInjectionChange,
} from '../../src/companion/grpc.js';
import { Companion } from '../../src/companion/lifecycle.js';
import { createCa, createClientCert, createServingCert, type PemPair } from '../../src/tls/certs.js';
import { FakeClock, FakeEngine, FakeStore, MemorySink, chaosObject, everyMinutes, fakeValidate, podObject, silentLog } from './fakes.js';

const hex = (n: number): string => n.toString(16).padStart(64, '0');

let ca: PemPair;
let tls: MtlsMaterial;
let clientTls: MtlsMaterial;
let companionServer: RunningServer;
let bpfkiServer: RunningServer;
let store: FakeStore;
let engine: FakeEngine;
let companion: Companion;
let injector: BpfkiInjector;
const CompanionClient = loadCompanionService();
const BpfkiClient = loadBpfkiService();

function unary<T>(client: grpc.Client, method: string, request: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (req: object, cb: (err: grpc.ServiceError | null, res: T) => void) => void>)[method];
    if (!fn) throw new Error(`no method ${method}`);
    fn.call(client, request, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

beforeAll(async () => {
  ca = createCa({ commonName: 'test-ca' });
  const serving = createServingCert(ca, { service: 'kernelchaos-companion', namespace: 'kernelchaos', extraIps: ['127.0.0.1'] });
  const client = createClientCert(ca, { commonName: 'chaos-controller' });
  tls = { ca: Buffer.from(ca.cert), cert: Buffer.from(serving.cert), key: Buffer.from(serving.key) };
  clientTls = { ca: Buffer.from(ca.cert), cert: Buffer.from(client.cert), key: Buffer.from(client.key) };

  store = new FakeStore();
  engine = new FakeEngine();
  store.put('KernelChaos', chaosObject('exp'));
  store.put('Pod', podObject('web', { experiments: ['chaos/exp'], containers: [{ name: 'app', id: hex(1) }] }));
  const resolver = {
    resolve: async (): Promise<Resolution> => ({ kind: 'resolved', path: '/sys/fs/cgroup/x', cgroupId: 4242n, via: 'systemd' }),
  };
  companion = new Companion({
    node: 'node-a', store, engine, resolver, validate: fakeValidate, parseCron: everyMinutes, sink: new MemorySink(), log: silentLog,
    clock: new FakeClock(new Date('2026-01-01T10:00:30Z').getTime()),
  });
  await companion.start();
  const pidResolver = {
    resolvePodContainerPid: async (pid: number): Promise<PodContainerResolution> =>
      pid === 777
        ? { kind: 'resolved', path: '/sys/fs/cgroup/kubepods.slice/target.scope', cgroupId: 9001n, via: 'proc', container: { podUid: 'u', containerId: hex(7) } }
        : { kind: 'not-found', reason: `no process ${pid} on this node`, tried: [] },
  };
  // The real validator: bpfki requests are parsed exactly as KernelChaos manifests are.
  injector = new BpfkiInjector({ resolver: pidResolver, engine, validate: validateKernelChaos, log: silentLog });
  companionServer = await serve(CompanionClient, companionHandlers(companion, injector), { host: '127.0.0.1', port: 0, credentials: serverCredentials(tls) });
  bpfkiServer = await serve(BpfkiClient, bpfkiHandlers(injector), { host: '127.0.0.1', port: 0, credentials: serverCredentials(tls) });
});

afterAll(async () => {
  await companion.stop();
  await companionServer.stop();
  await bpfkiServer.stop();
});

describe('kernelchaos.v1.Companion over mutual TLS', () => {
  it('lists injections with their counters', async () => {
    const fault = engine.live()[0];
    if (!fault) throw new Error('nothing armed');
    fault.calls = 12n;
    fault.faults = 5n;
    const client = new CompanionClient(`127.0.0.1:${companionServer.port}`, clientCredentials(clientTls));
    const res = await unary<{ node: string; injections: WireInjection[] }>(client, 'ListInjections', {});
    client.close();
    expect(res.node).toBe('node-a');
    expect(res.injections).toHaveLength(1);
    expect(res.injections[0]).toMatchObject({
      experiment: { namespace: 'chaos', name: 'exp', uid: 'uid-exp' },
      source: 'kernelchaos',
      cgroup_ids: ['4242'],
      containers: ['app/web/app'],
      attach_mode: 'trampoline',
      calls: '12',
      faults: '5',
      closes_at: '',
    });
  });

  it('answers the status of one experiment, and says NOT_FOUND / INVALID_ARGUMENT clearly', async () => {
    const client = new CompanionClient(`127.0.0.1:${companionServer.port}`, clientCredentials(clientTls));
    const status = await unary<WireExperimentStatus>(client, 'GetExperimentStatus', { namespace: 'chaos', name: 'exp' });
    expect(status).toMatchObject({ schedule_phase: 'active', node: 'node-a', next_boundary: '' });
    expect(status.records).toEqual([expect.objectContaining({ id: 'app/web/app', phase: 'Injected', injected_count: 1 })]);
    expect(status.injection?.cgroup_ids).toEqual(['4242']);
    await expect(unary(client, 'GetExperimentStatus', { namespace: 'chaos', name: 'nope' })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: 'no KernelChaos chaos/nope targets a pod on node node-a',
    });
    await expect(unary(client, 'GetExperimentStatus', { namespace: 'chaos' })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    client.close();
  });

  it('streams changes as they happen', async () => {
    const client = new CompanionClient(`127.0.0.1:${companionServer.port}`, clientCredentials(clientTls));
    const call = (client as unknown as { WatchInjections(req: object): grpc.ClientReadableStream<WireInjectionChange> }).WatchInjections({ include_current: true });
    const got: WireInjectionChange[] = [];
    const twoChanges = new Promise<void>((resolve, reject) => {
      call.on('data', (c: WireInjectionChange) => {
        got.push(c);
        if (got.length === 1) {
          // The first message is the current injection; now make a change.
          store.put('KernelChaos', chaosObject('second', { uid: 'uid-2' }));
          store.put('Pod', podObject('web', { experiments: ['chaos/exp', 'chaos/second'], containers: [{ name: 'app', id: hex(1) }] }));
          void companion.reconcile();
        }
        if (got.length === 2) resolve();
      });
      call.on('error', (e) => (e as grpc.ServiceError).code === grpc.status.CANCELLED ? undefined : reject(e));
    });
    await twoChanges;
    call.cancel();
    client.close();
    expect(got[0]).toMatchObject({ kind: 'ARMED', reason: 'current', experiment: { name: 'exp' } });
    expect(got[1]).toMatchObject({ kind: 'ARMED', experiment: { name: 'second' }, injection: { cgroup_ids: ['4242'] } });
  });
});

describe('TLS refusals', () => {
  it('refuses a client without a certificate', async () => {
    const client = new CompanionClient(`127.0.0.1:${companionServer.port}`, grpc.credentials.createSsl(tls.ca));
    await expect(unary(client, 'ListInjections', {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    client.close();
  });
  it('refuses a client whose certificate another CA signed', async () => {
    const rogueCa = createCa({ commonName: 'rogue' });
    const rogue = createClientCert(rogueCa, { commonName: 'intruder' });
    const client = new CompanionClient(`127.0.0.1:${companionServer.port}`, clientCredentials({ ca: tls.ca, cert: Buffer.from(rogue.cert), key: Buffer.from(rogue.key) }));
    await expect(unary(client, 'ListInjections', {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    client.close();
  });
  it('refuses plaintext', async () => {
    const client = new CompanionClient(`127.0.0.1:${companionServer.port}`, grpc.credentials.createInsecure());
    await expect(unary(client, 'ListInjections', {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    client.close();
  });
  it('refuses a bpfki caller without a certificate too', async () => {
    const client = new BpfkiClient(`127.0.0.1:${bpfkiServer.port}`, grpc.credentials.createInsecure());
    await expect(unary(client, 'FailMMOrBIO', { pid: 777, ftype: 0 })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    client.close();
  });
});

describe('bpfki.BPFKIService', () => {
  it('FailMMOrBIO arms a fault on the pid\'s cgroup, parsed like a KernelChaos; RecoverMMOrBIO disarms it', async () => {
    const client = new BpfkiClient(`127.0.0.1:${bpfkiServer.port}`, clientCredentials(clientTls));
    const request = {
      pid: 777,
      ftype: 1,
      callchain: [{ funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name', predicate: 'STRNCMP(name->name, "bananas", 8)' }],
      probability: 0.1,
      times: 3,
    };
    const before = engine.arms.length;
    const res = await unary<{ ret: number; msg: string }>(client, 'FailMMOrBIO', request);
    expect(res.ret).toBe(0);
    expect(res.msg).toContain('target.scope');
    const armed = engine.arms[before];
    expect(armed?.targets).toEqual([9001n]);
    expect(armed?.request).toMatchObject({ failtype: 1, probability: 10, times: 3 });
    expect(armed?.request.callchain[0]?.predicate?.kind).toBe('strcmp');
    // Idempotent: the same request again does not arm twice.
    await unary(client, 'FailMMOrBIO', request);
    expect(engine.arms.length).toBe(before + 1);
    const listed = await unary<{ injections: WireInjection[] }>(
      new CompanionClient(`127.0.0.1:${companionServer.port}`, clientCredentials(clientTls)), 'ListInjections', {});
    expect(listed.injections.some((i) => i.source === 'bpfki' && i.experiment.uid === 'bpfki/pid-777')).toBe(true);
    const rec = await unary<{ ret: number; msg: string }>(client, 'RecoverMMOrBIO', request);
    expect(rec).toMatchObject({ ret: 0 });
    expect(armed?.disarmed).toBe(true);
    expect(injector.injections()).toHaveLength(0);
    client.close();
  });

  it('rejects a predicate that is not a C expression over the parameters, before anything is armed', async () => {
    const client = new BpfkiClient(`127.0.0.1:${bpfkiServer.port}`, clientCredentials(clientTls));
    const before = engine.arms.length;
    const err = await unary(client, 'FailMMOrBIO', {
      pid: 777, ftype: 0,
      callchain: [{ funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent', predicate: '1; } int evil() { return 0' }],
    }).catch((e: grpc.ServiceError) => e);
    expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect((err as grpc.ServiceError).details).toMatch(/callchain\[0\]\.predicate/);
    expect(engine.arms.length).toBe(before);
    client.close();
  });

  it('says why for an unknown pid, a percent sent as probability, and the methods it does not implement', async () => {
    const client = new BpfkiClient(`127.0.0.1:${bpfkiServer.port}`, clientCredentials(clientTls));
    await expect(unary(client, 'FailMMOrBIO', { pid: 12345, ftype: 0 })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'no process 12345 on this node' });
    await expect(unary(client, 'FailMMOrBIO', { pid: 777, ftype: 0, probability: 50 })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('fraction 0..1') });
    await expect(unary(client, 'SetTimeVal', { pid: 777 })).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    // Recovering something never injected is not an error (Chaos Mesh retries recoveries).
    await expect(unary(client, 'RecoverMMOrBIO', { pid: 4 })).resolves.toMatchObject({ ret: 0 });
    client.close();
  });
});

describe('certificate rotation', () => {
  it('serves a rotated certificate and CA from the same files without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-grpc-rotate-'));
    const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') };
    const issue = (): { ca: PemPair; client: MtlsMaterial } => {
      const newCa = createCa({ commonName: 'rotating-ca' });
      const server = createServingCert(newCa, { service: 'kernelchaos-companion', namespace: 'kernelchaos', extraIps: ['127.0.0.1'] });
      // Write the key before the certificate, as a Secret update swaps both at once.
      writeFileSync(files.keyFile, server.key);
      writeFileSync(files.certFile, server.cert);
      writeFileSync(files.caFile, newCa.cert);
      const c = createClientCert(newCa, { commonName: 'client' });
      return { ca: newCa, client: { ca: Buffer.from(newCa.cert), cert: Buffer.from(c.cert), key: Buffer.from(c.key) } };
    };
    const first = issue();
    const watched = await watchedServerCredentials(files, 100);
    const server = await serve(CompanionClient, companionHandlers(companion), { host: '127.0.0.1', port: 0, credentials: watched.credentials });
    const list = (m: MtlsMaterial): Promise<unknown> => {
      const c = new CompanionClient(`127.0.0.1:${server.port}`, clientCredentials(m));
      return unary(c, 'ListInjections', {}).finally(() => c.close());
    };
    try {
      await expect(list(first.client)).resolves.toMatchObject({ node: 'node-a' });
      const second = issue();
      let rotated = false;
      for (let i = 0; i < 100 && !rotated; i += 1) {
        rotated = await list(second.client).then(() => true, () => false);
        if (!rotated) await new Promise((r) => setTimeout(r, 50));
      }
      expect(rotated).toBe(true);
      // The old CA no longer opens the door.
      await expect(list(first.client)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      await server.stop();
      watched.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
