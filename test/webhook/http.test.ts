import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request as httpsRequest } from 'node:https';
import { InMemoryStore } from '../../src/kube/memory.js';
import { startWebhook } from '../../src/webhook/start.js';
import { HEADERS_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS } from '../../src/webhook/server.js';
import { seedChaos } from './fixtures.js';
import { admissionReview, kernelChaosRequest, review, selfSigned, send, startTestWebhook, type TestWebhook } from './helpers.js';

let hook: TestWebhook;

beforeAll(async () => {
  hook = await startTestWebhook();
});
afterAll(async () => hook.close());

/** After every bad input the server must still answer a real review. */
async function stillServes(): Promise<void> {
  const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(seedChaos()));
  expect(r.allowed).toBe(true);
}

describe('health, readiness and metrics', () => {
  it('answers /healthz and /readyz when the store is synced', async () => {
    expect((await send(hook, 'GET', '/healthz')).status).toBe(200);
    const ready = await send(hook, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toEqual({ status: 'ready' });
  });

  it('is live but not ready until the cluster state is synced', async () => {
    const store = new InMemoryStore();
    const running = await startWebhook({ store, tls: { kind: 'material', material: selfSigned().serving }, port: 0, host: '127.0.0.1' });
    const target = { port: running.port, ca: hook.ca };
    try {
      expect((await send(target, 'GET', '/healthz')).status).toBe(200);
      const r = await send(target, 'GET', '/readyz');
      expect(r.status).toBe(503);
      expect(r.json).toMatchObject({ reason: 'cluster state not synced yet' });
      await store.start();
      expect((await send(target, 'GET', '/readyz')).status).toBe(200);
    } finally {
      await running.close(0);
    }
  });

  it('exports request counts by endpoint and result, latencies and denials', async () => {
    await stillServes();
    const bad = seedChaos();
    bad.spec.failKernRequest.probability = 101;
    await review(hook, '/validate-kernelchaos', kernelChaosRequest(bad));
    const m = await send(hook, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toMatch(/text\/plain/);
    expect(m.text).toMatch(/kernelchaos_webhook_requests_total\{endpoint="\/validate-kernelchaos",result="allowed"\} [1-9]/);
    expect(m.text).toMatch(/kernelchaos_webhook_requests_total\{endpoint="\/validate-kernelchaos",result="denied"\} [1-9]/);
    expect(m.text).toMatch(/kernelchaos_webhook_denials_total\{endpoint="\/validate-kernelchaos",reason="Invalid"\} [1-9]/);
    expect(m.text).toMatch(/kernelchaos_webhook_request_duration_seconds_bucket\{le="0.01",endpoint="\/validate-kernelchaos"\}/);
  });
});

describe('bad input never takes the server down', () => {
  it('malformed JSON -> 400 with a JSON error', async () => {
    const r = await send(hook, 'POST', '/validate-kernelchaos', '{"apiVersion": "admission.k8s.io/v1", "request": {');
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ status: 400 });
    expect((r.json as { error: string }).error).toMatch(/malformed JSON/);
    await stillServes();
  });

  it('a review without request, or without uid -> 400 naming what is missing', async () => {
    const noRequest = await send(hook, 'POST', '/validate-kernelchaos', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }));
    expect(noRequest.status).toBe(400);
    expect((noRequest.json as { error: string }).error).toMatch(/^request: missing/);
    const noUid = await send(hook, 'POST', '/mutate-pods', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { object: {} } }));
    expect(noUid.status).toBe(400);
    expect((noUid.json as { error: string }).error).toMatch(/request\.uid/);
    for (const body of ['null', '[]', '"review"', '42']) {
      expect((await send(hook, 'POST', '/validate-kernelchaos', body)).status).toBe(400);
    }
    await stillServes();
  });

  it('an AdmissionReview of another version -> 400 saying which one is served', async () => {
    const body = { ...admissionReview(kernelChaosRequest(seedChaos())), apiVersion: 'admission.k8s.io/v1beta1' };
    const r = await send(hook, 'POST', '/validate-kernelchaos', JSON.stringify(body));
    expect(r.status).toBe(400);
    expect((r.json as { error: string }).error).toMatch(/admissionReviewVersions: \[v1\]/);
  });

  it('a body over the endpoint limit (1 MiB for KernelChaos, 3 MiB for pods) -> 413', async () => {
    const big = JSON.stringify({ ...admissionReview(kernelChaosRequest(seedChaos())), padding: 'x'.repeat(1024 * 1024 + 10) });
    const r = await send(hook, 'POST', '/validate-kernelchaos', big);
    expect(r.status).toBe(413);
    expect((r.json as { error: string }).error).toMatch(/exceeds 1048576 bytes, the most \/validate-kernelchaos accepts/);
    const huge = JSON.stringify({ ...admissionReview(kernelChaosRequest(seedChaos())), padding: 'x'.repeat(3 * 1024 * 1024 + 10) });
    const pods = await send(hook, 'POST', '/mutate-pods', huge);
    expect(pods.status).toBe(413);
    expect((pods.json as { error: string }).error).toMatch(/exceeds 3145728 bytes/);
    await stillServes();
  });

  it('a chunked body (no Content-Length) that grows past 3 MiB -> 413', async () => {
    const r = await new Promise<{ status: number; text: string }>((resolveReq, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port: hook.port, method: 'POST', path: '/mutate-pods', ca: hook.ca, servername: 'localhost', agent: false,
          headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolveReq({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent < 4 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    expect(r.status).toBe(413);
    expect(r.text).toMatch(/exceeds 3145728 bytes/);
    await stillServes();
  });

  it('a compressed or non-UTF-8 body -> 415 naming what to send', async () => {
    const body = JSON.stringify(admissionReview(kernelChaosRequest(seedChaos())));
    const gz = await send(hook, 'POST', '/validate-kernelchaos', body, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(gz.status).toBe(415);
    expect((gz.json as { error: string }).error).toMatch(/send identity-encoded JSON/);
    const latin = await send(hook, 'POST', '/validate-kernelchaos', body, { 'content-type': 'application/json; charset=iso-8859-1' });
    expect(latin.status).toBe(415);
    expect((latin.json as { error: string }).error).toMatch(/send UTF-8/);
    expect((await send(hook, 'POST', '/validate-kernelchaos', '', { 'content-type': 'application/json' })).status).toBe(400);
    await stillServes();
  });

  it('a body just under the limit is still reviewed', async () => {
    const chaos = seedChaos();
    chaos.metadata.annotations = { big: 'y'.repeat(900 * 1024) };
    const r = await review(hook, '/validate-kernelchaos', kernelChaosRequest(chaos));
    expect(r.allowed).toBe(true);
  });

  it('a wrong or missing content-type -> 415', async () => {
    const body = JSON.stringify(admissionReview(kernelChaosRequest(seedChaos())));
    const plain = await send(hook, 'POST', '/validate-kernelchaos', body, { 'content-type': 'text/plain' });
    expect(plain.status).toBe(415);
    expect((plain.json as { error: string }).error).toMatch(/Content-Type must be application\/json/);
    expect((await send(hook, 'POST', '/validate-kernelchaos', body, {})).status).toBe(415);
    // application/json with a charset is fine.
    expect((await send(hook, 'POST', '/validate-kernelchaos', body, { 'content-type': 'application/json; charset=utf-8' })).status).toBe(200);
    await stillServes();
  });

  it('an unknown path -> 404 listing the endpoints', async () => {
    const r = await send(hook, 'POST', '/validate', '{}');
    expect(r.status).toBe(404);
    expect((r.json as { error: string }).error).toContain('/validate-kernelchaos');
  });

  it('a request for the wrong resource -> a clear 400 denial', async () => {
    const r = await review(hook, '/validate-kernelchaos', {
      resource: { group: 'apps', version: 'v1', resource: 'deployments' },
      object: { kind: 'Deployment' },
    });
    expect(r.allowed).toBe(false);
    expect(r.status?.code).toBe(400);
    expect(r.status?.message).toMatch(/got resource deployments; check the webhook configuration's rules/);
  });

  it('a client that aborts mid-body does not disturb the server', async () => {
    await new Promise<void>((resolve) => {
      const req = httpsRequest({
        host: '127.0.0.1',
        port: hook.port,
        method: 'POST',
        path: '/validate-kernelchaos',
        ca: hook.ca,
        servername: 'localhost',
        headers: { 'content-type': 'application/json', 'content-length': '100000' },
      });
      req.on('error', () => resolve());
      req.write('{"request": {"uid": "abc"');
      setImmediate(() => {
        req.destroy();
        resolve();
      });
    });
    await stillServes();
  });
});

describe('connections', () => {
  it('keeps idle connections longer than the apiserver (90 s), with headersTimeout above keepAliveTimeout', async () => {
    const server = hook.running.server.server;
    expect(server.keepAliveTimeout).toBe(KEEP_ALIVE_TIMEOUT_MS);
    expect(KEEP_ALIVE_TIMEOUT_MS).toBeGreaterThan(90_000);
    expect(server.headersTimeout).toBe(HEADERS_TIMEOUT_MS);
    expect(server.headersTimeout).toBeGreaterThan(server.keepAliveTimeout);
  });

  it('advertises the keep-alive timeout and reuses one TLS connection across reviews', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const body = () => JSON.stringify(admissionReview(kernelChaosRequest(seedChaos())));
      const first = await send(hook, 'POST', '/validate-kernelchaos', body(), { 'content-type': 'application/json' }, agent);
      expect(first.headers['keep-alive']).toBe('timeout=120');
      const sockets = Object.values(agent.freeSockets).flat();
      expect(sockets).toHaveLength(1);
      const second = await send(hook, 'POST', '/validate-kernelchaos', body(), { 'content-type': 'application/json' }, agent);
      expect(second.status).toBe(200);
      expect(Object.values(agent.freeSockets).flat()[0]).toBe(sockets[0]);
    } finally {
      agent.destroy();
    }
  });
});
