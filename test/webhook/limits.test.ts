// The webhook under a flood, over real TLS, as its own process (so its memory is measured alone):
// 100 concurrent ~3 MB pod reviews stay under the Deployment's 256Mi, each is answered (reviewed,
// or 429/503 at once), and a small KernelChaos review sent meanwhile is answered; deep user data
// and long keys are handled without recursion or echo.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedChaos } from './fixtures.js';
import { admissionReview, kernelChaosRequest, podRequest, send } from './helpers.js';
import { ConcurrencyLimiter, type Admission } from '../../src/webhook/limiter.js';
import { parseInTurn } from '../../src/webhook/body.js';
import { DEPLOYMENT_LIMIT, deploymentNodeOptions, FLOOD, rssOf } from './flood.js';

const repo = resolve(import.meta.dirname, '../..');
let proc: ChildProcess;
let dir: string;
let hook: { port: number; ca: string };
let logs = '';


function post(path: string, body: Buffer, timeoutMs: number): Promise<{ status: number; ms: number; text: string }> {
  const started = performance.now();
  return new Promise((resolveReq) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port: hook.port, method: 'POST', path, ca: hook.ca, servername: 'localhost', agent: false, timeout: timeoutMs,
        headers: { 'content-type': 'application/json', 'content-length': String(body.length) } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolveReq({ status: res.statusCode ?? 0, ms: performance.now() - started, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    // A refused request is answered before its body is read; the server then closes the socket.
    req.on('error', (e) => resolveReq({ status: 0, ms: performance.now() - started, text: e.message }));
    req.end(body);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kc-limits-'));
  const caFile = join(dir, 'ca.crt');
  proc = spawn(process.execPath, ['--import', 'tsx', join(repo, 'test/tls/run-cli.ts'), 'webhook', '--self-signed', '--self-signed-ca-out', caFile, '--port', '0', '--host', '127.0.0.1'], {
    cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: deploymentNodeOptions() },
  });
  const onData = (c: Buffer): void => void (logs += c.toString());
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  for (let i = 0; i < 600 && !/"msg":"listening"/.test(logs); i++) await new Promise((r) => setTimeout(r, 100));
  hook = { port: Number(/"port":(\d+)/.exec(logs)?.[1]), ca: readFileSync(caFile, 'utf8') };
}, 90_000);

afterAll(() => {
  proc.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('webhook limits over real TLS', () => {
  it('100 concurrent 3 MB pod reviews keep RSS under 256Mi; every one is answered and a small review meanwhile too', async () => {
    const pid = proc.pid as number;
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'big', namespace: 'default', annotations: { blob: 'z'.repeat(3 * 1024 * 1024 - 4096) } }, spec: { containers: [] } };
    const big = Buffer.from(JSON.stringify(admissionReview(podRequest(pod, 'default'))));
    expect(big.length).toBeGreaterThan(3_000_000);
    const small = Buffer.from(JSON.stringify(admissionReview(kernelChaosRequest(seedChaos()))));
    const before = rssOf(pid).rss;
    // The flood comes from its own process: encrypting 300 MB is the sender's work, not ours.
    const bodyFile = join(dir, 'big.json');
    writeFileSync(bodyFile, big);
    const flooder = spawn(process.execPath, ['-e', FLOOD, String(hook.port), bodyFile, join(dir, 'ca.crt'), '100'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let floodOut = '';
    flooder.stdout?.on('data', (c: Buffer) => (floodOut += c.toString()));
    const flooded = new Promise<void>((r) => flooder.on('exit', () => r()));
    for (let i = 0; i < 100 && !floodOut.includes('sending'); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    const healthy = await post('/validate-kernelchaos', small, 5000);
    await flooded;
    const answers = (JSON.parse(floodOut.slice(floodOut.indexOf('\n') + 1)) as number[]).map((status) => ({ status }));
    const { peak } = rssOf(pid);
    await new Promise((r) => setTimeout(r, 3000));
    const after = rssOf(pid).rss;
    const by = (s: number): number => answers.filter((a) => a.status === s).length;
    expect(answers).toHaveLength(100);
    console.log(`limits: healthy review ${healthy.ms.toFixed(0)} ms; flood 200=${by(200)} 429=${by(429)} 503=${by(503)} closed=${by(0)}; RSS before ${(before / 2 ** 20).toFixed(0)} MiB, peak ${(peak / 2 ** 20).toFixed(0)} MiB, 3 s after ${(after / 2 ** 20).toFixed(0)} MiB`);
    expect(healthy.status).toBe(200);
    expect(JSON.parse(healthy.text)).toMatchObject({ response: { allowed: true } });
    expect(peak).toBeLessThan(DEPLOYMENT_LIMIT);
    // Memory goes back down once the burst is over (not all the way: V8 keeps some heap).
    expect(after - before).toBeLessThan(64 * 2 ** 20);
    // Reviewed or refused at once; never a 500, never a hang.
    expect(answers.every((a) => [200, 429, 503, 0].includes(a.status))).toBe(true);
    expect(by(200)).toBeGreaterThan(0);
    expect(by(429) + by(503) + by(0)).toBeGreaterThan(0);
    expect(proc.exitCode).toBeNull();
  }, 120_000);

  it('a 100k-deep label map on /mutate-pods is answered, not a stack overflow', async () => {
    let deep = '"x"';
    for (let i = 0; i < 100_000; i++) deep = `{"a":${deep}}`;
    const pod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default","labels":${deep}},"spec":{"containers":[]}}`;
    const body = JSON.stringify(admissionReview(podRequest({}, 'default'))).replace('"object":{}', `"object":${pod}`);
    const r = await post('/mutate-pods', Buffer.from(body), 10_000);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ response: { allowed: true } });
  });

  it('a 1 MB unknown key is echoed as a prefix and its length, in the answer and the log', async () => {
    const chaos = seedChaos() as unknown as { spec: Record<string, unknown> };
    chaos.spec['k'.repeat(900_000)] = 1;
    const r = await send(hook, 'POST', '/validate-kernelchaos', JSON.stringify(admissionReview(kernelChaosRequest(chaos))));
    expect(r.status).toBe(200);
    expect(r.text.length).toBeLessThan(4000);
    expect(r.text).toContain('... (900000 characters)');
    const find = (): string | undefined => logs.split('\n').find((l) => l.includes('"msg":"denied"') && l.includes('900000 characters'));
    for (let i = 0; i < 50 && !find(); i++) await new Promise((r) => setTimeout(r, 100));
    const line = find();
    expect(line?.length ?? Infinity).toBeLessThan(4000);
  });

  it('offers only forward-secret ciphers on TLS 1.2 and refuses TLS 1.1', async () => {
    const { connect } = await import('node:tls');
    const attempt = (opts: object): Promise<string> => new Promise((res) => {
      const s = connect({ host: '127.0.0.1', port: hook.port, ca: hook.ca, servername: 'localhost', ...opts }, () => {
        res(`ok ${s.getCipher().name}`);
        s.end();
      });
      s.on('error', (e) => res(`error ${e.message}`));
    });
    expect(await attempt({ maxVersion: 'TLSv1.2', ciphers: 'AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA' })).toMatch(/^error/);
    expect(await attempt({ maxVersion: 'TLSv1.2', ciphers: 'DHE-RSA-AES256-GCM-SHA384' })).toMatch(/^error/);
    expect(await attempt({ maxVersion: 'TLSv1.2' })).toMatch(/^ok ECDHE-/);
    expect(await attempt({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).toMatch(/^error/);
  });
});

describe('ConcurrencyLimiter', () => {
  it('grants up to the lane limit, queues, refuses past the queue with 429 and times waiters out with 503', async () => {
    const limiter = new ConcurrencyLimiter({ smallBodyBytes: 100, small: { concurrent: 1, queued: 1 }, large: { concurrent: 1, queued: 0 }, maxWaitMs: 50 });
    const got: Admission[] = [];
    limiter.acquire(10, (a) => got.push(a));
    limiter.acquire(10, (a) => got.push(a));
    limiter.acquire(10, (a) => got.push(a));
    limiter.acquire(1000, (a) => got.push(a));
    limiter.acquire(undefined, (a) => got.push(a));
    expect(got.map((a) => (a.kind === 'granted' ? 'granted' : a.status))).toEqual(['granted', 429, 'granted', 429]);
    const first = got[0];
    if (first?.kind !== 'granted') throw new Error('no grant');
    first.release();
    first.release(); // idempotent
    expect(got.map((a) => (a.kind === 'granted' ? 'granted' : a.status))).toEqual(['granted', 429, 'granted', 429, 'granted']);
    expect(limiter.load().small).toEqual({ active: 1, waiting: 0 });
    limiter.acquire(10, (a) => got.push(a));
    await new Promise((r) => setTimeout(r, 100));
    expect(got.at(-1)).toMatchObject({ kind: 'refused', status: 503 });
  });
});

describe('large bodies parse one per event-loop turn', () => {
  it('what arrives while one parses (a small review\'s next TLS step) runs before the next large parse', async () => {
    const order: string[] = [];
    parseInTurn(() => {
      order.push('large 1');
      setImmediate(() => order.push('small review step'));
    });
    parseInTurn(() => order.push('large 2'));
    parseInTurn(() => order.push('large 3'));
    for (let i = 0; i < 10 && order.length < 4; i++) await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['large 1', 'small review step', 'large 2', 'large 3']);
  });
});

