import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpsRequest, Agent } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { InMemoryStore } from '../../src/kube/memory.js';
import { certInfo, createCa, createServingCert, type PemPair } from '../../src/tls/certs.js';
import { readKeyMaterialSync } from '../../src/tls/reloader.js';
import { startWebhook, type RunningWebhook } from '../../src/webhook/start.js';
import { seedChaos } from '../webhook/fixtures.js';
import { admissionReview, kernelChaosRequest } from '../webhook/helpers.js';

const ca = createCa();
const SERVICE = { service: 'kernelchaos-webhook', namespace: 'kernelchaos-system', extraIps: ['127.0.0.1'] };
let dir: string;
let running: RunningWebhook;

function install(pair: PemPair): void {
  // As a Secret volume or `certs renew-if-needed` does it: whole files swapped in by rename.
  writeFileSync(join(dir, 'tls.key.new'), pair.key);
  writeFileSync(join(dir, 'tls.crt.new'), pair.cert);
  renameSync(join(dir, 'tls.key.new'), join(dir, 'tls.key'));
  renameSync(join(dir, 'tls.crt.new'), join(dir, 'tls.crt'));
}

/** One review on a fresh TLS connection (or `agent`'s); resolves with the serial the server presented. */
function reviewOnce(agent?: Agent): Promise<{ ok: boolean; serial: string }> {
  const body = JSON.stringify(admissionReview(kernelChaosRequest(seedChaos())));
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: running.port,
        method: 'POST',
        path: '/validate-kernelchaos',
        ca: ca.cert,
        servername: 'kernelchaos-webhook.kernelchaos-system.svc',
        headers: { 'content-type': 'application/json' },
        agent: agent ?? false,
      },
      (res) => {
        const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber ?? '';
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          const allowed = res.statusCode === 200 && (JSON.parse(text) as { response: { allowed: boolean } }).response.allowed;
          resolve({ ok: allowed, serial: serial.toUpperCase() });
        });
      },
    );
    req.on('error', () => resolve({ ok: false, serial: '' }));
    req.end(body);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kc-reload-'));
  install(createServingCert(ca, SERVICE));
  const store = new InMemoryStore();
  await store.start();
  running = await startWebhook({
    store,
    tls: { kind: 'files', certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), pollIntervalMs: 200 },
    port: 0,
    host: '127.0.0.1',
  });
});
afterAll(async () => {
  await running.close(0);
  rmSync(dir, { recursive: true, force: true });
});

describe('certificate rotation without restart', () => {
  it('serves the new certificate after the files change, dropping no request on the way', async () => {
    const before = await reviewOnce();
    expect(before.ok).toBe(true);
    // A keep-alive connection opened before the rotation must keep working after it.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await reviewOnce(agent)).ok).toBe(true);

    const next = createServingCert(ca, SERVICE);
    const nextSerial = certInfo(next.cert).serial.toUpperCase();
    let failures = 0;
    let sent = 0;
    let rotated = false;
    // Continuous load on new connections while the files are swapped; stop once the new cert is seen.
    for (let i = 0; i < 5000 && !rotated; i++) {
      if (i === 20) install(next);
      const r = await reviewOnce();
      sent++;
      if (!r.ok) failures++;
      rotated = r.serial === nextSerial;
    }
    expect(failures).toBe(0);
    expect(rotated).toBe(true);
    expect(sent).toBeGreaterThan(20);
    const old = await reviewOnce(agent);
    expect(old.ok).toBe(true);
    expect(old.serial).toBe(before.serial);
    agent.destroy();
  });

  it('keeps the current certificate while the pair is mismatched (cert written, key not yet)', async () => {
    const current = (await reviewOnce()).serial;
    const next = createServingCert(ca, SERVICE);
    running.reloader?.stop(); // drive reloads by hand here
    writeFileSync(join(dir, 'tls.crt'), next.cert);
    const half = await running.reloader!.reloadNow();
    expect(half.kind).toBe('rejected');
    expect(half.kind === 'rejected' && half.reason).toMatch(/not a usable certificate and key pair/);
    expect((await reviewOnce()).serial).toBe(current);
    writeFileSync(join(dir, 'tls.key'), next.key);
    expect((await running.reloader!.reloadNow()).kind).toBe('reloaded');
    expect((await reviewOnce()).serial).toBe(certInfo(next.cert).serial.toUpperCase());
    expect((await running.reloader!.reloadNow()).kind).toBe('unchanged');
    const metrics = await running.metrics.registry.getSingleMetricAsString('kernelchaos_webhook_certificate_reloads_total');
    expect(metrics).toMatch(/outcome="reloaded"\} [2-9]/);
    expect(metrics).toMatch(/outcome="rejected"\} [1-9]/);
  });

  it('follows a Kubernetes Secret volume update (an atomic swap of the ..data symlink)', async () => {
    // The kubelet's layout: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/; an update writes a
    // new timestamped directory and renames a new symlink over ..data.
    const vol = mkdtempSync(join(tmpdir(), 'kc-secret-'));
    const publish = (pair: PemPair, stamp: string): void => {
      mkdirSync(join(vol, stamp));
      writeFileSync(join(vol, stamp, 'tls.crt'), pair.cert);
      writeFileSync(join(vol, stamp, 'tls.key'), pair.key);
      symlinkSync(stamp, join(vol, '..data_tmp'));
      renameSync(join(vol, '..data_tmp'), join(vol, '..data'));
    };
    publish(createServingCert(ca, SERVICE), '..2026_11_25_10_00_00.1');
    symlinkSync('..data/tls.crt', join(vol, 'tls.crt'));
    symlinkSync('..data/tls.key', join(vol, 'tls.key'));
    const store = new InMemoryStore();
    await store.start();
    // A long poll: only the directory watch can notice the swap in time.
    const other = await startWebhook({
      store,
      tls: { kind: 'files', certFile: join(vol, 'tls.crt'), keyFile: join(vol, 'tls.key'), pollIntervalMs: 600_000 },
      port: 0,
      host: '127.0.0.1',
    });
    const saved = running;
    running = other;
    try {
      expect((await reviewOnce()).ok).toBe(true);
      const next = createServingCert(ca, SERVICE);
      publish(next, '..2026_11_25_11_00_00.2');
      const wanted = certInfo(next.cert).serial.toUpperCase();
      let seen = '';
      for (let i = 0; i < 5000 && seen !== wanted; i++) {
        const r = await reviewOnce();
        expect(r.ok).toBe(true);
        seen = r.serial;
      }
      expect(seen).toBe(wanted);
    } finally {
      running = saved;
      await other.close(0);
      rmSync(vol, { recursive: true, force: true });
    }
  });

  it('refuses to start from files that are not a matching pair, naming them', () => {
    const other = createServingCert(createCa(), SERVICE);
    writeFileSync(join(dir, 'bad.key'), other.key);
    expect(() => readKeyMaterialSync({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'bad.key') })).toThrow(/tls\.crt \/ .*bad\.key: not a usable certificate and key pair/);
  });
});
