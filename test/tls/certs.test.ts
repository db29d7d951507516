import { describe, expect, it } from 'vitest';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import {
  certInfo,
  createCa,
  createClientCert,
  createSelfSigned,
  createServingCert,
  isIssuedBy,
  keyMatchesCert,
  needsRenewal,
  type PemPair,
} from '../../src/tls/certs.js';

const DAY = 24 * 60 * 60 * 1000;

/** Completes a real TLS handshake on 127.0.0.1; resolves with the outcome instead of throwing. */
async function handshake(
  server: { cert: string; key: string; ca?: string; requestCert?: boolean },
  client: { ca: string; servername: string; cert?: string; key?: string },
): Promise<{ ok: true; peer: TLSSocket } | { ok: false; error: string }> {
  const srv = createServer({
    cert: server.cert,
    key: server.key,
    ca: server.ca,
    requestCert: server.requestCert ?? false,
    rejectUnauthorized: server.requestCert ?? false,
  });
  srv.on('secureConnection', (s) => s.end('hi'));
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  try {
    return await new Promise((resolve) => {
      const sock = connect({ port, host: '127.0.0.1', ca: client.ca, servername: client.servername, cert: client.cert, key: client.key });
      sock.on('error', (err) => resolve({ ok: false, error: err.message }));
      // With TLS 1.3 a client-certificate rejection arrives after the handshake: wait for data.
      sock.on('data', () => {
        resolve({ ok: true, peer: sock });
        sock.destroy();
      });
      sock.on('close', () => resolve({ ok: false, error: 'closed without data' }));
    });
  } finally {
    srv.close();
  }
}

describe('certificate authority', () => {
  const ca = createCa();

  it('is a CA valid for about a year', () => {
    const info = certInfo(ca.cert);
    expect(info.isCa).toBe(true);
    const days = (info.notAfter.getTime() - Date.now()) / DAY;
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThan(366);
    expect(keyMatchesCert(ca.cert, ca.key)).toBe(true);
  });

  it('gives every certificate a distinct positive serial', () => {
    const serials = [ca, createCa(), createServingCert(ca, { service: 's', namespace: 'n' }), createClientCert(ca, { commonName: 'c' })].map(
      (p) => certInfo(p.cert).serial,
    );
    expect(new Set(serials).size).toBe(serials.length);
    for (const s of serials) expect(Number.parseInt(s.slice(0, 1), 16)).toBeLessThan(8);
  });
});

describe('serving certificate', () => {
  const ca = createCa();
  const serving = createServingCert(ca, {
    service: 'kernelchaos-webhook',
    namespace: 'kernelchaos-system',
    extraDns: ['webhook.example.com'],
    extraIps: ['10.0.0.7'],
  });

  it('has SANs for every in-cluster DNS form of the Service, plus extras, and lives 30 days', () => {
    const info = certInfo(serving.cert);
    expect(info.dnsNames).toEqual(
      expect.arrayContaining([
        'kernelchaos-webhook',
        'kernelchaos-webhook.kernelchaos-system',
        'kernelchaos-webhook.kernelchaos-system.svc',
        'kernelchaos-webhook.kernelchaos-system.svc.cluster.local',
        'webhook.example.com',
      ]),
    );
    expect(info.ipAddresses).toContain('10.0.0.7');
    expect(info.isCa).toBe(false);
    const days = (info.notAfter.getTime() - info.notBefore.getTime()) / DAY;
    expect(Math.round(days)).toBe(30);
    expect(isIssuedBy(serving.cert, ca.cert)).toBe(true);
    expect(isIssuedBy(serving.cert, createCa().cert)).toBe(false);
  });

  it('is accepted over TLS for the Service name the apiserver dials, refused for another name', async () => {
    const good = await handshake(serving, { ca: ca.cert, servername: 'kernelchaos-webhook.kernelchaos-system.svc' });
    expect(good.ok).toBe(true);
    const bad = await handshake(serving, { ca: ca.cert, servername: 'other.kernelchaos-system.svc' });
    expect(bad.ok).toBe(false);
    const otherCa = await handshake(serving, { ca: createCa().cert, servername: 'kernelchaos-webhook.kernelchaos-system.svc' });
    expect(otherCa.ok).toBe(false);
  });

  it('rejects an extra IP SAN that is not an address', () => {
    expect(() => createServingCert(ca, { service: 's', namespace: 'n', extraIps: ['not-an-ip'] })).toThrow(/not an IP address/);
  });
});

describe('client certificates for mutual TLS', () => {
  const ca = createCa();
  const server = createServingCert(ca, { service: 'kernelchaos-companion', namespace: 'kernelchaos-system' });
  const client: PemPair = createClientCert(ca, { commonName: 'kernelchaos-controller' });
  const servername = 'kernelchaos-companion.kernelchaos-system.svc';
  const mtlsServer = { ...server, ca: ca.cert, requestCert: true };

  it('carries clientAuth and is accepted by a server that requires client certificates', async () => {
    expect(new X509Certificate(client.cert).subject).toContain('CN=kernelchaos-controller');
    const r = await handshake(mtlsServer, { ca: ca.cert, servername, ...client });
    expect(r.ok).toBe(true);
  });

  it('a client without a certificate, or with one from another CA, is refused', async () => {
    expect((await handshake(mtlsServer, { ca: ca.cert, servername })).ok).toBe(false);
    const stranger = createClientCert(createCa(), { commonName: 'stranger' });
    expect((await handshake(mtlsServer, { ca: ca.cert, servername, ...stranger })).ok).toBe(false);
  });

  it('a serving-only certificate cannot be used as a client certificate (EKU)', async () => {
    const r = await handshake(mtlsServer, { ca: ca.cert, servername, cert: server.cert, key: server.key });
    expect(r.ok).toBe(false);
  });
});

describe('needsRenewal', () => {
  const ca = createCa();
  const issued = new Date('2026-01-01T00:00:00Z');
  const leaf = createServingCert(ca, { service: 's', namespace: 'n', now: issued });

  it('renews when less than a third of the lifetime is left', () => {
    expect(needsRenewal(leaf.cert, issued)).toBe(false);
    expect(needsRenewal(leaf.cert, new Date(issued.getTime() + 19 * DAY))).toBe(false);
    expect(needsRenewal(leaf.cert, new Date(issued.getTime() + 21 * DAY))).toBe(true);
  });

  it('renews an expired or not-yet-valid certificate', () => {
    expect(needsRenewal(leaf.cert, new Date(issued.getTime() + 31 * DAY))).toBe(true);
    expect(needsRenewal(leaf.cert, new Date(issued.getTime() - DAY))).toBe(true);
  });
});

describe('self-signed (--self-signed)', () => {
  it('serves localhost and 127.0.0.1 under a throwaway CA', async () => {
    const { ca, serving } = createSelfSigned();
    expect(certInfo(serving.cert).ipAddresses).toContain('127.0.0.1');
    expect((await handshake(serving, { ca: ca.cert, servername: 'localhost' })).ok).toBe(true);
  });
});
