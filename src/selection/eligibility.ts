// Opt-in rules (issue 3): a pod is eligible when it carries `kernelchaos.dev/inject: "true"` or its
// namespace is labelled `kernelchaos.dev/injection: enabled`. A namespace labelled `disabled`,
// kube-system and the webhook's own namespace are never touched, whatever the pod says.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { INJECT_ANNOTATION, INJECTION_NAMESPACE_LABEL, type SkipReason } from '../api/labels.js';

export const SYSTEM_NAMESPACES: ReadonlySet<string> = new Set(['kube-system']);

export type Eligibility = { eligible: true } | { eligible: false; reason: SkipReason };

/**
 * `namespace` is the pod's Namespace object (undefined when unknown: then only the pod's own
 * annotation can opt it in). `webhookNamespace` is where kernelchaos itself runs.
 */
export function eligibility(pod: V1Pod, namespace: V1Namespace | undefined, webhookNamespace: string): Eligibility {
  const ns = pod.metadata?.namespace ?? 'default';
  if (SYSTEM_NAMESPACES.has(ns) || ns === webhookNamespace) return { eligible: false, reason: 'system-namespace' };
  const nsLabel = namespace?.metadata?.labels?.[INJECTION_NAMESPACE_LABEL];
  if (nsLabel === 'disabled') return { eligible: false, reason: 'namespace-disabled' };
  if (pod.metadata?.annotations?.[INJECT_ANNOTATION] === 'true' || nsLabel === 'enabled') return { eligible: true };
  return { eligible: false, reason: 'not-opted-in' };
}
