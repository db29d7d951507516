// The CRDs in manifests/crds/ are what the cluster validates with; they must be exactly what
// scripts/gen-crds.ts derives from src/api/schema.ts, structural (or the API server refuses them),
// and agree with the TypeBox schema on which manifests are acceptable.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Ajv } from 'ajv';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  CrdSchemaError,
  renderCrdFiles,
  toStructural,
  type CustomResourceDefinition,
  type StructuralSchema,
} from '../../scripts/crds.js';
import { KernelChaosSchema, KernelChaosPolicySchema } from '../../src/api/schema.js';
import { readManifestSources } from '../../src/api/manifests.js';
import { seedChaos } from '../fixtures/seed.js';

const CRD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'manifests', 'crds');
const files = renderCrdFiles();

function committed(name: string): string {
  return readFileSync(join(CRD_DIR, name), 'utf8');
}

function loadCrd(name: string): CustomResourceDefinition {
  return parse(committed(name)) as CustomResourceDefinition;
}

function openApi(crd: CustomResourceDefinition): StructuralSchema {
  const version = crd.spec.versions[0];
  if (!version) throw new Error('CRD has no version');
  return version.schema.openAPIV3Schema;
}

/** Every violation of the Kubernetes structural-schema rules we could emit, with its path. */
function structuralViolations(node: StructuralSchema, path = ''): string[] {
  const problems: string[] = [];
  const raw = node as Record<string, unknown>;
  if (node['x-kubernetes-int-or-string']) {
    const branches = node.anyOf ?? [];
    const ok = branches.length === 2 && branches.every((b) => Object.keys(b).length === 1 && b.type !== undefined);
    if (!ok || node.type !== undefined) problems.push(`${path}: int-or-string must be untyped with anyOf [integer, string]`);
    return problems;
  }
  if (node.type === undefined) problems.push(`${path}: no type`);
  if (node.anyOf !== undefined) problems.push(`${path}: anyOf outside int-or-string`);
  for (const banned of ['const', 'patternProperties', '$id', '$ref', 'oneOf', 'allOf']) {
    if (banned in raw) problems.push(`${path}: ${banned}`);
  }
  if ('additionalProperties' in raw && typeof raw.additionalProperties !== 'object') {
    problems.push(`${path}: additionalProperties must be a schema (got ${String(raw.additionalProperties)})`);
  }
  if (node.properties && node.additionalProperties) problems.push(`${path}: both properties and additionalProperties`);
  for (const [name, child] of Object.entries(node.properties ?? {})) problems.push(...structuralViolations(child, `${path}.${name}`));
  if (node.additionalProperties) problems.push(...structuralViolations(node.additionalProperties, `${path}[*]`));
  if (node.items) problems.push(...structuralViolations(node.items, `${path}[]`));
  return problems;
}

interface JsonSchemaNode {
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  patternProperties?: Record<string, JsonSchemaNode>;
}

/** Every object property path the TypeBox schema declares, in the same notation as the CRD walk. */
function declaredPaths(node: JsonSchemaNode, path: string, out: Set<string>): Set<string> {
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    out.add(`${path}.${name}`);
    declaredPaths(child, `${path}.${name}`, out);
  }
  if (node.items) declaredPaths(node.items, `${path}[]`, out);
  for (const child of Object.values(node.patternProperties ?? {})) declaredPaths(child, `${path}[*]`, out);
  return out;
}

function crdPaths(node: StructuralSchema, path: string, out: Set<string>): Set<string> {
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    out.add(`${path}.${name}`);
    crdPaths(child, `${path}.${name}`, out);
  }
  if (node.items) crdPaths(node.items, `${path}[]`, out);
  if (node.additionalProperties) crdPaths(node.additionalProperties, `${path}[*]`, out);
  return out;
}

const seed = seedChaos();

function withSpec(patch: Record<string, unknown>): Record<string, unknown> {
  return { ...seed, spec: { ...seed.spec, ...patch } };
}

function withRequest(patch: Record<string, unknown>): Record<string, unknown> {
  return withSpec({ failKernRequest: { ...seed.spec.failKernRequest, ...patch } });
}

describe('committed CRDs', () => {
  it('are exactly what npm run gen:crds generates from src/api/schema.ts', () => {
    expect([...files.keys()].sort()).toEqual(['kernelchaos.chaos-mesh.org.yaml', 'kernelchaospolicies.kernelchaos.dev.yaml', 'schedules.chaos-mesh.org.yaml']);
    for (const [name, text] of files) {
      // On failure: the schema changed without regenerating; run `npm run gen:crds`.
      expect(committed(name), `${name} is stale: run npm run gen:crds`).toBe(text);
    }
  });

  it('KernelChaos: chaos-mesh.org/v1alpha1 kernelchaos, namespaced, status subresource, printer columns', () => {
    const crd = loadCrd('kernelchaos.chaos-mesh.org.yaml');
    expect(crd.metadata.name).toBe('kernelchaos.chaos-mesh.org');
    expect(crd.spec.group).toBe('chaos-mesh.org');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toMatchObject({ kind: 'KernelChaos', plural: 'kernelchaos', singular: 'kernelchaos', listKind: 'KernelChaosList' });
    expect(crd.spec.versions).toHaveLength(1);
    const version = crd.spec.versions[0];
    expect(version).toMatchObject({ name: 'v1alpha1', served: true, storage: true, subresources: { status: {} } });
    expect(version?.additionalPrinterColumns?.map((c) => [c.name, c.type, c.jsonPath])).toEqual([
      ['Mode', 'string', '.spec.mode'],
      ['Failtype', 'integer', '.spec.failKernRequest.failtype'],
      ['Phase', 'string', '.status.experiment.desiredPhase'],
      ['Injected', 'string', '.status.conditions[?(@.type=="AllInjected")].status'],
      ['Age', 'date', '.metadata.creationTimestamp'],
    ]);
  });

  it('KernelChaosPolicy: kernelchaos.dev/v1alpha1 kernelchaospolicies, namespaced', () => {
    const crd = loadCrd('kernelchaospolicies.kernelchaos.dev.yaml');
    expect(crd.metadata.name).toBe('kernelchaospolicies.kernelchaos.dev');
    expect(crd.spec.group).toBe('kernelchaos.dev');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toMatchObject({ kind: 'KernelChaosPolicy', plural: 'kernelchaospolicies', listKind: 'KernelChaosPolicyList' });
    expect(crd.spec.versions[0]?.name).toBe('v1alpha1');
  });

  it.each(['kernelchaos.chaos-mesh.org.yaml', 'kernelchaospolicies.kernelchaos.dev.yaml'])(
    '%s has a structural schema the API server accepts',
    (name) => {
      expect(structuralViolations(openApi(loadCrd(name)))).toEqual([]);
    },
  );

  it('declares every field of the TypeBox schema, and no other', () => {
    const pairs = [
      [KernelChaosSchema, 'kernelchaos.chaos-mesh.org.yaml'],
      [KernelChaosPolicySchema, 'kernelchaospolicies.kernelchaos.dev.yaml'],
    ] as const;
    for (const [schema, file] of pairs) {
      const fromTypes = declaredPaths(JSON.parse(JSON.stringify(schema)) as JsonSchemaNode, '', new Set());
      // metadata is the API server's: the CRD only says it is an object.
      const expected = [...fromTypes].filter((p) => !p.startsWith('.metadata.')).sort();
      expect([...crdPaths(openApi(loadCrd(file)), '', new Set())].sort()).toEqual(expected);
    }
  });

  it('keeps descriptions, so kubectl explain documents the fields', () => {
    const spec = openApi(loadCrd('kernelchaos.chaos-mesh.org.yaml')).properties?.spec;
    expect(spec?.properties?.failKernRequest?.properties?.probability?.description).toMatch(/Omitted or 0 means every call/);
    expect(spec?.properties?.value).toMatchObject({ 'x-kubernetes-int-or-string': true });
  });
});

describe('the CRD schema and the TypeBox schema agree on manifests', () => {
  // ajv stands in for the API server's OpenAPI validation; x-kubernetes-* keywords are ignored.
  const ajv = new Ajv({ strict: false, allErrors: true });
  const crdAccepts = ajv.compile(openApi(loadCrd('kernelchaos.chaos-mesh.org.yaml')));
  const policyCrdAccepts = ajv.compile(openApi(loadCrd('kernelchaospolicies.kernelchaos.dev.yaml')));

  const accepted: [string, unknown][] = [
    ['the seed example', seed],
    ['value as a string', withSpec({ mode: 'fixed', value: '2' })],
    ['value as an integer', withSpec({ mode: 'fixed-percent', value: 50 })],
    ['a full frame', withRequest({ callchain: [{ funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name', predicate: 'STRNCMP(name->name, "bananas", 8)' }] })],
    ['probability and times at their limits', withRequest({ probability: 100, times: 4294967295 })],
    ['a schedule', withSpec({ duration: '30s', scheduler: { cron: '@every 2m' } })],
    ['expression selectors', withSpec({ selector: { expressionSelectors: [{ key: 'app', operator: 'In', values: ['web'] }] } })],
    ['explicit pods', withSpec({ selector: { pods: { default: ['a', 'b'] } } })],
    ['a status', { ...seed, status: { experiment: { desiredPhase: 'Run' }, conditions: [{ type: 'AllInjected', status: 'True' }] } }],
  ];
  const rejected: [string, unknown][] = [
    ['failtype 3', withRequest({ failtype: 3 })],
    ['failtype 1.5', withRequest({ failtype: 1.5 })],
    ['probability 101', withRequest({ probability: 101 })],
    ['negative times', withRequest({ times: -1 })],
    ['missing failtype', withSpec({ failKernRequest: { callchain: [] } })],
    ['an unknown mode', withSpec({ mode: 'some' })],
    ['missing selector', { ...seed, spec: { mode: 'one', failKernRequest: { failtype: 0 } } }],
    ['an unknown operator', withSpec({ selector: { expressionSelectors: [{ key: 'app', operator: 'Equals' }] } })],
    ['an unknown pod phase', withSpec({ selector: { podPhaseSelectors: ['Sleeping'] } })],
    ['a labelSelectors value that is a number', withSpec({ selector: { labelSelectors: { app: 3 } } })],
    ['a scheduler without cron', withSpec({ scheduler: {} })],
    ['a boolean value', withSpec({ mode: 'fixed', value: true })],
  ];

  it.each(accepted)('both accept %s', (_label, manifest) => {
    expect(Value.Check(KernelChaosSchema, manifest)).toBe(true);
    expect(crdAccepts(manifest), JSON.stringify(crdAccepts.errors)).toBe(true);
  });

  it.each(rejected)('both reject %s', (_label, manifest) => {
    expect(Value.Check(KernelChaosSchema, manifest)).toBe(false);
    expect(crdAccepts(manifest)).toBe(false);
  });

  it('the API server schema accepts every manifest in examples/', async () => {
    const docs = await readManifestSources([join(CRD_DIR, '..', '..', 'examples')]);
    let checked = 0;
    for (const doc of docs) {
      if (!doc.ok) continue;
      const kind = (doc.object as { kind?: unknown }).kind;
      const accepts = kind === 'KernelChaos' ? crdAccepts : kind === 'KernelChaosPolicy' ? policyCrdAccepts : null;
      if (!accepts) continue;
      expect(accepts(doc.object), `${doc.source}: ${JSON.stringify(accepts.errors)}`).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(14);
  });

  it('agree on 2,000 seeded random mutations of the examples (wrong types, ranges, enums, deletions)', async () => {
    const docs = (await readManifestSources([join(CRD_DIR, '..', '..', 'examples')])).flatMap((d) =>
      d.ok && ['KernelChaos', 'KernelChaosPolicy'].includes(String((d.object as { kind?: unknown }).kind)) ? [d.object] : [],
    );
    const chaosSchema = openApi(loadCrd('kernelchaos.chaos-mesh.org.yaml'));
    const policySchema = openApi(loadCrd('kernelchaospolicies.kernelchaos.dev.yaml'));
    const random = seeded(0x5eed);
    const disagreements: string[] = [];
    let acceptedCount = 0;
    for (let i = 0; i < 2000; i++) {
      const original = docs[Math.floor(random() * docs.length)] as Record<string, unknown>;
      const mutant = structuredClone(original);
      const paths = containerPaths(mutant.spec, ['spec']);
      const [path, how] = mutate(mutant, paths[Math.floor(random() * paths.length)] ?? ['spec'], random);
      const policy = mutant.kind === 'KernelChaosPolicy';
      // Compare on declared fields only: undeclared ones are kept by the CRD and rejected by the webhook.
      const pruned = prune(mutant, policy ? policySchema : chaosSchema);
      const typebox = Value.Check(policy ? KernelChaosPolicySchema : KernelChaosSchema, pruned);
      const crd = (policy ? policyCrdAccepts : crdAccepts)(mutant);
      if (crd) acceptedCount++;
      if (typebox !== crd) disagreements.push(`${path.join('.')} ${how}: TypeBox ${typebox}, CRD ${crd}`);
    }
    expect(disagreements.slice(0, 10)).toEqual([]);
    // Both verdicts must be well represented, or the comparison proves little.
    expect(acceptedCount).toBeGreaterThan(200);
    expect(acceptedCount).toBeLessThan(1800);
  });

  it('the CRD keeps unknown fields (not pruned) so the webhook can reject them with a suggestion', () => {
    // Structural schemas cannot say additionalProperties:false; the TypeBox schema can.
    const typo = withSpec({ failKernRequst: { failtype: 0 } });
    expect(crdAccepts(typo)).toBe(true);
    expect(Value.Check(KernelChaosSchema, typo)).toBe(false);
    const spec = openApi(loadCrd('kernelchaos.chaos-mesh.org.yaml')).properties?.spec;
    expect(spec?.['x-kubernetes-preserve-unknown-fields']).toBe(true);
    expect(spec?.properties?.failKernRequest?.['x-kubernetes-preserve-unknown-fields']).toBe(true);
    expect(spec?.properties?.failKernRequest?.properties?.callchain?.items?.['x-kubernetes-preserve-unknown-fields']).toBe(true);
    // status is written by our own components and stays pruned.
    expect(openApi(loadCrd('kernelchaos.chaos-mesh.org.yaml')).properties?.status?.['x-kubernetes-preserve-unknown-fields']).toBeUndefined();
  });

  it('policies: both accept a full policy and reject out-of-range limits', () => {
    const policy = {
      apiVersion: 'kernelchaos.dev/v1alpha1',
      kind: 'KernelChaosPolicy',
      metadata: { name: 'limits', namespace: 'shop' },
      spec: {
        allowedFailtypes: [0, 2],
        maxProbability: 10,
        maxDuration: '10m',
        maxTimes: 100,
        allowedFunctions: ['ext4_*'],
        requireCallchain: true,
        allowedModes: ['one', 'fixed'],
        allowedScheduleWindows: [{ days: ['Mon', 'Tue'], start: '09:00', end: '17:30' }],
      },
    };
    expect(Value.Check(KernelChaosPolicySchema, policy)).toBe(true);
    expect(policyCrdAccepts(policy)).toBe(true);
    for (const bad of [{ maxProbability: 101 }, { allowedFailtypes: [3] }, { allowedScheduleWindows: [{ start: '25:00', end: '26:00' }] }, { maxTimes: 0 }]) {
      const manifest = { ...policy, spec: { ...policy.spec, ...bad } };
      expect(Value.Check(KernelChaosPolicySchema, manifest)).toBe(false);
      expect(policyCrdAccepts(manifest)).toBe(false);
    }
  });
});

describe('the schema translator', () => {
  it('names the field when a schema feature has no structural form', () => {
    const schema = JSON.parse(JSON.stringify(Type.Object({ spec: Type.Object({ x: Type.Union([Type.String(), Type.Integer()]) }) })));
    expect(() => toStructural(schema)).toThrow(CrdSchemaError);
    expect(() => toStructural(schema)).toThrow(/^spec\.x: union mixes string and integer/);
  });

  it('refuses keywords it does not know rather than dropping them', () => {
    const schema = JSON.parse(JSON.stringify(Type.Object({ n: Type.Number({ multipleOf: 5 }) })));
    expect(() => toStructural(schema)).toThrow(/^n: keyword "multipleOf"/);
  });

  it('turns string-keyed records into additionalProperties and literal unions into enums', () => {
    const schema = JSON.parse(
      JSON.stringify(Type.Object({ m: Type.Record(Type.String(), Type.Integer()), e: Type.Union([Type.Literal('a'), Type.Literal('b')]) })),
    );
    expect(toStructural(schema)).toEqual({
      type: 'object',
      required: ['m', 'e'],
      properties: {
        m: { type: 'object', additionalProperties: { type: 'integer' } },
        e: { type: 'string', enum: ['a', 'b'] },
      },
    });
  });
});

/** A small deterministic PRNG (mulberry32), so a failing mutation can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Path = (string | number)[];

/** Paths of every value under `node` (objects, arrays and scalars). */
function containerPaths(node: unknown, at: Path): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(node)) node.forEach((v, i) => out.push(...containerPaths(v, [...at, i])));
  else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) out.push(...containerPaths(v, [...at, k]));
  }
  return out;
}

/** Values that probe types, integer-ness, ranges, enums, patterns and lengths. */
const PROBES: unknown[] = [
  '', 'x', 'one', 'fixed', 'In', 'Exists', 'Running', 'Sleeping', 'Mon', 'Funday', '09:00', '24:00', '@every 1m', '50',
  0, 1, 2, 3, -1, 1.5, 100, 101, 4294967295, 4294967296, true, false, [], ['x'], [0], [3], {}, { a: 'b' }, { a: 1 },
];

function mutate(root: Record<string, unknown>, path: Path, random: () => number): [Path, string] {
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1];
  let parent: unknown = root;
  for (const p of parentPath) parent = (parent as Record<string | number, unknown>)[p];
  if (key === undefined || typeof parent !== 'object' || parent === null) return [path, 'unchanged'];
  const container = parent as Record<string | number, unknown>;
  if (random() < 0.15 && !Array.isArray(parent)) {
    delete container[key];
    return [path, 'deleted'];
  }
  const value = PROBES[Math.floor(random() * PROBES.length)];
  container[key] = structuredClone(value);
  return [path, `= ${JSON.stringify(value)}`];
}

/** Drops fields the structural schema does not declare (they are the webhook's to reject). */
function prune(value: unknown, schema: StructuralSchema): unknown {
  if (Array.isArray(value)) return schema.items ? value.map((v) => prune(v, schema.items as StructuralSchema)) : value;
  if (typeof value !== 'object' || value === null || schema.type !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (schema.properties) {
      const child = schema.properties[k];
      if (child) out[k] = prune(v, child);
    } else if (schema.additionalProperties) out[k] = prune(v, schema.additionalProperties);
    else out[k] = v; // metadata: type object, fields kept (owned by the API server)
  }
  return out;
}
