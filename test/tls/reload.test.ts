import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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

  it('refuses to start from files that are not a matching pair, naming them', () => {
    const other = createServingCert(createCa(), SERVICE);
    writeFileSync(join(dir, 'bad.key'), other.key);
    expect(() => readKeyMaterialSync({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'bad.key') })).toThrow(/tls\.crt \/ .*bad\.key: not a usable certificate and key pair/);
  });
});
