// Companion overhead benchmark (`npm run bench -- companion`). Measures the companion's OWN cost
// (Node.js process: informer-less --manifests store, schedule, reconcile, cgroup resolution,
// status) with 110 targeted pods and 50 experiments on the node. The fault engine is a stand-in
// that records arms and attaches nothing, so kernel cost is excluded by design (bench/engine.bench.ts
// measures that in the VM). Reported against a bare `node` process measured in the same run:
//   - RSS after start-up and a full reconcile;
//   - idle CPU over 10 s (target: under 1% of one core);
//   - time from a window opening (a cron fire) to the engine's arm() being called;
//   - time from a KernelChaos file appearing in the directory to arm().
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const PODS = 110;
const EXPERIMENTS = 50;
const IDLE_SECONDS = Number(process.env.KC_BENCH_IDLE_SECONDS ?? 10);
const CRON_PERIOD_S = 2;
const CLK_TCK = 100;

interface ChildMessage {
  type: 'ready' | 'arms';
  arms?: Array<{ at: number; targets: number }>;
}

/**
 * The child: the companion with a recording engine. Plain JS run with `node -e`, so that with a
 * current dist/ no TypeScript loader sits in the measured process.
 */
function childSource(fromDist: boolean): string {
  const mod = (rel: string): string => JSON.stringify(join(ROOT, fromDist ? `dist/${rel}.js` : `src/${rel}.ts`));
  return `
const { runCompanion } = await import(${mod('companion/run')});
const { validateKernelChaos } = await import(${mod('api/validate')});
const arms = [];
const engine = {
  arm: async (_req, targets) => {
    arms.push({ at: Date.now(), targets: targets.length });
    return { id: 'rec-' + arms.length, mode: 'trampoline', counters: () => ({ calls: 0n, faults: 0n }), setTargetCgroups() {}, disarm() {} };
  },
};
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const [dir, cgroupRoot, procRoot] = process.argv.slice(1);
const running = await runCompanion({ node: 'bench-node', source: { kind: 'manifests', dir }, cgroupRoot, procRoot }, { engine, validate: validateKernelChaos, log: silent });
process.on('message', (m) => {
  if (m.type === 'arms') process.send({ type: 'arms', arms });
  if (m.type === 'stop') void running.stop('bench done').then(() => process.exit(0));
});
process.send({ type: 'ready' });
`;
}

function uid(i: number): string {
  return `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}
function cid(i: number): string {
  return i.toString(16).padStart(64, 'c');
}

function writeFixture(root: string, createdIso: string, churn: boolean): { dir: string; cgroupRoot: string; procRoot: string } {
  const dir = join(root, 'manifests');
  const cgroupRoot = join(root, 'cgroup');
  const procRoot = join(root, 'proc');
  for (const d of [dir, cgroupRoot, procRoot]) mkdirSync(d, { recursive: true });
  writeFileSync(join(cgroupRoot, 'cgroup.controllers'), 'cpu memory pids\n');
  const docs: string[] = [];
  for (let e = 0; e < EXPERIMENTS; e += 1) {
    // Steady: all run continuously. Churn: half open a 1 s window every 2 s (latency samples).
    const timing = !churn || e % 2 === 0 ? '' : `  duration: 1s\n  scheduler: {cron: "@every ${CRON_PERIOD_S}s"}\n`;
    docs.push(`apiVersion: chaos-mesh.org/v1alpha1
kind: KernelChaos
metadata: {name: exp-${e}, namespace: chaos, uid: exp-uid-${e}, creationTimestamp: "${createdIso}"}
spec:
  mode: all
  selector: {namespaces: [app]}
  failKernRequest:
    failtype: ${e % 3}
    callchain:
      - funcname: d_alloc_parallel
        parameters: "struct dentry *parent, const struct qstr *name"
        predicate: 'STRNCMP(name->name, "bananas", 8)'
    probability: 50
${timing}`);
  }
  for (let p = 0; p < PODS; p += 1) {
    const refs = [p % EXPERIMENTS, (p * 7 + 3) % EXPERIMENTS].map((e) => `chaos/exp-${e}`);
    const u = uid(p);
    mkdirSync(join(cgroupRoot, 'kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${u.replace(/-/g, '_')}.slice`, `cri-containerd-${cid(p)}.scope`), { recursive: true });
    docs.push(`apiVersion: v1
kind: Pod
metadata:
  name: pod-${p}
  namespace: app
  uid: ${u}
  labels: {kernelchaos.dev/target: "true"}
  annotations: {kernelchaos.dev/inject: "true", kernelchaos.dev/experiments: "${[...new Set(refs)].sort().join(',')}"}
spec:
  nodeName: bench-node
  containers: [{name: app, image: busybox}]
status:
  phase: Running
  qosClass: Burstable
  containerStatuses:
    - {name: app, image: busybox, imageID: busybox, ready: true, restartCount: 0, containerID: "containerd://${cid(p)}", state: {running: {}}}
`);
  }
  writeFileSync(join(dir, 'cluster.yaml'), docs.join('---\n'));
  return { dir, cgroupRoot, procRoot };
}

function procStat(pid: number): { cpuTicks: number; rssKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuTicks, rssKb };
}

async function idle(pid: number, seconds: number): Promise<{ cpuPercent: number; rssKb: number }> {
  const a = procStat(pid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = procStat(pid);
  const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
  return { cpuPercent: ((b.cpuTicks - a.cpuTicks) / CLK_TCK / elapsedS) * 100, rssKb: b.rssKb };
}

function ask(c: ChildProcess, type: 'arms'): Promise<ChildMessage> {
  return new Promise((resolve) => {
    const on = (m: ChildMessage): void => {
      if (m.type !== type) return;
      c.off('message', on);
      resolve(m);
    };
    c.on('message', on);
    c.send({ type });
  });
}

function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

function distIsCurrent(): boolean {
  try {
    const built = statSync(join(ROOT, 'dist/companion/run.js')).mtimeMs;
    const dirs = ['src/companion', 'src/schedule', 'src/kube', 'src/api'];
    return dirs.every((d) => readdirSync(join(ROOT, d)).every((f) => !f.endsWith('.ts') || statSync(join(ROOT, d, f)).mtimeMs <= built));
  } catch {
    return false;
  }
}

interface Scenario {
  c: ChildProcess;
  readyMs: number;
  initial: number;
  dir: string;
}

async function startScenario(root: string, created: Date, churn: boolean, fromDist: boolean): Promise<Scenario> {
  const { dir, cgroupRoot, procRoot } = writeFixture(join(root, churn ? 'churn' : 'steady'), created.toISOString(), churn);
  const startedAt = Date.now();
  const c = spawn(process.execPath, [...(fromDist ? [] : ['--import', 'tsx']), '--input-type=module', '-e', childSource(fromDist), '--', dir, cgroupRoot, procRoot], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve) => c.on('message', (m: ChildMessage) => m.type === 'ready' && resolve()));
  const readyMs = Date.now() - startedAt;
  const initial = ((await ask(c, 'arms')).arms ?? []).length;
  return { c, readyMs, initial, dir };
}

async function stopScenario(s: Scenario): Promise<void> {
  s.c.send({ type: 'stop' });
  await new Promise((r) => s.c.on('exit', r));
}

async function parent(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'kc-bench-companion-'));
  const created = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  const fromDist = process.env.KC_BENCH_LOADER === 'dist' || (process.env.KC_BENCH_LOADER !== 'tsx' && distIsCurrent());
  try {
    // Baseline: a bare Node.js process doing nothing, with the same loader, same run.
    const bare = spawn(process.execPath, [...(fromDist ? [] : ['--import', 'tsx']), '-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1500));
    const bareIdle = await idle(bare.pid as number, IDLE_SECONDS);
    bare.kill();

    // Steady state: 50 experiments armed on 110 pods, nothing changing.
    const steady = await startScenario(root, created, false, fromDist);
    await new Promise((r) => setTimeout(r, 1000));
    const steadyIdle = await idle(steady.c.pid as number, IDLE_SECONDS);
    // File-to-armed: a new always-on experiment for pod-0 appears in the directory.
    const before = ((await ask(steady.c, 'arms')).arms ?? []).length;
    const file = join(steady.dir, 'cluster.yaml');
    const t0 = Date.now();
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('kernelchaos.dev/experiments: "chaos/exp-0,chaos/exp-3"}', 'kernelchaos.dev/experiments: "chaos/exp-0,chaos/exp-3,chaos/late"}') +
        `---\napiVersion: chaos-mesh.org/v1alpha1\nkind: KernelChaos\nmetadata: {name: late, namespace: chaos, uid: late-uid}\nspec:\n  mode: all\n  selector: {}\n  failKernRequest: {failtype: 0}\n`,
    );
    let fileLatency = NaN;
    for (let i = 0; i < 400 && Number.isNaN(fileLatency); i += 1) {
      await new Promise((r) => setTimeout(r, 10));
      const late = ((await ask(steady.c, 'arms')).arms ?? []).slice(before).find((a) => a.at >= t0);
      if (late) fileLatency = late.at - t0;
    }
    await stopScenario(steady);

    // Churn: 25 of the 50 experiments open a 1 s window every 2 s.
    const churn = await startScenario(root, created, true, fromDist);
    const churnIdle = await idle(churn.c.pid as number, IDLE_SECONDS);
    const all = (await ask(churn.c, 'arms')).arms ?? [];
    await stopScenario(churn);
    const period = CRON_PERIOD_S * 1000;
    const windowLatencies = all
      .slice(churn.initial)
      .map((a) => a.at - (created.getTime() + Math.floor((a.at - created.getTime()) / period) * period));

    const result = {
      loader: fromDist ? 'dist (compiled)' : 'tsx (dist/ missing or stale; baseline uses tsx too)',
      pods: PODS,
      experiments: EXPERIMENTS,
      startupToReadyMs: steady.readyMs,
      armedAtStart: steady.initial,
      rssMb: { companion: round(steadyIdle.rssKb / 1024), bareNode: round(bareIdle.rssKb / 1024), ratio: round(steadyIdle.rssKb / bareIdle.rssKb) },
      idleCpuPercentOfOneCore: { companion: round(steadyIdle.cpuPercent), bareNode: round(bareIdle.cpuPercent), target: '< 1', seconds: IDLE_SECONDS, resolution: round(100 / CLK_TCK / IDLE_SECONDS) },
      churnCpuPercentOfOneCore: round(churnIdle.cpuPercent),
      windowOpenToArmMs: { samples: windowLatencies.length, p50: percentile(windowLatencies, 0.5), p95: percentile(windowLatencies, 0.95), max: Math.max(...windowLatencies) },
      fileToArmMs: fileLatency,
      note: 'fake engine (records arm() calls, attaches nothing): this is the companion process\'s own overhead; kernel-side cost is bench/engine.bench.ts',
    };
    console.log(JSON.stringify(result, null, 2));
    const out = join(ROOT, 'bench', 'out');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'companion.json'), JSON.stringify(result, null, 2));
    console.log(`idle CPU ${result.idleCpuPercentOfOneCore.companion}% of one core (target < 1%): ${steadyIdle.cpuPercent < 1 ? 'met' : 'NOT met'}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

await parent();
