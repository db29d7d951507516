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

function nodeMatches(selector: PodSelectorSpec, pod: V1Pod, nodeLabels: NodeLabelLookup | undefined): boolean {
  const names = selector.nodes ?? [];
  const labels = asStringMap(selector.nodeSelectors) ?? {};
  const hasLabels = Object.keys(labels).length > 0;
  if (names.length === 0 && !hasLabels) return true;
  const nodeName = pod.spec?.nodeName;
  // An unscheduled pod is on no node, so no node selector can match it.
  if (!nodeName) return false;
  if (names.includes(nodeName)) return true;
  if (!hasLabels) return false;
  const actual = nodeLabels?.(nodeName);
  return actual !== undefined && mapMatches(labels, actual);
}

export function podMatchesSelector(
  selector: PodSelectorSpec,
  defaultNamespace: string,
  pod: V1Pod,
  nodeLabels?: NodeLabelLookup,
): boolean {
  const namespace = podNamespace(pod);
  const name = pod.metadata?.name ?? '';
  if (hasExplicitPods(selector)) {
    return (selector.pods[namespace] ?? []).includes(name);
  }
  if (!selectorNamespaces(selector, defaultNamespace).includes(namespace)) return false;
  const labels = pod.metadata?.labels;
  if (!mapMatches(asStringMap(selector.labelSelectors), labels)) return false;
  if (!requirementsMatch((selector.expressionSelectors ?? []).map(fromSchemaRequirement), labels)) return false;
  if (!mapMatches(asStringMap(selector.annotationSelectors), pod.metadata?.annotations)) return false;
  const fields = asStringMap(selector.fieldSelectors);
  if (fields && !fieldRequirementsMatch(fieldRequirementsFromMap(fields), pod)) return false;
  if (!nodeMatches(selector, pod, nodeLabels)) return false;
  const phases = selector.podPhaseSelectors ?? [];
  if (phases.length > 0 && !phases.includes((pod.status?.phase ?? '') as (typeof phases)[number])) return false;
  return true;
}
