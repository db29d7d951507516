// `kernelchaos status --companion` against a real companion gRPC server over mutual TLS, and gRPC
// server reflection on that server (what grpcurl uses). The kernel side is the recording double.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { validateKernelChaos } from '../../src/api/validate.js';
import { main } from '../../src/cli/status.js';
import { runCompanion, type RunningCompanion } from '../../src/companion/run.js';
import { silentLog } from '../../src/kube/log.js';
import { createCa, createClientCert, createServingCert } from '../../src/tls/certs.js';
import { FakeEngine, podManifest } from '../companion/fakes.js';
import { SEED_YAML } from '../fixtures/seed.js';

const UID = '0f0e0d0c-0b0a-4909-8807-060504030201';
const APP = 'ab'.repeat(32);
const POD = podManifest('web', {
  uid: UID,
  node: 'node-1',
  qosClass: 'Burstable',
  experiments: ['chaos-testing/kernel-chaos-example'],
  containers: [{ name: 'app', id: APP }],
});

let dir: string;
let running: RunningCompanion;
let engine: FakeEngine;
let addr: string;
let flags: string[];
let out: string[];
let err: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kc-status-companion-'));
  const ca = createCa({ commonName: 'status-test-ca' });
  const serving = createServingCert(ca, { service: 'kernelchaos-companion', namespace: 'kernelchaos-system', extraIps: ['127.0.0.1'] });
  const client = createClientCert(ca, { commonName: 'status-client' });
  const other = createCa({ commonName: 'other-ca' });
  const stranger = createClientCert(other, { commonName: 'stranger' });
  const files: Record<string, string> = {
    'ca.crt': ca.cert,
    'server.crt': serving.cert,
    'server.key': serving.key,
    'client.crt': client.cert,
    'client.key': client.key,
    'stranger.crt': stranger.cert,
    'stranger.key': stranger.key,
  };
  for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t);
  const manifests = join(dir, 'manifests');
  const cgroupRoot = join(dir, 'cgroup');
  mkdirSync(manifests);
  mkdirSync(join(cgroupRoot, 'kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice`, `cri-containerd-${APP}.scope`), { recursive: true });
  writeFileSync(join(cgroupRoot, 'cgroup.controllers'), 'cpu memory\n');
  writeFileSync(join(manifests, 'pod.yaml'), POD);
  writeFileSync(join(manifests, 'seed.yaml'), SEED_YAML);
  engine = new FakeEngine();
  running = await runCompanion(
    {
      node: 'node-1',
      source: { kind: 'manifests', dir: manifests, pollIntervalMs: 50 },
      cgroupRoot,
      procRoot: join(dir, 'proc'),
      grpc: { host: '127.0.0.1', port: 0, tls: { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), caFile: join(dir, 'ca.crt') } },
    },
    { engine, validate: validateKernelChaos, log: silentLog },
  );
  addr = `127.0.0.1:${running.grpcPort ?? 0}`;
  flags = ['--tls-cert', join(dir, 'client.crt'), '--tls-key', join(dir, 'client.key'), '--tls-ca', join(dir, 'ca.crt')];
});

afterAll(async () => {
  await running.stop('test done');
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  vi.restoreAllMocks();
  out = [];
  err = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out.push(String(s));
    return true;
  });
  vi.spyOn(console, 'error').mockImplementation((m: unknown) => void err.push(String(m)));
});

describe('kernelchaos status --companion', () => {
  it('lists what is armed on the node with the kernel counters', async () => {
    const fault = engine.live()[0];
    if (!fault) throw new Error('not armed');
    fault.calls = 31n;
    fault.faults = 4n;
    expect(await main(['--companion', addr, ...flags])).toBe(0);
    const lines = out.join('').trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NODE\s+EXPERIMENT\s+SOURCE\s+MODE\s+CONTAINERS\s+CALLS\s+FAULTS\s+ARMED\s+CLOSES$/);
    expect(lines[1]?.split(/\s{3,}/).slice(0, 7)).toEqual(['node-1', 'chaos-testing/kernel-chaos-example', 'kernelchaos', 'trampoline', '1', '31', '4']);
  });

  it('with NAME -o json adds the per-container records and the schedule phase', async () => {
    expect(await main(['--companion', addr, ...flags, '-n', 'chaos-testing', 'kernel-chaos-example', '-o', 'json'])).toBe(0);
    const doc = JSON.parse(out.join('')) as { experiment: string; schedulePhase: string; records: Array<{ id: string; phase: string }> };
    expect(doc.experiment).toBe('chaos-testing/kernel-chaos-example');
    expect(doc.schedulePhase).toBe('active');
    expect(doc.records).toEqual([expect.objectContaining({ id: 'app/web/app', phase: 'Injected' })]);
  });

  it('refuses to run without client certificates, and reports a companion that refuses ours', async () => {
    expect(await main(['--companion', addr])).toBe(2);
    expect(err.join('\n')).toMatch(/--companion needs --tls-cert, --tls-key and --tls-ca/);
    err.length = 0;
    const strangerFlags = ['--tls-cert', join(dir, 'stranger.crt'), '--tls-key', join(dir, 'stranger.key'), '--tls-ca', join(dir, 'ca.crt'), '--request-timeout', '5'];
    expect(await main(['--companion', addr, ...strangerFlags])).toBe(1);
    expect(err.join('\n')).toMatch(new RegExp(`kernelchaos status: ${addr}: ListInjections: `));
  });

  it('serves gRPC server reflection: the Companion service is listed and described', async () => {
    const proto = resolve(import.meta.dirname, '..', '..', 'node_modules', '@grpc', 'reflection', 'build', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true }));
    const Reflection = (((pkg.grpc as grpc.GrpcObject).reflection as grpc.GrpcObject).v1 as grpc.GrpcObject).ServerReflection as grpc.ServiceClientConstructor;
    const { readFileSync } = await import('node:fs');
    const creds = grpc.credentials.createSsl(readFileSync(join(dir, 'ca.crt')), readFileSync(join(dir, 'client.key')), readFileSync(join(dir, 'client.crt')));
    const client = new Reflection(addr, creds);
    const ask = (req: object): Promise<Record<string, unknown>> =>
      new Promise((resolvePromise, reject) => {
        const call = (client as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<object, Record<string, unknown>> }).ServerReflectionInfo();
        call.on('data', (d) => {
          resolvePromise(d);
          call.end();
        });
        call.on('error', reject);
        call.write(req);
      });
    try {
      const listed = (await ask({ list_services: '' })) as { list_services_response?: { service: Array<{ name: string }> } };
      expect(listed.list_services_response?.service.map((s) => s.name)).toContain('kernelchaos.v1.Companion');
      const described = (await ask({ file_containing_symbol: 'kernelchaos.v1.Companion' })) as { file_descriptor_response?: { file_descriptor_proto: unknown[] } };
      expect(described.file_descriptor_response?.file_descriptor_proto.length).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });
});
