// `npm run bench -- scale`: the control plane at cluster scale against the fake apiserver (real HTTP,
// real @kubernetes/client-node): 100,000 pods on N simulated nodes, 100 experiments, the real
// Controller (informers, leader election, executor), and companions simulated at their reporting
// interface (one KubeStatusSink per node, writing its node reports as the companion does).
// Run at two node counts; the ratio of the counts shows how API writes grow with nodes.
// Phases: settle (labels), inject (every node reports its containers Injected), then counter rounds
// (every reporting node's fault counter moves, as every 15 s in a cluster).
// Reports: API requests per minute and bytes written by the controller and by the companions, status
// bytes per experiment, what a status write fans out to (every companion watches KernelChaos), the
// same under the old design (every companion rewrote the shared status), controller RSS, reconcile
// p50/p99 at 100k pods.
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { FakeApiServer, type RecordedRequest } from '../test/fakes/apiserver.js';
import { silentLog } from '../src/kube/log.js';
import type { FromController, ToController } from './scale-controller.js';
import { KubeStatusSink, clientNodeReportApi } from '../src/companion/kube-sink.js';
import { experimentLabelKey, FINALIZER } from '../src/api/labels.js';
import type { ContainerRecord, KernelChaos } from '../src/api/types.js';

const PODS = Number(process.env.SCALE_PODS ?? 100_000);
const EXPERIMENTS = Number(process.env.SCALE_EXPERIMENTS ?? 100);
const NODE_COUNTS = (process.env.SCALE_NODES ?? '1000,100').split(',').map(Number);
/** SCALE_PROF=DIR writes the controller's CPU profile (node --cpu-prof) there. */
const PROFILE_DIR = process.env.SCALE_PROF;
const here = dirname(fileURLToPath(import.meta.url));

type Pass = Extract<FromController, { type: 'pass' }>;

/** The controller in its own process (bench/scale-controller.ts). */
function startController(kubeConfig: string): { child: ChildProcess; passes: Pass[]; leading: Promise<number>; stopped: Promise<Extract<FromController, { type: 'stopped' }>> } {
  const child = fork(join(here, 'scale-controller.ts'), [], {
    execArgv: ['--import', 'tsx', '--expose-gc', ...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const passes: Pass[] = [];
  let onLeading: (ms: number) => void = () => {};
  let onStopped: (m: Extract<FromController, { type: 'stopped' }>) => void = () => {};
  const leading = new Promise<number>((r) => (onLeading = r));
  const stopped = new Promise<Extract<FromController, { type: 'stopped' }>>((r) => (onStopped = r));
  child.on('message', (m: FromController) => {
    if (m.type === 'podBytes') return;
    if (m.type === 'pass') passes.push(m);
    else if (m.type === 'leading') onLeading(m.syncMs);
    else onStopped(m);
  });
  child.send({ type: 'start', kubeConfig, namespace: SYS } satisfies ToController);
  return { child, passes, leading, stopped };
}
const NAMESPACES = 100;
const COUNTER_ROUNDS = 3;
const SYS = 'kernelchaos-system';

interface Window {
  ms: number;
  requests: RecordedRequest[];
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function until(what: string, probe: () => boolean, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function scenario(nodes: number) {
  const server = await new FakeApiServer({ recordBodies: false, bookmarkIntervalMs: 60_000 }).start();
  server.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYS, labels: { 'kernelchaos.dev/injection': 'disabled' } } });
  for (let n = 0; n < NAMESPACES; n++) server.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns-${n}`, labels: { 'kernelchaos.dev/injection': 'enabled' } } });
  for (let n = 0; n < nodes; n++) server.create({ apiVersion: 'v1', kind: 'Node', metadata: { name: `node-${n}` } });
  for (let i = 0; i < PODS; i++) {
    server.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { namespace: `ns-${i % NAMESPACES}`, name: `pod-${i}`, labels: { app: `app-${i % 10}` } },
      // Contiguous blocks: a namespace's pods spread over every node.
      spec: { nodeName: `node-${Math.floor((i * nodes) / PODS)}`, containers: [{ name: 'main', image: 'x' }] },
      status: { phase: 'Running' },
    });
  }
  // One large mode:all experiment (every pod of ns-0: PODS/100 pods, one per node at 1,000 nodes), the rest fixed 10.
  for (let e = 0; e < EXPERIMENTS; e++) {
    const all = e === 0;
    server.create({
      apiVersion: 'chaos-mesh.org/v1alpha1',
      kind: 'KernelChaos',
      metadata: { namespace: `ns-${e % NAMESPACES}`, name: `exp-${e}`, finalizers: [FINALIZER] },
      spec: {
        mode: all ? 'all' : 'fixed',
        ...(all ? {} : { value: '10' }),
        selector: all ? { namespaces: ['ns-0'] } : { namespaces: [`ns-${e % NAMESPACES}`], labelSelectors: { app: `app-${e % 10}` } },
        // A `times` far above what the simulated companions report, so every node with targets holds an allotment.
        failKernRequest: { failtype: 0, times: 100_000 },
      },
    } as unknown as Record<string, unknown>);
  }

  const controller = startController(server.kubeConfig('controller').exportConfig());
  const passes = controller.passes;
  const syncMs = await controller.leading;

  const experiments = () => server.list<KernelChaos>('chaos-mesh.org/v1alpha1', 'KernelChaos');
  const labelled = (): Map<string, { node: string; pods: string[] }[]> => {
    // experiment uid -> per node, the targeted pods (what each node's companion sees).
    const out = new Map<string, { node: string; pods: string[] }[]>();
    const exps = experiments();
    const pods = server.list<{ metadata: { namespace: string; name: string; labels?: Record<string, string> }; spec: { nodeName: string } }>('v1', 'Pod');
    for (const exp of exps) {
      const key = experimentLabelKey(exp.metadata.namespace ?? '', exp.metadata.name ?? '');
      const byNode = new Map<string, string[]>();
      for (const p of pods) {
        if (p.metadata.labels?.[key] !== 'true') continue;
        const list = byNode.get(p.spec.nodeName) ?? [];
        list.push(`${p.metadata.namespace}/${p.metadata.name}/main`);
        byNode.set(p.spec.nodeName, list);
      }
      out.set(exp.metadata.uid ?? '', [...byNode].map(([node, ps]) => ({ node, pods: ps })));
    }
    return out;
  };
  const statusSettled = (faults: number | undefined): boolean =>
    experiments().every((e) => (e.status?.experiment?.desiredPhase === 'Run') && (faults === undefined || e.status?.experiment?.summary?.faultsInjected !== undefined));
  await until('labels and status', () => statusSettled(undefined) && passes.length > 0 && !passes[passes.length - 1]?.failed);
  await new Promise((r) => setTimeout(r, 500));
  const settleEnd = server.requests.length;
  const targets = labelled();

  // Companions at their reporting interface: one sink per node, as many as have targets.
  const sinks = new Map<string, KubeStatusSink>();
  const sinkFor = (node: string): KubeStatusSink => {
    let s = sinks.get(node);
    if (!s) {
      s = new KubeStatusSink({ api: clientNodeReportApi(server.kubeConfig(`companion-${node}`)), node, namespace: SYS, log: silentLog });
      sinks.set(node, s);
    }
    return s;
  };
  const at = (round: number): string => new Date(Date.UTC(2026, 11, 1, 0, round)).toISOString();
  const report = async (round: number): Promise<void> => {
    for (const exp of experiments()) {
      for (const { node, pods } of targets.get(exp.metadata.uid ?? '') ?? []) {
        const records: ContainerRecord[] = pods.map((id) => ({
          id, selectorKey: '.', phase: 'Injected', injectedCount: 1, recoveredCount: 0, faultsInjected: round * 3, node,
          events: [{ type: 'Succeeded', operation: 'Apply', message: 'fault attached', timestamp: at(0) }],
        }));
        sinkFor(node).records({ namespace: exp.metadata.namespace ?? '', name: exp.metadata.name ?? '', uid: exp.metadata.uid ?? '' }, records);
      }
    }
    await Promise.all([...sinks.values()].map((s) => s.flush()));
  };
  const expectedFaults = (round: number): Map<string, number> =>
    new Map(experiments().map((e) => [e.metadata.uid ?? '', (targets.get(e.metadata.uid ?? '')?.length ?? 0) * round * 3]));
  const statusHas = (round: number): boolean => {
    const want = expectedFaults(round);
    return experiments().every((e) => e.status?.experiment?.summary?.faultsInjected === want.get(e.metadata.uid ?? ''));
  };

  const windowStart = performance.now();
  await report(0);
  await until('injected reported', () => statusHas(0));
  for (let round = 1; round <= COUNTER_ROUNDS; round++) {
    await report(round);
    await until(`round ${round} folded`, () => statusHas(round));
  }
  const windowMs = performance.now() - windowStart;
  const win: Window = { ms: windowMs, requests: server.requests.slice(settleEnd) };
  const settle = server.requests.slice(0, settleEnd);
  controller.child.send({ type: 'stop' } satisfies ToController);
  const memory = await controller.stopped;

  const writes = (r: RecordedRequest) => r.method !== 'GET';
  const byController = win.requests.filter((r) => r.user === 'controller' && writes(r) && !r.path.includes('/leases'));
  const statusWrites = byController.filter((r) => r.path.endsWith('/status'));
  const byCompanions = win.requests.filter((r) => r.user.startsWith('companion-') && writes(r));
  const statusBytes = statusWrites.reduce((n, r) => n + r.requestBytes, 0);
  const controllerBytes = byController.reduce((n, r) => n + r.requestBytes, 0);
  const settleWrites = settle.filter((r) => r.user === 'controller' && writes(r) && !r.path.includes('/leases'));
  // Allotments objects: PUT/POST of configmaps by the controller (node reports are deleted, never written, by it).
  const allotmentWrites = [...settle, ...win.requests].filter((r) => r.user === 'controller' && (r.method === 'PUT' || r.method === 'POST') && r.path.includes('/configmaps'));
  const storedStatus = experiments().map((e) => JSON.stringify(e.status ?? {}).length);
  const reportingNodes = sinks.size;
  const computeMs = passes.map((p) => p.computeMs);
  const computeCpuMs = passes.map((p) => p.computeCpuMs);
  const perMinute = (n: number) => (n / win.ms) * 60_000;
  // Every companion watches KernelChaos cluster-wide: each status write reaches every node.
  const fanout = statusBytes * nodes;
  // The old design: every reporting node rewrote each of its experiments' shared status (GET + PUT of the
  // whole object) per change, each reaching every node. Per round: one write per (experiment, node with targets).
  const oldWritesPerRound = [...targets.values()].reduce((n, list) => n + list.length, 0);
  const avgStatus = storedStatus.reduce((a, b) => a + b, 0) / storedStatus.length;

  await server.stop();
  return {
    nodes,
    reportingNodes,
    syncMs,
    windowMs: win.ms,
    rounds: COUNTER_ROUNDS + 1,
    controllerWrites: byController.length,
    statusWrites: statusWrites.length,
    companionWrites: byCompanions.length,
    controllerWritesPerMin: perMinute(byController.length),
    companionWritesPerMin: perMinute(byCompanions.length),
    statusBytesPerExperiment: statusBytes / EXPERIMENTS,
    controllerBytesPerExperiment: controllerBytes / EXPERIMENTS,
    settleWrites: settleWrites.length,
    allotmentWrites: allotmentWrites.length,
    settleBytesPerExperiment: settleWrites.reduce((n, r) => n + r.requestBytes, 0) / EXPERIMENTS,
    apiRequestsPerMin: perMinute(win.requests.length),
    companionBytes: byCompanions.reduce((n, r) => n + r.requestBytes, 0),
    maxStatusBytes: Math.max(...storedStatus),
    avgStatusBytes: avgStatus,
    statusFanoutBytes: fanout,
    oldStatusWrites: oldWritesPerRound * (COUNTER_ROUNDS + 1),
    oldFanoutBytes: oldWritesPerRound * (COUNTER_ROUNDS + 1) * avgStatus * nodes,
    rssMiB: memory.rssBytes / 2 ** 20,
    heapMiB: memory.heapUsedBytes / 2 ** 20,
    storedPods: memory.storedPods,
    reconcilePasses: passes.length,
    reconcileP50: percentile(computeMs, 50),
    reconcileP99: percentile(computeMs, 99),
    reconcileCpuP50: percentile(computeCpuMs, 50),
    reconcileCpuP99: percentile(computeCpuMs, 99),
    passP99: percentile(passes.map((p) => p.passMs), 99),
  };
}

/** What caching a projection saves per pod (measured in a controller process before any scenario). */
async function podCacheBytes(): Promise<{ wholeBytes: number; projectedBytes: number }> {
  const child = fork(join(here, 'scale-controller.ts'), [], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const answer = new Promise<{ wholeBytes: number; projectedBytes: number }>((resolve) => child.on('message', (m: FromController) => m.type === 'podBytes' && resolve(m)));
  child.send({ type: 'measurePods' } satisfies ToController);
  const bytes = await answer;
  child.kill();
  return bytes;
}

const cache = await podCacheBytes();
console.log(`pod cache: a typical Deployment pod takes ${cache.wholeBytes.toFixed(0)} bytes of heap whole, ${cache.projectedBytes.toFixed(0)} as the controller caches it (x${(cache.wholeBytes / cache.projectedBytes).toFixed(1)}); at 100,000 such pods ${((cache.wholeBytes * 1e5) / 2 ** 20).toFixed(0)} MiB vs ${((cache.projectedBytes * 1e5) / 2 ** 20).toFixed(0)} MiB`);

type Result = Awaited<ReturnType<typeof scenario>>;
const results: Result[] = [];
for (const nodes of NODE_COUNTS) {
  const r = await scenario(nodes);
  results.push(r);
  console.log(`\n${PODS} pods, ${EXPERIMENTS} experiments, ${nodes} nodes (${r.reportingNodes} with targets); ${r.rounds} report rounds in ${(r.windowMs / 1000).toFixed(1)} s; initial sync ${(r.syncMs / 1000).toFixed(1)} s`);
  console.log(`  settle (label ${PODS / NAMESPACES + 10 * (EXPERIMENTS - 1)} pods, first status, times allotments): ${r.settleWrites} controller writes (${r.allotmentWrites} allotments objects, one per node with targets), ${(r.settleBytesPerExperiment / 1024).toFixed(1)} KiB per experiment`);
  console.log(`  report window: API requests ${r.apiRequestsPerMin.toFixed(0)}/min (all clients); controller writes ${r.controllerWrites} (${r.statusWrites} status), ${r.controllerWritesPerMin.toFixed(0)}/min, ${(r.controllerBytesPerExperiment / 1024).toFixed(1)} KiB per experiment; companion report writes ${r.companionWrites}, ${r.companionWritesPerMin.toFixed(0)}/min, ${(r.companionBytes / 1024).toFixed(0)} KiB`);
  console.log(`  status bytes written per experiment ${(r.statusBytesPerExperiment / 1024).toFixed(1)} KiB; stored status max ${(r.maxStatusBytes / 1024).toFixed(1)} KiB, mean ${(r.avgStatusBytes / 1024).toFixed(1)} KiB`);
  console.log(`  status fan-out to ${nodes} watching companions ${(r.statusFanoutBytes / 2 ** 20).toFixed(1)} MiB; old design (every node rewrites the status): ${r.oldStatusWrites} status writes, fan-out ${(r.oldFanoutBytes / 2 ** 20).toFixed(1)} MiB`);
  console.log(`  controller process RSS ${r.rssMiB.toFixed(0)} MiB (heap ${r.heapMiB.toFixed(0)} MiB, ${r.storedPods} pods cached); reconcile wall p50 ${r.reconcileP50.toFixed(0)} ms, p99 ${r.reconcileP99.toFixed(0)} ms, CPU p50 ${r.reconcileCpuP50.toFixed(0)} ms, p99 ${r.reconcileCpuP99.toFixed(0)} ms over ${r.reconcilePasses} passes (whole pass with writes p99 ${r.passP99.toFixed(0)} ms)`);
}
if (results.length === 2) {
  const [a, b] = results as [Result, Result];
  const ratio = (k: keyof Result) => (a[k] / Math.max(1, b[k])).toFixed(2);
  console.log(`\nratio ${a.nodes} vs ${b.nodes} nodes (x${(a.nodes / b.nodes).toFixed(0)} nodes, nodes² would be x${((a.nodes / b.nodes) ** 2).toFixed(0)}): settle writes x${ratio('settleWrites')} (allotments x${ratio('allotmentWrites')}), status writes x${ratio('statusWrites')}, controller writes x${ratio('controllerWrites')}, companion writes x${ratio('companionWrites')} (reporting nodes x${ratio('reportingNodes')}); old design status writes x${ratio('oldStatusWrites')}, old fan-out x${ratio('oldFanoutBytes')}, new fan-out x${ratio('statusFanoutBytes')}`);
}
