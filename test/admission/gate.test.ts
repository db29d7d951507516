// The admission gate the webhook, the controller and the companion share, and the companion
// checking it before it arms: a pod's own kernelchaos.dev/target label is never enough.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { admit, eligibility, policyVerdict, type GateContext } from '../../src/admission/gate.js';
import type { KernelChaosPolicy } from '../../src/api/types.js';
import { validateKernelChaos } from '../../src/api/validate.js';
import { runCompanion, type RunningCompanion } from '../../src/companion/run.js';
import { silentLog } from '../../src/kube/log.js';
import { FakeEngine } from '../companion/fakes.js';
import { seedChaos, SEED_YAML } from '../fixtures/seed.js';

const REL = 'kernelchaos-system';
const pod = (namespace: string, annotations: Record<string, string> = {}): V1Pod => ({ metadata: { name: 'p', namespace, annotations } });
const ns = (name: string, label?: string): V1Namespace => ({ metadata: { name, ...(label ? { labels: { 'kernelchaos.dev/injection': label } } : {}) } });
const policy = (namespace: string, spec: KernelChaosPolicy['spec']): KernelChaosPolicy => ({
  apiVersion: 'kernelchaos.dev/v1alpha1',
  kind: 'KernelChaosPolicy',
  metadata: { name: 'limits', namespace },
  spec,
});

describe('admission gate: opt-in', () => {
  it('needs the pod annotation or an enabled namespace; disabled, system and release namespaces win over both', () => {
    const optIn = { 'kernelchaos.dev/inject': 'true' };
    expect(eligibility(pod('app', optIn), undefined, REL)).toEqual({ eligible: true });
    expect(eligibility(pod('app'), ns('app', 'enabled'), REL)).toEqual({ eligible: true });
    expect(eligibility(pod('app'), undefined, REL)).toEqual({ eligible: false, reason: 'not-opted-in' });
    expect(eligibility(pod('app', { 'kernelchaos.dev/inject': 'yes' }), undefined, REL)).toEqual({ eligible: false, reason: 'not-opted-in' });
    expect(eligibility(pod('app', optIn), ns('app', 'disabled'), REL)).toEqual({ eligible: false, reason: 'namespace-disabled' });
    expect(eligibility(pod('kube-system', optIn), ns('kube-system', 'enabled'), REL)).toEqual({ eligible: false, reason: 'system-namespace' });
    expect(eligibility(pod(REL, optIn), undefined, REL)).toEqual({ eligible: false, reason: 'system-namespace' });
  });
});

describe('admission gate: policies', () => {
  const chaos = { ...seedChaos(), spec: { ...seedChaos().spec, failKernRequest: { ...seedChaos().spec.failKernRequest, probability: 50 } } };
  it('holds the experiment to every policy of a namespace it reaches, naming the policy and the field', () => {
    expect(policyVerdict(chaos, [policy('chaos-mount', { maxProbability: 80 })], new Date())).toEqual({ allowed: true });
    const v = policyVerdict(chaos, [policy('chaos-mount', { maxProbability: 10 })], new Date());
    expect(v).toMatchObject({ allowed: false, reasons: [expect.stringMatching(/^spec\.failKernRequest\.probability: 50 exceeds policy chaos-mount\/limits maxProbability 10/)] });
    // Unreachable namespaces do not count.
    expect(policyVerdict(chaos, [policy('elsewhere', { maxProbability: 10 })], new Date())).toEqual({ allowed: true });
  });
  it('fails closed on a reachable policy it cannot read', () => {
    const broken = policy('chaos-mount', { maxProbability: 'lots' as unknown as number });
    expect(policyVerdict(chaos, [broken], new Date())).toMatchObject({ allowed: false, reasons: [expect.stringContaining('policy chaos-mount/limits is unusable')] });
  });
  it('admit: opt-in first, then policies', () => {
    const ctx = (policies: KernelChaosPolicy[], nsLabel?: string): GateContext => ({ namespace: (n) => ns(n, nsLabel), policies, releaseNamespace: REL, now: new Date() });
    const p = pod('chaos-mount');
    expect(admit(chaos, p, ctx([], 'enabled'))).toEqual({ admitted: true });
    expect(admit(chaos, p, ctx([]))).toMatchObject({ admitted: false, rule: 'opt-in', reason: 'not-opted-in', message: expect.stringContaining('kernelchaos.dev/inject') });
    expect(admit(chaos, p, ctx([policy('chaos-mount', { maxTimes: 5 })], 'enabled'))).toMatchObject({ admitted: false, rule: 'policy', message: expect.stringContaining('maxTimes') });
  });
});

// The companion, over a manifest directory and a kubelet cgroup tree, with the recording engine of
// the lifecycle tests (kernel behaviour is the VM test's).
describe('the companion checks the gate before it arms', () => {
  let dir: string;
  let running: RunningCompanion | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kc-gate-'));
  });
  afterEach(async () => {
    await running?.stop('test done');
    running = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const cid = (n: number): string => `${n}`.padStart(2, '0').repeat(32);
  function podYaml(name: string, namespace: string, n: number, optIn: boolean): string {
    const uid = `00000000-0000-4000-8000-0000000000${`${n}`.padStart(2, '0')}`;
    return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${namespace}
  uid: ${uid}
  labels: {kernelchaos.dev/target: "true"}
  annotations: {${optIn ? 'kernelchaos.dev/inject: "true", ' : ''}kernelchaos.dev/experiments: "chaos-testing/kernel-chaos-example"}
spec:
  nodeName: node-1
  containers: [{name: app, image: busybox}]
status:
  phase: Running
  qosClass: BestEffort
  containerStatuses:
    - {name: app, image: b, imageID: b, ready: true, restartCount: 0, containerID: "containerd://${cid(n)}", state: {running: {}}}
---
`;
  }

  it('faults the opted-in pod only: a self-labelled pod, a pod of a disabled namespace and a policy-forbidden experiment get nothing', async () => {
    const manifests = join(dir, 'manifests');
    const cgroupRoot = join(dir, 'cgroup');
    mkdirSync(manifests);
    mkdirSync(cgroupRoot);
    writeFileSync(join(cgroupRoot, 'cgroup.controllers'), 'cpu memory\n');
    const ino: bigint[] = [];
    for (const n of [1, 2, 3]) {
      const path = join(cgroupRoot, 'kubepods', 'besteffort', `pod00000000-0000-4000-8000-0000000000${`${n}`.padStart(2, '0')}`, cid(n));
      mkdirSync(path, { recursive: true });
      ino[n] = statSync(path, { bigint: true }).ino;
    }
    // The seed example selects namespace chaos-mount; the pods all carry its labels.
    writeFileSync(
      join(manifests, 'pods.yaml'),
      podYaml('opted-in', 'chaos-mount', 1, true) +
        podYaml('self-labelled', 'chaos-mount', 2, false) +
        podYaml('in-disabled-ns', 'locked', 3, true) +
        'apiVersion: v1\nkind: Namespace\nmetadata: {name: locked, labels: {kernelchaos.dev/injection: disabled}}\n',
    );
    writeFileSync(join(manifests, 'seed.yaml'), SEED_YAML.replace('      - chaos-mount', '      - chaos-mount\n      - locked'));
    const engine = new FakeEngine();
    running = await runCompanion(
      { node: 'node-1', source: { kind: 'manifests', dir: manifests, pollIntervalMs: 50 }, cgroupRoot, procRoot: join(dir, 'proc') },
      { engine, validate: validateKernelChaos, log: silentLog },
    );
    expect(engine.live()).toHaveLength(1);
    expect(engine.live()[0]?.targets).toEqual([ino[1]]);
    const records = running.companion.recordsOf('chaos-testing', 'kernel-chaos-example');
    const byPod = Object.fromEntries(records.map((r) => [r.container.pod, r]));
    expect(byPod['opted-in']?.phase).toBe('Injected');
    expect(byPod['self-labelled']).toMatchObject({ phase: 'Failed', reason: expect.stringContaining('has not opted in') });
    expect(byPod['in-disabled-ns']).toMatchObject({ phase: 'Failed', reason: expect.stringContaining('labelled kernelchaos.dev/injection=disabled') });

    // A policy in a namespace the experiment reaches forbids it: the armed fault comes off.
    writeFileSync(
      join(manifests, 'policy.yaml'),
      'apiVersion: kernelchaos.dev/v1alpha1\nkind: KernelChaosPolicy\nmetadata: {name: no-slab, namespace: chaos-mount}\nspec: {allowedFailtypes: [2]}\n',
    );
    for (let i = 0; i < 500 && engine.live().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(engine.live()).toHaveLength(0);
    expect(engine.arms.flatMap((a) => a.targets)).toEqual([ino[1]]);
    expect(running.companion.recordsOf('chaos-testing', 'kernel-chaos-example').find((r) => r.container.pod === 'opted-in')).toMatchObject({
      phase: 'Failed',
      reason: expect.stringContaining('refused by policy: spec.failKernRequest.failtype: 0 is not allowed by policy chaos-mount/no-slab'),
    });
  });
});
