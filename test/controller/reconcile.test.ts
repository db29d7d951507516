// The controller's pure decisions: labels follow the experiments exactly, every action is
// idempotent (a settled state produces none), and deletion/expiry/policy/pause behave as users expect.
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { EXPERIMENTS_ANNOTATION, FINALIZER, PAUSE_ANNOTATION, TARGET_LABEL, experimentLabelKey } from '../../src/api/labels.js';
import type { KernelChaos, KernelChaosPolicy } from '../../src/api/types.js';
import { reconcile, type Action, type ControllerState } from '../../src/controller/reconcile.js';
import { MAX_STATUS_RECORDS, computeStatus } from '../../src/controller/status.js';
import { allotmentsConfigMap, allotmentsName, reportConfigMap, type NodeAllotments, type NodeReport } from '../../src/kube/reports.js';
import { podLabelPatch } from '../../src/controller/podLabels.js';
import { chaos, namespace, node, pod, pods } from '../selection/fixtures.js';
import { PodIndex } from '../../src/controller/podIndex.js';
import { projectPod } from '../../src/kube/projection.js';

const NOW = new Date('2026-11-27T03:00:00Z');
const EXP = experimentLabelKey('apps', 'exp');

function state(partial: Partial<ControllerState>): ControllerState {
  return { experiments: [], pods: [], namespaces: [namespace('apps')], nodes: [], policies: [], now: NOW, webhookNamespace: 'kernelchaos-system', ...partial };
}

function experiment(spec: Parameters<typeof chaos>[0] = {}, meta: { name?: string; finalizers?: string[]; deleting?: boolean; created?: string; annotations?: Record<string, string> } = {}): KernelChaos {
  const c = chaos(spec, { name: meta.name ?? 'exp' });
  c.metadata.finalizers = meta.finalizers ?? [FINALIZER];
  c.metadata.creationTimestamp = meta.created ?? '2026-11-27T02:59:00Z';
  if (meta.deleting) c.metadata.deletionTimestamp = '2026-11-27T03:00:00Z';
  if (meta.annotations) c.metadata.annotations = meta.annotations;
  return c;
}

/** Applies the actions to the state as the API would, so a second reconcile can be checked. */
function apply(s: ControllerState, actions: readonly Action[]): ControllerState {
  const podsOut = s.pods.map((p) => structuredClone(p));
  let experiments = s.experiments.map((e) => structuredClone(e));
  for (const a of actions) {
    if (a.type === 'labelPod') {
      const target = podsOut.find((p) => p.metadata?.namespace === a.namespace && p.metadata?.name === a.name) as V1Pod;
      const patch = podLabelPatch(target, a.experiments);
      for (const [k, v] of Object.entries(patch?.metadata.labels ?? {})) {
        target.metadata!.labels ??= {};
        if (v === null) delete target.metadata!.labels[k];
        else target.metadata!.labels[k] = v;
      }
      for (const [k, v] of Object.entries(patch?.metadata.annotations ?? {})) {
        target.metadata!.annotations ??= {};
        if (v === null) delete target.metadata!.annotations[k];
        else target.metadata!.annotations[k] = v;
      }
    }
    const e = experiments.find((x) => 'name' in a && x.metadata.name === a.name && x.metadata.namespace === a.namespace);
    if (a.type === 'addFinalizer' && e) e.metadata.finalizers = [...(e.metadata.finalizers ?? []), FINALIZER];
    if (a.type === 'removeFinalizer' && e) {
      e.metadata.finalizers = (e.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
      if (e.metadata.deletionTimestamp && e.metadata.finalizers.length === 0) experiments = experiments.filter((x) => x !== e);
    }
    if (a.type === 'updateStatus' && e) {
      e.status = {
        ...e.status,
        conditions: a.status.conditions,
        experiment: { ...e.status?.experiment, desiredPhase: a.status.desiredPhase, containerRecords: a.status.containerRecords, summary: a.status.summary },
      };
    }
  }
  return { ...s, pods: podsOut, experiments };
}

const types = (actions: readonly Action[]) => actions.map((a) => (a.type === 'labelPod' ? `labelPod ${a.namespace}/${a.name} [${a.experiments.join(',')}]` : a.type === 'event' ? `event ${a.reason}` : a.type));

describe('reconcile', () => {
  it('a new experiment: finalizer first, then labels on the eligible targets, status, and one Selected event; then nothing', () => {
    const s = state({ experiments: [experiment({ mode: 'all' }, { finalizers: [] })], pods: [...pods(3), pod('apps', 'shy')] });
    const first = reconcile(s);
    expect(types(first.actions)).toEqual([
      'addFinalizer',
      'labelPod apps/app-0 [apps/exp]',
      'labelPod apps/app-1 [apps/exp]',
      'labelPod apps/app-2 [apps/exp]',
      'updateStatus',
      'event Selected',
    ]);
    const event = first.actions.at(-1);
    expect(event?.type === 'event' && event.message).toBe('Selected 3 pod(s): apps/app-0, apps/app-1, apps/app-2; 1 matching pod(s) not eligible (not opted in, or in a disabled or system namespace)');
    const status = first.actions.find((a) => a.type === 'updateStatus');
    expect(status?.type === 'updateStatus' && status.status.desiredPhase).toBe('Run');
    expect(status?.type === 'updateStatus' && status.status.conditions.find((c) => c.type === 'Selected')).toEqual({ type: 'Selected', status: 'True', reason: 'PodsSelected' });
    const settled = apply(s, first.actions);
    expect(settled.pods[0]?.metadata?.labels).toEqual({ app: 'web', [TARGET_LABEL]: 'true', [EXP]: 'true' });
    expect(settled.pods[0]?.metadata?.annotations?.[EXPERIMENTS_ANNOTATION]).toBe('apps/exp');
    expect(reconcile(settled).actions).toEqual([]);
  });

  it('two experiments on one pod: both labels, the annotation lists both, sorted', () => {
    const s = state({ experiments: [experiment({ mode: 'all' }, { name: 'b' }), experiment({ mode: 'all' }, { name: 'a' })], pods: pods(1) });
    const labelled = apply(s, reconcile(s).actions).pods[0];
    expect(labelled?.metadata?.annotations?.[EXPERIMENTS_ANNOTATION]).toBe('apps/a,apps/b');
    expect(Object.keys(labelled?.metadata?.labels ?? {}).sort()).toEqual(['app', experimentLabelKey('apps', 'a'), experimentLabelKey('apps', 'b'), TARGET_LABEL].sort());
  });

  it('removes labels of experiments that no longer exist, and drops the target label when none is left', () => {
    const stale = pod('apps', 'p', {
      annotations: { 'kernelchaos.dev/inject': 'true', [EXPERIMENTS_ANNOTATION]: 'apps/gone' },
      labels: { keep: 'me', [TARGET_LABEL]: 'true', [experimentLabelKey('apps', 'gone')]: 'true' },
    });
    const s = state({ pods: [stale] });
    const r = reconcile(s);
    expect(types(r.actions)).toEqual(['labelPod apps/p []']);
    const after = apply(s, r.actions).pods[0];
    expect(after?.metadata?.labels).toEqual({ keep: 'me' });
    expect(after?.metadata?.annotations).toEqual({ 'kernelchaos.dev/inject': 'true' });
  });

  it('deletion: labels come off first; the finalizer goes once no pod carries the experiment', () => {
    const live = experiment({ mode: 'all' });
    const labelled = apply(state({ experiments: [live], pods: pods(2) }), reconcile(state({ experiments: [live], pods: pods(2) })).actions);
    const deleting = { ...labelled, experiments: labelled.experiments.map((e) => ({ ...e, metadata: { ...e.metadata, deletionTimestamp: '2026-11-27T03:00:00Z' } })) };
    const r1 = reconcile(deleting);
    expect(types(r1.actions)).toEqual(['labelPod apps/app-0 []', 'labelPod apps/app-1 []', 'event Unlabelling']);
    const unlabelled = apply(deleting, r1.actions);
    const r2 = reconcile(unlabelled);
    expect(types(r2.actions)).toEqual(['removeFinalizer']);
    const gone = apply(unlabelled, r2.actions);
    expect(gone.experiments).toEqual([]);
    expect(reconcile(gone).actions).toEqual([]);
  });

  it('deletion does not wait for terminating pods that still carry the labels', () => {
    const deleting = experiment({ mode: 'all' }, { deleting: true });
    const going = pod('apps', 'going', { labels: { [TARGET_LABEL]: 'true', [EXP]: 'true' }, annotations: { [EXPERIMENTS_ANNOTATION]: 'apps/exp' } });
    going.metadata!.deletionTimestamp = new Date('2026-11-27T02:59:59Z');
    expect(types(reconcile(state({ experiments: [deleting], pods: [going] })).actions)).toEqual(['removeFinalizer']);
  });

  it('an experiment whose duration has ended (no scheduler) is unlabelled and stopped; an active one asks to be woken at its end', () => {
    const running = experiment({ mode: 'all', duration: '5m' }, { created: '2026-11-27T02:58:00Z' });
    const r = reconcile(state({ experiments: [running], pods: pods(1) }));
    expect(r.nextWakeAt?.toISOString()).toBe('2026-11-27T03:03:00.000Z');
    const labelled = apply(state({ experiments: [running], pods: pods(1) }), r.actions);
    const later = { ...labelled, now: new Date('2026-11-27T03:03:00Z') };
    const ended = reconcile(later);
    expect(types(ended.actions)).toEqual(['labelPod apps/app-0 []', 'updateStatus', 'event DurationEnded']);
    const status = ended.actions.find((a) => a.type === 'updateStatus');
    expect(status?.type === 'updateStatus' && status.status.desiredPhase).toBe('Stop');
    expect(ended.nextWakeAt).toBeUndefined();
    expect(reconcile(apply(later, ended.actions)).actions).toEqual([]);
    // With a scheduler the duration is per run: the companion opens and closes windows; labels stay.
    const scheduled = experiment({ mode: 'all', duration: '1m', scheduler: { cron: '@every 5m' } }, { created: '2026-11-27T01:00:00Z' });
    expect(types(reconcile(state({ experiments: [scheduled], pods: pods(1) })).actions)).toContain('labelPod apps/app-0 [apps/exp]');
  });

  it('the 1.x form (scheduler + duration): labels stay, desiredPhase is Run inside a run and Stop between, woken at each boundary', () => {
    const scheduled = experiment({ mode: 'all', duration: '1m', scheduler: { cron: '@every 5m' } }, { created: '2026-11-27T02:55:30Z' });
    // The clock is 03:00:00: runs open at creation + k*5m, so 02:55:30 and 03:00:30.
    const between = reconcile(state({ experiments: [scheduled], pods: pods(1) }));
    const desired = (r: ReturnType<typeof reconcile>) => r.actions.flatMap((a) => (a.type === 'updateStatus' ? [a.status.desiredPhase] : []));
    expect(desired(between)).toEqual(['Stop']);
    expect(between.nextWakeAt?.toISOString()).toBe('2026-11-27T03:00:30.000Z');
    const s1 = { ...apply(state({ experiments: [scheduled], pods: pods(1) }), between.actions), now: new Date('2026-11-27T03:00:30Z') };
    const inside = reconcile(s1);
    expect(desired(inside)).toEqual(['Run']);
    expect(inside.nextWakeAt?.toISOString()).toBe('2026-11-27T03:01:30.000Z');
    expect(types(inside.actions)).not.toContain('labelPod apps/app-0 []');
  });

  it('duration "" is no duration (runs until deleted); 0s stops at once', () => {
    const none = experiment({ mode: 'all', duration: '' }, { created: '2026-11-27T01:00:00Z' });
    const r = reconcile(state({ experiments: [none], pods: pods(1) }));
    expect(types(r.actions)).toContain('labelPod apps/app-0 [apps/exp]');
    expect(r.nextWakeAt).toBeUndefined();
    const zero = experiment({ mode: 'all', duration: '0s' }, { created: '2026-11-27T03:00:00Z' });
    const z = reconcile(state({ experiments: [zero], pods: pods(1) }));
    expect(z.plans.get('apps/exp')?.kind).toBe('finished');
    expect(types(z.actions)).not.toContain('labelPod apps/app-0 [apps/exp]');
  });

  it('a policy of a reachable namespace that forbids the experiment: nothing labelled, PolicyDenied', () => {
    const policy: KernelChaosPolicy = {
      apiVersion: 'kernelchaos.dev/v1alpha1',
      kind: 'KernelChaosPolicy',
      metadata: { name: 'strict', namespace: 'apps' },
      spec: { allowedFailtypes: [2] },
    };
    const r = reconcile(state({ experiments: [experiment({ mode: 'all' })], pods: pods(2), policies: [policy] }));
    expect(types(r.actions)).toEqual(['updateStatus', 'event PolicyDenied']);
    const ev = r.actions.at(-1);
    expect(ev?.type === 'event' && ev.message).toContain('apps/strict');
    expect(r.plans.get('apps/exp')?.kind).toBe('denied');
  });

  it('pausing keeps the labels (the companion detaches) and sets desiredPhase Stop and Paused True', () => {
    const paused = experiment({ mode: 'all' }, { annotations: { [PAUSE_ANNOTATION]: 'true' } });
    const r = reconcile(state({ experiments: [paused], pods: pods(1) }));
    expect(types(r.actions)).toContain('labelPod apps/app-0 [apps/exp]');
    const status = r.actions.find((a) => a.type === 'updateStatus');
    expect(status?.type === 'updateStatus' && status.status.desiredPhase).toBe('Stop');
    expect(status?.type === 'updateStatus' && status.status.conditions.find((c) => c.type === 'Paused')?.status).toBe('True');
  });

  it('mode one keeps the same pod across reconciles and restarts, and never labels terminating pods', () => {
    const one = experiment({ mode: 'one' });
    const all = pods(7);
    const chosen = reconcile(state({ experiments: [one], pods: all })).actions.filter((a) => a.type === 'labelPod');
    expect(chosen).toHaveLength(1);
    const shuffledPods = [...all].reverse();
    expect(reconcile(state({ experiments: [one], pods: shuffledPods })).actions.filter((a) => a.type === 'labelPod')).toEqual(chosen);
    const name = chosen[0]?.type === 'labelPod' ? chosen[0].name : '';
    const terminating = all.map((p) => (p.metadata?.name === name ? { ...p, metadata: { ...p.metadata, deletionTimestamp: new Date() } } : p));
    const next = reconcile(state({ experiments: [one], pods: terminating })).actions.filter((a) => a.type === 'labelPod');
    expect(next).toHaveLength(1);
    expect(next[0]?.type === 'labelPod' && next[0].name).not.toBe(name);
  });

  it('a malformed experiment (no webhook in front of the API) is reported and does not stop the others', () => {
    const broken = experiment({ mode: 'all' }, { name: 'broken' });
    delete (broken.spec as Partial<KernelChaos['spec']>).selector;
    const good = experiment({ mode: 'all' }, { name: 'good' });
    const r = reconcile(state({ experiments: [broken, good], pods: pods(1) }));
    expect(r.plans.get('apps/broken')).toEqual({ kind: 'invalid', message: expect.stringContaining('spec.selector') });
    expect(types(r.actions)).toContain('labelPod apps/app-0 [apps/good]');
    expect(types(r.actions)).toContain('event InvalidSelection');
  });

  it('an unusable policy in a reachable namespace fails closed', () => {
    const policy = { apiVersion: 'kernelchaos.dev/v1alpha1', kind: 'KernelChaosPolicy', metadata: { name: 'typo', namespace: 'apps' }, spec: { maxProbabilty: 5 } } as unknown as KernelChaosPolicy;
    const r = reconcile(state({ experiments: [experiment({ mode: 'all' })], pods: pods(1), policies: [policy] }));
    expect(r.plans.get('apps/exp')).toEqual({ kind: 'denied', reasons: [expect.stringContaining('policy apps/typo is unusable')] });
    expect(r.actions.some((a) => a.type === 'labelPod')).toBe(false);
  });

  it('an unusable value targets nothing and says why once', () => {
    const bad = experiment({ mode: 'fixed', value: 'lots' });
    const s = state({ experiments: [bad], pods: pods(3) });
    const r = reconcile(s);
    expect(types(r.actions)).toEqual(['updateStatus', 'event InvalidSelection']);
    expect(reconcile(apply(s, r.actions)).actions).toEqual([]);
  });
});

describe('computeStatus', () => {
  const targets = [pod('apps', 'a'), pod('apps', 'b')];
  const record = (id: string, phase: 'Injected' | 'Not Injected' | 'Failed', at = '2026-01-01T00:00:00Z') => ({
    id,
    selectorKey: '.',
    phase,
    injectedCount: phase === 'Injected' ? 1 : 0,
    recoveredCount: 0,
    events: [{ type: 'Succeeded' as const, operation: 'Apply' as const, timestamp: at }],
  });
  const report = (node: string, records: ReturnType<typeof record>[], faultsInjected = 0): NodeReport => ({
    node,
    experiment: { namespace: 'chaos', name: 'exp', uid: 'u1' },
    faultsInjected,
    records,
  });
  const status = (reports: NodeReport[], containerNames?: string[]) =>
    computeStatus(experiment({ mode: 'all', ...(containerNames ? { containerNames } : {}) }), { kind: 'active', targets, skipped: 0, phase: { phase: 'active', openedAt: new Date(0), closesAt: null } }, reports);
  const cond = (reports: NodeReport[], type: string, containerNames?: string[]) => status(reports, containerNames).conditions.find((x) => x.type === type);

  it('AllInjected when every targeted container reports Injected, across node reports', () => {
    expect(cond([report('n1', [record('apps/a/app', 'Injected')])], 'AllInjected')).toEqual({ type: 'AllInjected', status: 'False', reason: 'Waiting' });
    expect(cond([report('n1', [record('apps/a/app', 'Injected')]), report('n2', [record('apps/b/app', 'Injected')])], 'AllInjected')?.status).toBe('True');
    expect(cond([report('n1', [record('apps/a/app', 'Injected'), record('apps/b/app', 'Failed')])], 'AllInjected')?.reason).toBe('InjectionFailed');
    expect(cond([], 'AllInjected', ['sidecar'])?.reason).toBe('NoMatchingContainer');
  });

  it('AllRecovered when no container still has the fault', () => {
    expect(cond([], 'AllRecovered')).toEqual({ type: 'AllRecovered', status: 'False', reason: 'NoRecords' });
    expect(cond([report('n1', [record('apps/a/app', 'Injected'), record('apps/b/app', 'Not Injected')])], 'AllRecovered')?.status).toBe('False');
    expect(cond([report('n1', [record('apps/a/app', 'Not Injected'), record('apps/b/app', 'Not Injected')])], 'AllRecovered')?.status).toBe('True');
  });

  it('keeps the status bounded: exact totals in summary, only the most recently changed records', () => {
    const reports = Array.from({ length: 50 }, (_, n) =>
      report(`node-${n}`, Array.from({ length: 20 }, (_, i) => record(`apps/p${n}-${i}/app`, i === 0 ? 'Failed' : 'Injected', `2026-01-01T00:${String(n).padStart(2, '0')}:${String(i).padStart(2, '0')}Z`)), 7),
    );
    const s = status(reports);
    expect(s.summary).toEqual({ nodes: 50, containers: 1000, injected: 950, notInjected: 0, failed: 50, injectedCount: 950, recoveredCount: 0, faultsInjected: 350, recordsShown: MAX_STATUS_RECORDS });
    expect(s.containerRecords).toHaveLength(MAX_STATUS_RECORDS);
    // The newest changes: node-49 (minute 49) records 0..19.
    expect(new Set(s.containerRecords.map((r) => r.node))).toEqual(new Set(['node-49']));
    expect(JSON.stringify(s).length).toBeLessThan(16_384);
  });
});

describe('reconcile with node reports', () => {
  const SYS = 'kernelchaos-system';
  const withUid = () => {
    const c = experiment({ mode: 'all' });
    c.metadata.uid = 'uid-1';
    return c;
  };
  const reportFor = (uid: string, node: string, faults: number) =>
    reportConfigMap(SYS, {
      node,
      experiment: { namespace: 'apps', name: 'exp', uid },
      faultsInjected: faults,
      records: [{ id: `apps/p-${node}/app`, selectorKey: '.', phase: 'Injected', injectedCount: 1, recoveredCount: 0, faultsInjected: faults }],
    });

  it('folds every node report into the status; counter-only changes wait for the interval; reports of gone experiments are deleted', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    let s: ControllerState = state({ experiments: [withUid()], pods: pods(2), now });
    s = { ...s, reports: [reportFor('uid-1', 'n1', 3), reportFor('uid-1', 'n2', 4), reportFor('gone-uid', 'n1', 9)] };
    const first = reconcile(s);
    const update = first.actions.find((a) => a.type === 'updateStatus');
    expect(update?.type === 'updateStatus' && update.status.summary).toMatchObject({ nodes: 2, containers: 2, faultsInjected: 7 });
    expect(first.actions.filter((a) => a.type === 'deleteReport').map((a) => 'name' in a && a.name)).toEqual([reportFor('gone-uid', 'n1', 9).metadata?.name]);

    // Written at `now`; a counter moves a second later: no write until the interval passed, but a wake-up then.
    const written = apply(s, first.actions);
    const later = { ...written, reports: [reportFor('uid-1', 'n1', 5), reportFor('uid-1', 'n2', 4)], now: new Date(now.getTime() + 1000), statusWrittenAt: new Map([['apps/exp', now.getTime()]]), statusIntervalMs: 10_000 };
    const quiet = reconcile(later);
    expect(quiet.actions.filter((a) => a.type === 'updateStatus')).toEqual([]);
    expect(quiet.nextWakeAt?.getTime()).toBe(now.getTime() + 10_000);
    const due = reconcile({ ...later, now: new Date(now.getTime() + 10_000) });
    const u = due.actions.find((a) => a.type === 'updateStatus');
    expect(u?.type === 'updateStatus' && u.status.summary?.faultsInjected).toBe(9);
  });
});

describe('podLabelPatch', () => {
  it('touches only our keys and carries the resourceVersion', () => {
    const p = pod('apps', 'p', { labels: { app: 'web', [TARGET_LABEL]: 'true', [experimentLabelKey('apps', 'old')]: 'true' }, annotations: { other: 'x', 'kernelchaos.dev/skip-reason': 'not-opted-in' } });
    p.metadata!.resourceVersion = '42';
    expect(podLabelPatch(p, ['apps/new'])).toEqual({
      metadata: {
        resourceVersion: '42',
        labels: { [experimentLabelKey('apps', 'new')]: 'true', [experimentLabelKey('apps', 'old')]: null },
        annotations: { [EXPERIMENTS_ANNOTATION]: 'apps/new', 'kernelchaos.dev/skip-reason': null },
      },
    });
    expect(podLabelPatch(pod('apps', 'q', { labels: { app: 'web' } }), [])).toBeUndefined();
    expect(podLabelPatch(pod('apps', 'q', { labels: { 'kernelchaos.dev/inject-not-ours': 'x' } }), [])).toBeUndefined();
  });
});

describe('what the controller caches decides as the whole cluster would', () => {
  // Pods with everything a real one carries; the selectors read labels, annotations, selectable fields, nodes and phases.
  const rich = (i: number): V1Pod => {
    const p = pod(i % 2 === 0 ? 'apps' : 'shop', `p-${i}`, { labels: { app: i % 3 === 0 ? 'web' : 'db' }, annotations: { 'kernelchaos.dev/inject': i % 5 === 0 ? 'false' : 'true', team: i % 4 === 0 ? 'a' : 'b' }, node: `n-${i % 3}`, phase: i % 7 === 0 ? 'Pending' : 'Running' });
    p.metadata!.resourceVersion = String(100 + i);
    p.metadata!.managedFields = [{ manager: 'kubelet', operation: 'Update' }];
    p.spec = { ...p.spec!, serviceAccountName: i % 2 === 0 ? 'front' : 'back', containers: [{ name: 'app', image: 'busybox', env: [{ name: 'X', value: 'y' }] }, { name: 'side', image: 'envoy' }] };
    p.status = { ...p.status, podIP: `10.0.0.${i}`, conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [{ name: 'app', containerID: `containerd://${i}`, image: 'busybox', imageID: 'sha', ready: true, restartCount: 0 }] };
    return p;
  };
  const experiments = [
    experiment({ mode: 'all', selector: { namespaces: ['apps', 'shop'], labelSelectors: { app: 'web' } } }, { name: 'web' }),
    experiment({ mode: 'fixed', value: '3', selector: { namespaces: ['apps'], annotationSelectors: { team: 'a' } } }, { name: 'team' }),
    experiment({ mode: 'fixed-percent', value: '50', selector: { namespaces: ['shop'], fieldSelectors: { 'spec.serviceAccountName': 'back', 'status.phase': 'Running' } } }, { name: 'fields' }),
    experiment({ mode: 'one', selector: { namespaces: ['apps', 'shop'], nodeSelectors: { zone: 'b' }, podPhaseSelectors: ['Running'] }, containerNames: ['side'] }, { name: 'nodes' }),
  ].map((e, i) => ({ ...e, metadata: { ...e.metadata, uid: `uid-${i}` } }));
  const base = (podList: V1Pod[]): ControllerState =>
    state({ experiments, pods: podList, namespaces: [namespace('apps'), namespace('shop', { 'kernelchaos.dev/injection': 'enabled' })], nodes: [node('n-0', { zone: 'a' }), node('n-1', { zone: 'b' }), node('n-2', { zone: 'b' })] });

  it('projected pods give the same actions as whole pods', () => {
    const whole = Array.from({ length: 60 }, (_, i) => rich(i));
    const actions = reconcile(base(whole)).actions;
    expect(actions.filter((a) => a.type === 'labelPod').length).toBeGreaterThan(10);
    expect(reconcile(base(whole.map(projectPod))).actions).toEqual(actions);
  });

  it('an index kept current one pod at a time decides as one built from scratch', () => {
    let current = Array.from({ length: 60 }, (_, i) => projectPod(rich(i)));
    const index = PodIndex.from(current);
    let s = base(current);
    for (let step = 0; step < 6; step++) {
      const persistent = reconcile({ ...s, pods: [], podIndex: index });
      const fresh = reconcile(s);
      expect(persistent.actions).toEqual(fresh.actions);
      const fed = new Map(s.pods.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p]));
      s = apply(s, fresh.actions);
      // The API's answer to the patches, and then some churn: a pod relabelled, one deleted, one terminating, one new.
      current = s.pods.map((p) => structuredClone(p));
      const changed = current[step * 7 % current.length] as V1Pod;
      changed.metadata!.labels = { ...changed.metadata!.labels, app: changed.metadata!.labels?.app === 'web' ? 'db' : 'web' };
      const removed = current.splice(step * 11 % current.length, 1)[0] as V1Pod;
      const terminating = current[step * 13 % current.length] as V1Pod;
      terminating.metadata!.deletionTimestamp = new Date('2026-11-27T03:00:00Z');
      const added = projectPod(rich(100 + step));
      current.push(added);
      for (const p of s.pods) if (!current.some((c) => c.metadata?.name === p.metadata?.name && c.metadata?.namespace === p.metadata?.namespace)) index.remove(p);
      // As the store does: only pods that changed are put (the rest keep their cached selections).
      for (const p of current) if (!isDeepStrictEqual(fed.get(`${p.metadata?.namespace}/${p.metadata?.name}`), p)) index.put(p);
      expect(removed.metadata?.name).toBeDefined();
      s = { ...s, pods: current };
    }
  });
});

describe('per-node times allotments', () => {
  const withTimes = () => experiment({ failKernRequest: { failtype: 0, times: 3 } });
  const onNodes = (nodes: string[]) => pods(nodes.length, 'apps', (i) => ({ node: nodes[i] as string }));
  const puts = (actions: readonly Action[]) => actions.filter((a): a is Extract<Action, { type: 'putAllotments' }> => a.type === 'putAllotments').map((a) => a.allotments);
  const asObjects = (list: NodeAllotments[]) => list.map((a) => allotmentsConfigMap('kernelchaos-system', a));

  it('the nodes holding targets get allotments that split times, written before the labels; a settled state writes none', () => {
    const s = state({ experiments: [withTimes()], pods: onNodes(['n-b', 'n-a', 'n-c', 'n-d']) });
    const { actions } = reconcile(s);
    expect(puts(actions)).toEqual([
      { node: 'n-a', allotments: { 'uid-exp-1': { allotment: 1, version: 1, ceiling: 1 } } },
      { node: 'n-b', allotments: { 'uid-exp-1': { allotment: 1, version: 1, ceiling: 1 } } },
      { node: 'n-c', allotments: { 'uid-exp-1': { allotment: 1, version: 1, ceiling: 1 } } },
      { node: 'n-d', allotments: { 'uid-exp-1': { allotment: 0, version: 1, ceiling: 0 } } },
    ]);
    const types = actions.map((a) => a.type);
    expect(types.lastIndexOf('putAllotments')).toBeLessThan(types.indexOf('labelPod'));
    const settled = apply(s, actions);
    expect(puts(reconcile({ ...settled, reports: asObjects(puts(actions)) }).actions)).toEqual([]);
  });

  it("a node's report echoes its entry; once its targets are gone and it detached, its unused allotment goes to a node that holds targets", () => {
    const exp = withTimes();
    const written = asObjects([
      { node: 'n-a', allotments: { 'uid-exp-1': { allotment: 2, version: 1, ceiling: 2 } } },
      { node: 'n-b', allotments: { 'uid-exp-1': { allotment: 1, version: 1, ceiling: 1 } } },
    ]);
    const report = (node: string, faults: number, version: number, allotment: number, phase: 'Injected' | 'Not Injected'): NodeReport => ({
      node,
      experiment: { namespace: 'apps', name: 'exp', uid: 'uid-exp-1' },
      faultsInjected: faults,
      records: [{ id: `apps/x/app`, selectorKey: '.', phase, injectedCount: 1, recoveredCount: 0, faultsInjected: faults, node }],
      budget: { allotment, source: 'allotment', version },
    });
    // Only n-b holds targets now; n-a used 1 of 2 and detached.
    const s = state({ experiments: [exp], pods: onNodes(['n-b']), reports: [...written, reportConfigMap('kernelchaos-system', report('n-a', 1, 1, 2, 'Not Injected'))] });
    expect(puts(reconcile(s).actions)).toEqual([{ node: 'n-a', allotments: { 'uid-exp-1': { allotment: 1, version: 2, ceiling: 2 } } }]);
    // n-a's companion echoes version 2: the fault it did not use goes to n-b.
    const echoed = state({
      experiments: [exp],
      pods: onNodes(['n-b']),
      reports: [
        ...asObjects([
          { node: 'n-a', allotments: { 'uid-exp-1': { allotment: 1, version: 2, ceiling: 2 } } },
          { node: 'n-b', allotments: { 'uid-exp-1': { allotment: 1, version: 1, ceiling: 1 } } },
        ]),
        reportConfigMap('kernelchaos-system', report('n-a', 1, 2, 1, 'Not Injected')),
        reportConfigMap('kernelchaos-system', report('n-b', 1, 1, 1, 'Injected')),
      ],
    });
    expect(puts(reconcile(echoed).actions)).toEqual([{ node: 'n-b', allotments: { 'uid-exp-1': { allotment: 2, version: 2, ceiling: 2 } } }]);
    // The experiment gone: its allotments objects are deleted.
    const gone = reconcile({ ...echoed, experiments: [] }).actions.filter((a) => a.type === 'deleteAllotments').map((a) => 'name' in a && a.name);
    expect(gone.sort()).toEqual([allotmentsName('n-a'), allotmentsName('n-b')].sort());
  });
});
