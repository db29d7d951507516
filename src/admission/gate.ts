// The admission gate: whether kernelchaos may fault a pod for an experiment at all. One module for
// the webhook's pod injector, the controller's selection and the node companion (which checks it
// again before it arms, because it is privileged and a pod can put any label on itself).
//
// Opt-in: a pod is eligible when it carries `kernelchaos.dev/inject: "true"` or its namespace is
// labelled `kernelchaos.dev/injection: enabled`. A namespace labelled `disabled`, the system
// namespaces and kernelchaos's own (release) namespace are never touched, whatever the pod says.
// Policies: every KernelChaosPolicy of every namespace the experiment can reach must allow it; a
// reachable policy that cannot be read fails closed.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { INJECT_ANNOTATION, INJECTION_NAMESPACE_LABEL, type SkipReason } from '../api/labels.js';
import type { KernelChaos, KernelChaosPolicy } from '../api/types.js';
import { schemaProblem } from '../kube/documents.js';
import { checkPolicies, formatViolation, reachableNamespaces, type PolicyCheckOptions, type PolicyViolation } from '../policy/check.js';

import { isProtectedNamespace } from './namespaces.js';

export { DEFAULT_RELEASE_NAMESPACE, SYSTEM_NAMESPACES, isProtectedNamespace } from './namespaces.js';

export type Eligibility = { eligible: true } | { eligible: false; reason: SkipReason };

/**
 * The opt-in rule. `namespace` is the pod's Namespace object (undefined when unknown: then only the
 * pod's own annotation can opt it in).
 */
export function eligibility(pod: V1Pod, namespace: V1Namespace | undefined, releaseNamespace: string): Eligibility {
  const ns = pod.metadata?.namespace ?? 'default';
  if (isProtectedNamespace(ns, releaseNamespace)) return { eligible: false, reason: 'system-namespace' };
  const nsLabel = namespace?.metadata?.labels?.[INJECTION_NAMESPACE_LABEL];
  if (nsLabel === 'disabled') return { eligible: false, reason: 'namespace-disabled' };
  if (pod.metadata?.annotations?.[INJECT_ANNOTATION] === 'true' || nsLabel === 'enabled') return { eligible: true };
  return { eligible: false, reason: 'not-opted-in' };
}

/** A sentence for a skip reason, naming the fix. */
export function describeIneligible(reason: SkipReason, namespace: string): string {
  switch (reason) {
    case 'system-namespace':
      return `namespace ${namespace} is a system or kernelchaos namespace and is never faulted`;
    case 'namespace-disabled':
      return `namespace ${namespace} is labelled ${INJECTION_NAMESPACE_LABEL}=disabled`;
    case 'not-opted-in':
      return `the pod has not opted in (annotation ${INJECT_ANNOTATION}: "true" on the pod, or label ${INJECTION_NAMESPACE_LABEL}=enabled on namespace ${namespace})`;
    case 'no-matching-experiment':
      return 'no experiment selects the pod';
  }
}

/** `reasons` is every refusal as text; `violations` the structured ones (an unusable policy has none). */
export type PolicyVerdict = { allowed: true } | { allowed: false; reasons: string[]; violations: PolicyViolation[] };

// Policies from the API passed admission, but the webhook may be absent or older, and manifest
// directories are not admitted at all: each policy's shape is checked (memoised per object; stores
// replace objects on change, never mutate them).
const shapeProblems = new WeakMap<object, string | null>();

function policyShapeProblem(policy: KernelChaosPolicy): string | null {
  let p = shapeProblems.get(policy);
  if (p === undefined) {
    p = schemaProblem('KernelChaosPolicy', policy) ?? null;
    shapeProblems.set(policy, p);
  }
  return p;
}

/** Every policy of a namespace the experiment reaches; an unusable one fails closed. */
export function policyVerdict(chaos: KernelChaos, policies: readonly KernelChaosPolicy[], now: Date, opts: PolicyCheckOptions = {}): PolicyVerdict {
  if (policies.length === 0) return { allowed: true };
  const reach = new Set(reachableNamespaces(chaos));
  const broken = policies
    .filter((p) => reach.has(p.metadata.namespace ?? 'default'))
    .flatMap((p) => {
      const bad = policyShapeProblem(p);
      return bad === null ? [] : [`policy ${p.metadata.namespace ?? 'default'}/${p.metadata.name ?? ''} is unusable (${bad})`];
    });
  if (broken.length > 0) return { allowed: false, reasons: broken, violations: [] };
  const violations = checkPolicies(chaos, policies, now, opts);
  return violations.length === 0 ? { allowed: true } : { allowed: false, reasons: violations.map(formatViolation), violations };
}

export interface GateContext {
  namespace(name: string): V1Namespace | undefined;
  policies: readonly KernelChaosPolicy[];
  releaseNamespace: string;
  now: Date;
}

export type GateVerdict =
  | { admitted: true }
  | { admitted: false; rule: 'opt-in'; reason: SkipReason; message: string }
  | { admitted: false; rule: 'policy'; message: string };

/**
 * May `chaos` fault `pod`? Policies are checked against a running experiment (their creation
 * window was the webhook's to check at creation).
 */
export function admit(chaos: KernelChaos, pod: V1Pod, ctx: GateContext): GateVerdict {
  const ns = pod.metadata?.namespace ?? 'default';
  const e = eligibility(pod, ctx.namespace(ns), ctx.releaseNamespace);
  if (!e.eligible) return { admitted: false, rule: 'opt-in', reason: e.reason, message: describeIneligible(e.reason, ns) };
  const p = policyVerdict(chaos, ctx.policies, ctx.now, { checkCreationWindow: false });
  if (!p.allowed) return { admitted: false, rule: 'policy', message: `refused by policy: ${p.reasons.join('; ')}` };
  return { admitted: true };
}
