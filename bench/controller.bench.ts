// The controller's pure reconcile over a large cluster: 5,000 pods in 20 namespaces and 50
// experiments (mixed modes and selectors), settled (every pod already labelled, so the result is
// "nothing to do", the common case on every pod event) and from scratch (every label to add).
// Baseline in the same run: one selector match of every pod against every experiment (selectors
// prepared once per experiment), the least any controller must do; the ratio says what mode choice, eligibility, policies, status and label
// diffing cost on top. Prints medians of repeated runs.
import { performance } from 'node:perf_hooks';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { KernelChaos, SelectorMode } from '../src/api/types.js';
import { FINALIZER } from '../src/api/labels.js';
import { reconcile, type Action, type ControllerState } from '../src/controller/reconcile.js';
import { podLabelPatch } from '../src/controller/podLabels.js';
import { compileSelector } from '../src/selection/index.js';

const PODS = 5000;
const NAMESPACES = 20;
const EXPERIMENTS = 50;
const RUNS = 15;
const NOW = new Date('2026-11-27T03:00:00Z');

function cluster(): ControllerState {
  const namespaces: V1Namespace[] = Array.from({ length: NAMESPACES }, (_, i) => ({ metadata: { name: `ns-${i}`, labels: { 'kernelchaos.dev/injection': 'enabled' } } }));
  const pods: V1Pod[] = Array.from({ length: PODS }, (_, i) => ({
    metadata: { namespace: `ns-${i % NAMESPACES}`, name: `pod-${i}`, uid: `u-${i}`, resourceVersion: String(i + 1), labels: { app: `app-${i % 7}`, tier: i % 3 === 0 ? 'db' : 'web' }, annotations: {} },
    spec: { nodeName: `node-${i % 40}`, containers: [{ name: 'main', image: 'x' }, { name: 'sidecar', image: 'y' }] },
    status: { phase: 'Running' },
  }));
  const modes: Array<[SelectorMode, string | undefined]> = [['all', undefined], ['one', undefined], ['fixed', '5'], ['fixed-percent', '20'], ['random-max-percent', '30']];
  const experiments: KernelChaos[] = Array.from({ length: EXPERIMENTS }, (_, i) => {
    const [mode, value] = modes[i % modes.length] as [SelectorMode, string | undefined];
    return {
      apiVersion: 'chaos-mesh.org/v1alpha1',
      kind: 'KernelChaos',
      metadata: { namespace: `ns-${i % NAMESPACES}`, name: `exp-${i}`, uid: `exp-uid-${i}`, finalizers: [FINALIZER], creationTimestamp: '2026-11-27T02:00:00Z' },
      spec: {
        mode,
        ...(value ? { value } : {}),
        selector: i % 2 === 0
          ? { namespaces: [`ns-${i % NAMESPACES}`, `ns-${(i + 1) % NAMESPACES}`], labelSelectors: { app: `app-${i % 7}` } }
          : { namespaces: [`ns-${i % NAMESPACES}`], expressionSelectors: [{ key: 'tier', operator: 'In', values: ['web'] }] },
        failKernRequest: { failtype: 0 },
      },
    };
  });
  return { experiments, pods, namespaces, nodes: [], policies: [], now: NOW, webhookNamespace: 'kernelchaos-system' };
}

/** The state after the actions' pod labels and statuses landed, as the API would hold it. */
function settle(state: ControllerState, actions: readonly Action[]): ControllerState {
  const byKey = new Map(state.pods.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, structuredClone(p)]));
  const experiments = state.experiments.map((e) => structuredClone(e));
  for (const a of actions) {
    if (a.type === 'labelPod') {
      const pod = byKey.get(`${a.namespace}/${a.name}`) as V1Pod;
      const patch = podLabelPatch(pod, a.experiments);
      for (const [k, v] of Object.entries(patch?.metadata.labels ?? {})) if (v === null) delete pod.metadata!.labels![k]; else pod.metadata!.labels![k] = v;
      for (const [k, v] of Object.entries(patch?.metadata.annotations ?? {})) if (v === null) delete pod.metadata!.annotations![k]; else pod.metadata!.annotations![k] = v;
    }
    if (a.type === 'updateStatus') {
      const e = experiments.find((x) => x.metadata.name === a.name && x.metadata.namespace === a.namespace) as KernelChaos;
      e.status = { conditions: a.status.conditions, experiment: { desiredPhase: a.status.desiredPhase } };
    }
  }
  return { ...state, pods: [...byKey.values()], experiments };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

function measure(run: () => unknown): number {
  for (let i = 0; i < 3; i++) run();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    run();
    times.push(performance.now() - t);
  }
  return median(times);
}

const fresh = cluster();
const first = reconcile(fresh);
const settled = settle(fresh, first.actions);
const again = reconcile(settled);
if (again.actions.length !== 0) throw new Error(`settled state still has ${again.actions.length} actions: the benchmark's premise is wrong`);
const labelled = first.actions.filter((a) => a.type === 'labelPod').length;

const baselineMs = measure(() => {
  let matches = 0;
  for (const e of settled.experiments) {
    // A copy of the selector each run: no preparation is reused across runs.
    const matcher = compileSelector({ ...e.spec.selector }, e.metadata.namespace ?? 'default');
    for (const p of settled.pods) if (matcher(p)) matches++;
  }
  return matches;
});
// Fresh objects each run so the per-object memos (shape check, prepared selector) do not flatter the numbers.
const copy = (e: KernelChaos): KernelChaos => ({ ...e, spec: { ...e.spec, selector: { ...e.spec.selector } } });
const settledMs = measure(() => reconcile({ ...settled, experiments: settled.experiments.map(copy) }));
const scratchMs = measure(() => reconcile({ ...fresh, experiments: fresh.experiments.map(copy) }));

console.log(`cluster: ${PODS} pods in ${NAMESPACES} namespaces, ${EXPERIMENTS} experiments (all/one/fixed/fixed-percent/random-max-percent); ${labelled} pods to label from scratch`);
console.log(`baseline (selector match only, ${EXPERIMENTS}x${PODS}): ${baselineMs.toFixed(1)} ms`);
console.log(`reconcile, settled (no actions):     ${settledMs.toFixed(1)} ms  (${(settledMs / baselineMs).toFixed(2)}x baseline)`);
console.log(`reconcile, from scratch (${first.actions.length} actions): ${scratchMs.toFixed(1)} ms  (${(scratchMs / baselineMs).toFixed(2)}x baseline)`);
