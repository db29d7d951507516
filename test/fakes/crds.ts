// The CRDs of each install profile, for the fake apiserver: the CRD objects a client reads at start-up
// and the served kinds they define (status subresource and pruning schema taken from those very CRDs).
// Standalone: ours (manifests/crds). Beside Chaos Mesh: Chaos Mesh's Helm CRD for KernelChaos (kept
// verbatim as a fixture) and its Schedule and Workflow CRDs' metadata as the chart ships them (no
// labels; their 14k-line schemas are not needed to tell whose they are).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DEFAULT_RESOURCES, type ResourceType } from './apiserver.js';
import type { Schema } from '../../src/kube/crd-profile.js';

const ROOT = join(import.meta.dirname, '..', '..');

export type Crd = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec: Record<string, unknown> };

function yaml(path: string): Crd {
  return parse(readFileSync(join(ROOT, path), 'utf8')) as Crd;
}

export const OUR_KERNELCHAOS_CRD = (): Crd => yaml('manifests/crds/kernelchaos.chaos-mesh.org.yaml');
export const OUR_SCHEDULE_CRD = (): Crd => yaml('manifests/crds/schedules.chaos-mesh.org.yaml');
export const CHAOS_MESH_KERNELCHAOS_CRD = (): Crd => yaml('test/fixtures/chaos-mesh/cm-helm-crd-kernelchaos.yaml');

/** Chaos Mesh's CRD as its chart ships it, schema left open (only its metadata matters here). */
function chaosMeshCrdHead(kind: string, plural: string): Crd {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.chaos-mesh.org`, annotations: { 'controller-gen.kubebuilder.io/version': 'v0.18.0' } },
    spec: {
      group: 'chaos-mesh.org',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
      scope: 'Namespaced',
      versions: [{ name: 'v1alpha1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  };
}

export function profileCrds(profile: 'standalone' | 'chaos-mesh'): Crd[] {
  return profile === 'standalone'
    ? [OUR_KERNELCHAOS_CRD(), OUR_SCHEDULE_CRD()]
    : [CHAOS_MESH_KERNELCHAOS_CRD(), chaosMeshCrdHead('Schedule', 'schedules'), chaosMeshCrdHead('Workflow', 'workflows')];
}

/** The kinds a fake apiserver serves with these CRDs installed: DEFAULT_RESOURCES with each CRD's own subresource and schema. */
export function crdResources(crds: readonly Crd[]): ResourceType[] {
  const byPlural = new Map<string, ResourceType>();
  for (const crd of crds) {
    const names = crd.spec.names as { kind: string; plural: string };
    const version = (crd.spec.versions as { name: string; subresources?: { status?: object }; schema: { openAPIV3Schema: Schema } }[])[0];
    if (!version) continue;
    byPlural.set(names.plural, {
      group: String(crd.spec.group),
      version: version.name,
      plural: names.plural,
      kind: names.kind,
      namespaced: true,
      custom: true,
      statusSubresource: version.subresources?.status !== undefined,
      schema: version.schema.openAPIV3Schema,
    });
  }
  const resources = DEFAULT_RESOURCES.map((r) => (r.group === 'chaos-mesh.org' ? byPlural.get(r.plural) ?? r : r));
  for (const [plural, r] of byPlural) if (!resources.some((x) => x.group === r.group && x.plural === plural)) resources.push(r);
  return resources;
}
