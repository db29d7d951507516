// Pure pod selection shared by the webhook's injector, the controller and the node companion:
// selector match (Chaos Mesh semantics) ∩ opt-in eligibility (src/admission/gate.ts), then mode/value with seeded choices.
import type { V1Namespace, V1Node, V1Pod } from '@kubernetes/client-node';
import type { SkipReason } from '../api/labels.js';
import type { KernelChaos } from '../api/types.js';
import { eligibility } from '../admission/gate.js';
import { compileSelector, type NodeLabelLookup } from './match.js';
import { chooseByModeChecked, experimentSeed } from './mode.js';

export { eligibility, SYSTEM_NAMESPACES, type Eligibility } from '../admission/gate.js';
export * from './match.js';
export * from './mode.js';
export * from './labelSelector.js';
export * from './fieldSelector.js';

export interface CandidateContext {
  nodeLabels?: NodeLabelLookup;
}

/** The pods an experiment's selector matches (before opt-in rules and mode). */
export function selectCandidates(chaos: KernelChaos, pods: readonly V1Pod[], ctx: CandidateContext = {}): V1Pod[] {
  const matches = compileSelector(chaos.spec.selector, chaos.metadata.namespace ?? 'default');
  return pods.filter((pod) => matches(pod, ctx.nodeLabels));
}

export function nodeLabelLookup(nodes: readonly V1Node[]): NodeLabelLookup {
  const byName = new Map(nodes.map((n) => [n.metadata?.name ?? '', n.metadata?.labels ?? {}]));
  return (name) => byName.get(name);
}

export interface SelectTargetsOptions {
  /** The namespace kernelchaos runs in; never targeted. */
  webhookNamespace: string;
}

export interface SkippedPod {
  pod: V1Pod;
  reason: SkipReason;
}

export interface TargetSelection {
  /** The pods the experiment targets, sorted by namespace/name. */
  targets: V1Pod[];
  /** Pods the selector matches and the opt-in rules allow (what mode chose from). */
  eligible: V1Pod[];
  /** Pods the selector matches but the opt-in rules exclude, with why. */
  skipped: SkippedPod[];
  /** Set when spec.value is unusable for spec.mode (then targets is empty). */
  modeError?: string;
}

/** candidates ∩ eligible, then mode/value seeded by the experiment's UID. */
export function selectTargets(
  chaos: KernelChaos,
  allPods: readonly V1Pod[],
  namespaces: readonly V1Namespace[],
  nodes: readonly V1Node[],
  opts: SelectTargetsOptions,
): TargetSelection {
  const nsByName = new Map(namespaces.map((n) => [n.metadata?.name ?? '', n]));
  const candidates = selectCandidates(chaos, allPods, { nodeLabels: nodeLabelLookup(nodes) });
  const eligible: V1Pod[] = [];
  const skipped: SkippedPod[] = [];
  for (const pod of candidates) {
    const verdict = eligibility(pod, nsByName.get(pod.metadata?.namespace ?? 'default'), opts.webhookNamespace);
    if (verdict.eligible) eligible.push(pod);
    else skipped.push({ pod, reason: verdict.reason });
  }
  const choice = chooseByModeChecked(chaos.spec.mode, chaos.spec.value, eligible, experimentSeed(chaos));
  if (!choice.ok) return { targets: [], eligible, skipped, modeError: choice.message };
  return { targets: choice.pods, eligible, skipped };
}
