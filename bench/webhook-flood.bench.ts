// Healthy admission reviews while the webhook is flooded with 100 concurrent ~3 MB pod reviews,
// against the same healthy reviews without the flood, in the same run. The webhook runs as its own
// process with the Deployment's NODE_OPTIONS so its RSS is its own; the flood comes from another
// process (encrypting 300 MB is the sender's work). Healthy reviews are sent one at a time, each on
// a new TLS connection (the worst case: a handshake behind the flood), every 50 ms.
// Targets: healthy p99 < 1000 ms during the flood; peak RSS < 256 MiB (the Deployment's limit).
//
//   npm run bench -- webhook-flood   (env: BENCH_FLOOD, concurrent big bodies, default 100;
//                                    BENCH_ROUNDS, floods, default 3)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEPLOYMENT_LIMIT, deploymentNodeOptions, FLOOD as FLOOD_SCRIPT, rssOf } from '../test/webhook/flood.js';

const repo = resolve(import.meta.dirname, '..');
const FLOOD = Number(process.env.BENCH_FLOOD ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);


function review(object: unknown, kind: { group: string; version: string; kind: string }, resource: string, namespace: string): unknown {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002', kind, resource: { group: kind.group, version: kind.version, resource }, namespace, operation: 'CREATE',
      userInfo: { username: 'bench' }, object, oldObject: null, dryRun: false,
    },
  };
}

const HEALTHY = Buffer.from(JSON.stringify(review({
  apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'KernelChaos', metadata: { name: 'kernel-chaos-example', namespace: 'chaos-testing' },
  spec: { mode: 'one', selector: { namespaces: ['chaos-mount'] }, failKernRequest: { callchain: [{ funcname: '__x64_sys_mount' }], failtype: 0 } },
}, { group: 'chaos-mesh.org', version: 'v1alpha1', kind: 'KernelChaos' }, 'kernelchaos', 'chaos-testing')));

const BIG = Buffer.from(JSON.stringify(review({
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'big', namespace: 'default', annotations: { blob: 'z'.repeat(3 * 2 ** 20 - 4096) } }, spec: { containers: [] },
}, { group: '', version: 'v1', kind: 'Pod' }, 'pods', 'default')));


/** Resets VmHWM so each round reports its own peak. */
function resetPeak(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // not permitted here: the peak is then the process's whole-life peak
  }
}

function post(port: number, ca: string, body: Buffer): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((done) => {
    const req = httpsRequest({ host: '127.0.0.1', port, method: 'POST', path: '/validate-kernelchaos', ca, servername: 'localhost', agent: false, timeout: 10_000,
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => done({ status: res.statusCode ?? 0, ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => done({ status: 0, ms: performance.now() - started }));
    req.end(body);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Healthy reviews one after another, 50 ms apart, until `until` resolves. */
async function healthyWhile(port: number, ca: string, until: Promise<unknown>): Promise<{ status: number; ms: number }[]> {
  let over = false;
  void until.then(() => (over = true));
  const out: { status: number; ms: number }[] = [];
  while (!over || out.length < 5) {
    out.push(await post(port, ca, HEALTHY));
    await sleep(50);
  }
  return out;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'kc-flood-'));
  const caFile = join(dir, 'ca.crt');
  const bodyFile = join(dir, 'big.json');
  writeFileSync(bodyFile, BIG);
  const nodeOptions = deploymentNodeOptions();
  const webhook: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(repo, 'test/tls/run-cli.ts'), 'webhook', '--self-signed', '--self-signed-ca-out', caFile, '--port', '0', '--host', '127.0.0.1'], {
    cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: nodeOptions },
  });
  let logs = '';
  webhook.stdout?.on('data', (c: Buffer) => void (logs += c.toString()));
  webhook.stderr?.on('data', (c: Buffer) => void (logs += c.toString()));
  try {
    for (let i = 0; i < 600 && !/"msg":"listening"/.test(logs); i++) await sleep(100);
    const port = Number(/"port":(\d+)/.exec(logs)?.[1]);
    const ca = readFileSync(caFile, 'utf8');
    const pid = webhook.pid as number;
    for (let i = 0; i < 20; i++) await post(port, ca, HEALTHY); // warm-up
    const quiet: number[] = [];
    const flooded: number[] = [];
    const statuses: number[] = [];
    let peak = 0;
    let healthyErrors = 0;
    const baseRss = rssOf(pid).rss;
    for (let round = 0; round < ROUNDS; round++) {
      // Quiet: the same healthy reviews for about as long as a flood lasts, without it.
      const quietDone = sleep(2000);
      for (const r of await healthyWhile(port, ca, quietDone)) quiet.push(r.ms);
      resetPeak(pid);
      const flooder = spawn(process.execPath, ['-e', FLOOD_SCRIPT, String(port), bodyFile, caFile, String(FLOOD)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      flooder.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      const exited = new Promise<void>((r) => flooder.on('exit', () => r()));
      for (let i = 0; i < 100 && !out.includes('sending'); i++) await sleep(20);
      for (const r of await healthyWhile(port, ca, exited)) {
        flooded.push(r.ms);
        if (r.status !== 200) healthyErrors++;
      }
      await exited;
      statuses.push(...(JSON.parse(out.slice(out.indexOf('\n') + 1)) as number[]));
      peak = Math.max(peak, rssOf(pid).peak);
      await sleep(1000);
    }
    const after = rssOf(pid).rss;
    const count = (s: number): number => statuses.filter((x) => x === s).length;
    const summary = {
      quiet: { n: quiet.length, p50: percentile(quiet, 50), p99: percentile(quiet, 99), max: Math.max(...quiet) },
      flood: { n: flooded.length, p50: percentile(flooded, 50), p99: percentile(flooded, 99), max: Math.max(...flooded) },
    };
    console.log(`${ROUNDS} floods of ${FLOOD} concurrent ${(BIG.length / 2 ** 20).toFixed(1)} MiB pod reviews; healthy KernelChaos reviews on new TLS connections every 50 ms`);
    console.log(`machine: ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    console.log('healthy reviews     n      p50 ms    p99 ms    max ms');
    for (const [name, s] of Object.entries(summary)) {
      console.log(`${name.padEnd(16)} ${String(s.n).padStart(4)} ${s.p50.toFixed(1).padStart(10)} ${s.p99.toFixed(1).padStart(9)} ${s.max.toFixed(1).padStart(9)}`);
    }
    console.log(`flood answers: 200=${count(200)} 429=${count(429)} 503=${count(503)} 413=${count(413)} closed=${count(0)}; healthy errors ${healthyErrors}`);
    console.log(`webhook RSS: before ${(baseRss / 2 ** 20).toFixed(0)} MiB, peak ${(peak / 2 ** 20).toFixed(0)} MiB (limit 256), after ${(after / 2 ** 20).toFixed(0)} MiB`);
    const ratio = summary.flood.p99 / summary.quiet.p99;
    console.log(`healthy p99 flood/quiet ${ratio.toFixed(1)}x; p99 < 1000 ms: ${summary.flood.p99 < 1000 ? 'met' : 'NOT met'}; peak RSS < 256 MiB: ${peak < DEPLOYMENT_LIMIT ? 'met' : 'NOT met'}`);
    console.log(JSON.stringify({ bench: 'webhook-flood', concurrent: FLOOD, rounds: ROUNDS, loadavg1: loadavg()[0], ...summary, peakRss: peak, ratio, answers: { 200: count(200), 429: count(429), 503: count(503), closed: count(0) } }));
    return healthyErrors === 0 ? 0 : 1;
  } finally {
    webhook.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`webhook-flood bench: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
