// The pure half of the companion: from what the node looks like now (targeted pods, their
// experiments, the clock, resolved cgroups) to what should be attached. The effectful half
// (lifecycle.ts) diffs this against what is attached and arms or disarms.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { describeIneligible, eligibility, policyVerdict } from '../admission/gate.js';
import type { ParsedFailKernRequest } from '../api/predicate/ast.js';
import { EXPERIMENTS_ANNOTATION, TARGET_LABEL, experimentLabelKey, parseExperimentsAnnotation } from '../api/labels.js';
import type { KernelChaos, KernelChaosPolicy } from '../api/types.js';
import { nextBoundary, nodePhase, type CronParser, type ExperimentPhase } from '../schedule/phase.js';
import { selectContainers, type Resolution } from './cgroup-resolver.js';
import { experimentIdOf, injectionKey, type ContainerKey, type ExperimentId, type Validate } from './model.js';

export interface PlanInput {
  node: string;
  now: Date;
  pods: readonly V1Pod[];
  experiments: readonly KernelChaos[];
  /** When the companion first saw an experiment (by uid): the start of objects without creationTimestamp. */
  firstSeen: (uid: string) => Date | undefined;
  validate: Validate;
  parseCron: CronParser;
  /** Resolved cgroups by `status.containerStatuses[].containerID`; missing entries are reported as pending resolution. */
  resolutions: ReadonlyMap<string, Resolution>;
  /** What the admission gate needs: a pod's label is never trusted alone. */
  gate: CompanionGate;
}

export interface CompanionGate {
  namespace(name: string): V1Namespace | undefined;
  policies: readonly KernelChaosPolicy[];
  /** kernelchaos's own namespace: never faulted. */
  releaseNamespace: string;
}

/** The gate's refusal of `pod` (opt-in rules), or null when it may be faulted. */
function podRefusal(pod: V1Pod, gate: CompanionGate): string | null {
  const ns = pod.metadata?.namespace ?? 'default';
  const e = eligibility(pod, gate.namespace(ns), gate.releaseNamespace);
  return e.eligible ? null : `not faulted: ${describeIneligible(e.reason, ns)}`;
}

/** The gate's refusal of the experiment (every reachable policy), or null. */
function policyRefusal(chaos: KernelChaos, input: Pick<PlanInput, 'gate' | 'now'>): string | null {
  const v = policyVerdict(chaos, input.gate.policies, input.now, { checkCreationWindow: false });
  return v.allowed ? null : `refused by policy: ${v.reasons.join('; ')}`;
}

export type ContainerPlan =
  | { container: ContainerKey; want: 'inject'; containerId: string; cgroupId: bigint; cgroupPath: string }
  /** Nothing should be attached, for an ordinary reason (window closed, paused, container not running). */
  | { container: ContainerKey; want: 'idle'; reason: string; containerId?: string }
  /** Something should be attached but cannot be (bad spec, refused by the admission gate, cgroup not found). */
  | { container: ContainerKey; want: 'failed'; reason: string; containerId?: string };

export interface ExperimentPlan {
  id: ExperimentId;
  /** Changes whenever the spec or generation does. */
  key: string;
  schedule: ExperimentPhase;
  containers: ContainerPlan[];
}

export interface DesiredInjection {
  key: string;
  experiment: ExperimentId;
  parsed: ParsedFailKernRequest;
  /** Sorted, without duplicates. */
  cgroupIds: bigint[];
  closesAt: Date | null;
}

export interface Plan {
  experiments: ExperimentPlan[];
  injections: DesiredInjection[];
  /** The next schedule boundary: when the plan changes by the clock alone. */
  nextWake: Date | null;
}

/** A pod this companion acts on: on this node, labelled by the injector, alive. */
export function isTargetedPodOnNode(pod: V1Pod, node: string): boolean {
  return (
    pod.spec?.nodeName === node &&
    pod.metadata?.labels?.[TARGET_LABEL] === 'true' &&
    !pod.metadata?.deletionTimestamp &&
    pod.status?.phase !== 'Succeeded' &&
    pod.status?.phase !== 'Failed'
  );
}

/** `namespace/name` of every experiment that targets `pod`: from the annotation and the per-experiment labels. */
export function experimentRefsOf(pod: V1Pod, byLabelKey: ReadonlyMap<string, string>): Set<string> {
  const refs = new Set(parseExperimentsAnnotation(pod.metadata?.annotations?.[EXPERIMENTS_ANNOTATION]));
  for (const key of Object.keys(pod.metadata?.labels ?? {})) {
    const ref = byLabelKey.get(key);
    if (ref) refs.add(ref);
  }
  return refs;
}

interface Pairing {
  chaos: KernelChaos;
  pods: V1Pod[];
}

function pairExperimentsWithPods(input: Pick<PlanInput, 'node' | 'pods' | 'experiments'>): Pairing[] {
  const byRef = new Map<string, KernelChaos>();
  const byLabelKey = new Map<string, string>();
  for (const chaos of input.experiments) {
    const { namespace, name } = experimentIdOf(chaos);
    byRef.set(`${namespace}/${name}`, chaos);
    byLabelKey.set(experimentLabelKey(namespace, name), `${namespace}/${name}`);
  }
  const pairings = new Map<string, Pairing>();
  for (const pod of input.pods) {
    if (!isTargetedPodOnNode(pod, input.node)) continue;
    for (const ref of experimentRefsOf(pod, byLabelKey)) {
      const chaos = byRef.get(ref);
      if (!chaos) continue; // deleted, or not visible yet: nothing to attach for it
      let p = pairings.get(ref);
      if (!p) pairings.set(ref, (p = { chaos, pods: [] }));
      p.pods.push(pod);
    }
  }
  return [...pairings.values()].sort((a, b) => refOf(a.chaos).localeCompare(refOf(b.chaos)));
}

function refOf(chaos: KernelChaos): string {
  const id = experimentIdOf(chaos);
  return `${id.namespace}/${id.name}`;
}

function podKey(pod: V1Pod, container: string): ContainerKey {
  return { namespace: pod.metadata?.namespace ?? 'default', pod: pod.metadata?.name ?? '', container };
}

/** Container ids that the plan will need resolved: running containers of targeted pods in an open window. */
export function containersToResolve(input: Omit<PlanInput, 'resolutions'>): string[] {
  const out = new Set<string>();
  for (const { chaos, pods } of pairExperimentsWithPods(input)) {
    const schedule = nodePhase(chaos, { now: input.now, firstSeen: input.firstSeen(experimentIdOf(chaos).uid), parseCron: input.parseCron });
    if (schedule.phase !== 'active' || policyRefusal(chaos, input) !== null) continue;
    for (const pod of pods) {
      if (podRefusal(pod, input.gate) !== null) continue;
      for (const c of selectContainers(pod, chaos.spec.containerNames)) {
        if (c.state === 'running') out.add(c.containerId);
      }
    }
  }
  return [...out].sort();
}

export function plan(input: PlanInput): Plan {
  const experiments: ExperimentPlan[] = [];
  const injections: DesiredInjection[] = [];
  let nextWake: Date | null = null;

  for (const { chaos, pods } of pairExperimentsWithPods(input)) {
    const id = experimentIdOf(chaos);
    const key = injectionKey(chaos);
    const schedule = nodePhase(chaos, { now: input.now, firstSeen: input.firstSeen(id.uid), parseCron: input.parseCron });
    const boundary = nextBoundary(schedule);
    if (boundary !== null && boundary > input.now && (nextWake === null || boundary < nextWake)) nextWake = boundary;

    const verdict = input.validate(chaos);
    const experimentProblem =
      !verdict.valid
        ? `invalid KernelChaos: ${verdict.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`
        : schedule.phase === 'invalid'
          ? `invalid KernelChaos: ${schedule.field}: ${schedule.reason}`
          : policyRefusal(chaos, input);
    const idleReason = schedule.phase === 'active' ? null : describeIdle(schedule);

    const containers: ContainerPlan[] = [];
    const cgroupIds = new Set<bigint>();
    for (const pod of pods) {
      const refusal = podRefusal(pod, input.gate);
      for (const c of selectContainers(pod, chaos.spec.containerNames)) {
        const container = podKey(pod, c.name);
        const containerId = c.state === 'running' ? c.containerId : undefined;
        const ids = containerId === undefined ? {} : { containerId };
        if (experimentProblem !== null) {
          containers.push({ container, want: 'failed', reason: experimentProblem, ...ids });
        } else if (refusal !== null) {
          containers.push({ container, want: 'failed', reason: refusal, ...ids });
        } else if (idleReason !== null) {
          containers.push({ container, want: 'idle', reason: idleReason, ...ids });
        } else if (c.state !== 'running') {
          containers.push({ container, want: 'idle', reason: `container not running: ${c.reason}` });
        } else {
          const r = input.resolutions.get(c.containerId);
          if (!r) {
            containers.push({ container, want: 'failed', reason: 'cgroup not resolved yet', containerId: c.containerId });
          } else if (r.kind !== 'resolved') {
            containers.push({ container, want: 'failed', reason: r.reason, containerId: c.containerId });
          } else {
            containers.push({ container, want: 'inject', containerId: c.containerId, cgroupId: r.cgroupId, cgroupPath: r.path });
            cgroupIds.add(r.cgroupId);
          }
        }
      }
    }
    experiments.push({ id, key, schedule, containers });
    if (verdict.valid && schedule.phase === 'active' && cgroupIds.size > 0) {
      injections.push({
        key,
        experiment: id,
        parsed: verdict.parsed,
        cgroupIds: [...cgroupIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
        closesAt: schedule.closesAt,
      });
    }
  }
  return { experiments, injections, nextWake };
}

function describeIdle(s: Exclude<ExperimentPhase, { phase: 'active' }>): string {
  switch (s.phase) {
    case 'pending':
      return `waiting for the first run at ${s.opensAt.toISOString()}`;
    case 'waiting':
      return `between runs; the next opens at ${s.nextOpen.toISOString()}`;
    case 'finished':
      return `finished: ${s.reason}`;
    case 'paused':
      return 'paused (experiment.chaos-mesh.org/pause: "true")';
    case 'held':
      return s.reason;
    case 'invalid':
      return `${s.field}: ${s.reason}`;
  }
}
