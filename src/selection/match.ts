// Which pods a KernelChaos selector matches, with Chaos Mesh's semantics (pkg/selector/pod):
// - `pods` (namespace -> names) set: exactly those pods; every other selector, phases included, is
//   ignored (Chaos Mesh's SelectPods returns the named pods without running its selector chain).
// - otherwise every selector given must hold (AND): namespaces (empty = the experiment's own),
//   labelSelectors + expressionSelectors, annotationSelectors, fieldSelectors, nodes/nodeSelectors
//   (the union: a pod on a named node OR on a node whose labels match), podPhaseSelectors (empty = any).
import type { V1Pod } from '@kubernetes/client-node';
import type { PodSelectorSpec } from '../api/types.js';
import { fieldRequirementsFromMap, fieldRequirementsMatch } from './fieldSelector.js';
import { fromSchemaRequirement, mapMatches, requirementsMatch } from './labelSelector.js';

/** Looks up a node's labels by name; undefined when the node is unknown. */
export type NodeLabelLookup = (nodeName: string) => Readonly<Record<string, string>> | undefined;

export function podNamespace(pod: V1Pod): string {
  return pod.metadata?.namespace ?? 'default';
}

export function podKey(pod: V1Pod): string {
  return `${podNamespace(pod)}/${pod.metadata?.name ?? ''}`;
}

/**
 * The schema's string maps (labelSelectors, annotationSelectors, fieldSelectors, nodeSelectors) are
 * typed `unknown` by TypeBox's Static of a plain TSchema; objects reaching here were validated, but a
 * non-string value is dropped rather than trusted.
 */
export function asStringMap(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

function hasExplicitPods(selector: PodSelectorSpec): selector is PodSelectorSpec & { pods: Record<string, string[]> } {
  return selector.pods !== undefined && Object.keys(selector.pods).length > 0;
}

/** The namespaces the selector lists pods from (explicit pods' namespaces, or namespaces / the default). */
export function selectorNamespaces(selector: PodSelectorSpec, defaultNamespace: string): string[] {
  if (hasExplicitPods(selector)) return Object.keys(selector.pods).sort();
  const listed = selector.namespaces ?? [];
  return listed.length > 0 ? [...new Set(listed)].sort() : [defaultNamespace];
}

/** A pod predicate for one selector, with the selector's maps and requirements prepared once. */
export type PodMatcher = (pod: V1Pod, nodeLabels?: NodeLabelLookup) => boolean;

// Selectors are immutable once read from the store; callers that test one pod at a time (the
// webhook) reuse the prepared matcher.
const compiled = new WeakMap<PodSelectorSpec, Map<string, PodMatcher>>();

export function compileSelector(selector: PodSelectorSpec, defaultNamespace: string): PodMatcher {
  let byNs = compiled.get(selector);
  if (!byNs) {
    byNs = new Map();
    compiled.set(selector, byNs);
  }
  let matcher = byNs.get(defaultNamespace);
  if (!matcher) {
    matcher = prepare(selector, defaultNamespace);
    byNs.set(defaultNamespace, matcher);
  }
  return matcher;
}

function prepare(selector: PodSelectorSpec, defaultNamespace: string): PodMatcher {
  if (hasExplicitPods(selector)) {
    const named = new Map(Object.entries(selector.pods).map(([ns, names]) => [ns, new Set(names)]));
    return (pod) => named.get(podNamespace(pod))?.has(pod.metadata?.name ?? '') ?? false;
  }
  const namespaces = new Set(selectorNamespaces(selector, defaultNamespace));
  const labels = asStringMap(selector.labelSelectors);
  const expressions = (selector.expressionSelectors ?? []).map(fromSchemaRequirement);
  const annotations = asStringMap(selector.annotationSelectors);
  const fieldMap = asStringMap(selector.fieldSelectors);
  const fields = fieldMap ? fieldRequirementsFromMap(fieldMap) : [];
  const nodeNames = new Set(selector.nodes ?? []);
  const nodeSelector = asStringMap(selector.nodeSelectors) ?? {};
  const hasNodeSelector = Object.keys(nodeSelector).length > 0;
  const phases = new Set<string>(selector.podPhaseSelectors ?? []);

  const nodeMatches = (pod: V1Pod, nodeLabels: NodeLabelLookup | undefined): boolean => {
    if (nodeNames.size === 0 && !hasNodeSelector) return true;
    const nodeName = pod.spec?.nodeName;
    // An unscheduled pod is on no node, so no node selector can match it.
    if (!nodeName) return false;
    if (nodeNames.has(nodeName)) return true;
    if (!hasNodeSelector) return false;
    const actual = nodeLabels?.(nodeName);
    return actual !== undefined && mapMatches(nodeSelector, actual);
  };

  return (pod, nodeLabels) => {
    if (!namespaces.has(podNamespace(pod))) return false;
    const podLabels = pod.metadata?.labels;
    if (!mapMatches(labels, podLabels)) return false;
    if (!requirementsMatch(expressions, podLabels)) return false;
    if (!mapMatches(annotations, pod.metadata?.annotations)) return false;
    if (fields.length > 0 && !fieldRequirementsMatch(fields, pod)) return false;
    if (!nodeMatches(pod, nodeLabels)) return false;
    if (phases.size > 0 && !phases.has(pod.status?.phase ?? '')) return false;
    return true;
  };
}

export function podMatchesSelector(
  selector: PodSelectorSpec,
  defaultNamespace: string,
  pod: V1Pod,
  nodeLabels?: NodeLabelLookup,
): boolean {
  return compileSelector(selector, defaultNamespace)(pod, nodeLabels);
}
