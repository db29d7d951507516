// Builds the CustomResourceDefinitions in manifests/crds/ from the TypeBox schemas in
// src/api/schema.ts, so the cluster's OpenAPI schema and the TypeScript types cannot drift.
// Pure: returns file names and YAML text; scripts/gen-crds.ts writes them, test/api/crds.test.ts
// checks the committed files equal this output.
//
// Kubernetes accepts only *structural* schemas (every node typed, no const, anyOf only in
// restricted forms, unknown fields pruned rather than rejected), so the JSON Schema that TypeBox
// emits is translated node by node. A keyword this translator does not know is an error, not a
// silent drop: a new schema feature must be handled here before it reaches the cluster.
import { stringify } from 'yaml';
import type { TSchema } from '@sinclair/typebox';
import { KernelChaosSchema, KernelChaosPolicySchema, ScheduleSchema } from '../src/api/schema.js';
import { PART_OF_LABEL, PART_OF_VALUE } from '../src/api/labels.js';

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this generator emits. */
export interface StructuralSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, StructuralSchema>;
  additionalProperties?: StructuralSchema;
  required?: string[];
  items?: StructuralSchema;
  enum?: (string | number | boolean)[];
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  anyOf?: StructuralSchema[];
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
}

export interface CrdSpecInput {
  group: string;
  kind: string;
  plural: string;
  singular: string;
  version: string;
  schema: TSchema;
  statusSubresource: boolean;
  printerColumns: PrinterColumn[];
  shortNames?: string[];
  categories?: string[];
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames?: string[]; categories?: string[] };
    scope: 'Namespaced';
    versions: {
      name: string;
      served: true;
      storage: true;
      schema: { openAPIV3Schema: StructuralSchema };
      subresources?: { status: Record<string, never> };
      additionalPrinterColumns?: PrinterColumn[];
    }[];
  };
}

/** Raised when schema.ts uses a JSON Schema feature that has no structural equivalent here. */
export class CrdSchemaError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path || '<root>'}: ${message}`);
    this.name = 'CrdSchemaError';
  }
}

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
type JsonObject = { [key: string]: JsonValue };

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Keywords copied unchanged when present (validation that Kubernetes supports as is). */
const COPIED = ['description', 'minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'pattern'] as const;
/** Keywords consumed by the translation below. */
const HANDLED = new Set<string>([
  ...COPIED,
  'type',
  'properties',
  'required',
  'additionalProperties',
  'patternProperties',
  'items',
  'anyOf',
  'const',
  'enum',
  'x-kubernetes-int-or-string',
]);
/** TypeBox's catch-all record key: Type.Record(Type.String(), V) means "any key". */
const ANY_KEY_PATTERN = '^(.*)$';
const SCALAR_TYPES = new Set(['string', 'integer', 'number', 'boolean']);

function copyCommon(node: JsonObject, out: StructuralSchema, path: string): void {
  for (const key of COPIED) {
    const v = node[key];
    if (v === undefined) continue;
    if (key === 'description' || key === 'pattern') {
      if (typeof v !== 'string') throw new CrdSchemaError(path, `${key} must be a string`);
      out[key] = v;
    } else {
      if (typeof v !== 'number') throw new CrdSchemaError(path, `${key} must be a number`);
      out[key] = v;
    }
  }
}

function scalarType(v: JsonValue | undefined, path: string): NonNullable<StructuralSchema['type']> {
  if (typeof v === 'string' && (SCALAR_TYPES.has(v) || v === 'object' || v === 'array')) {
    return v as NonNullable<StructuralSchema['type']>;
  }
  throw new CrdSchemaError(path, `unsupported type ${JSON.stringify(v)}`);
}

function literalValue(v: JsonValue | undefined, path: string): string | number | boolean {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  throw new CrdSchemaError(path, `unsupported literal ${JSON.stringify(v)}`);
}

/**
 * A union of literals (TypeBox's Type.Union([Type.Literal(...)...])) becomes one typed enum,
 * optionally nullable; Kubernetes rejects `const` and typed anyOf branches.
 */
function unionToEnum(node: JsonObject, branches: JsonValue[], path: string): StructuralSchema {
  const values: (string | number | boolean)[] = [];
  let type: StructuralSchema['type'];
  let nullable = false;
  let plainBranches = 0;
  for (const [i, branch] of branches.entries()) {
    if (!isObject(branch)) throw new CrdSchemaError(`${path}.anyOf[${i}]`, 'branch is not a schema');
    if (branch.type === 'null') {
      nullable = true;
      continue;
    }
    const branchType = scalarType(branch.type, `${path}.anyOf[${i}]`);
    if (type !== undefined && type !== branchType) {
      throw new CrdSchemaError(path, `union mixes ${type} and ${branchType}; mark it x-kubernetes-int-or-string or restructure`);
    }
    type = branchType;
    if (branch.const !== undefined) values.push(literalValue(branch.const, `${path}.anyOf[${i}]`));
    else if (Object.keys(branch).some((k) => k !== 'type' && k !== 'description')) {
      throw new CrdSchemaError(`${path}.anyOf[${i}]`, 'only literal branches can be merged into an enum');
    } else plainBranches++;
  }
  // An enum would wrongly exclude the values a plain `string` branch admits.
  if (values.length > 0 && plainBranches > 0) {
    throw new CrdSchemaError(path, 'union mixes literals and plain types');
  }
  const out: StructuralSchema = {};
  copyCommon(node, out, path);
  if (type === undefined) throw new CrdSchemaError(path, 'a union of only null');
  out.type = type;
  // A union of plain types (string | null) keeps no enum; a union of literals does.
  if (values.length > 0) out.enum = values;
  if (nullable) out.nullable = true;
  return out;
}

/** Translates one TypeBox/JSON Schema node into a structural Kubernetes schema node. */
export function toStructural(node: JsonValue, path = ''): StructuralSchema {
  if (!isObject(node)) throw new CrdSchemaError(path, 'schema node is not an object');
  for (const key of Object.keys(node)) {
    if (!HANDLED.has(key)) throw new CrdSchemaError(path, `keyword "${key}" has no structural translation`);
  }

  if (node['x-kubernetes-int-or-string'] === true) {
    // The form controller-gen emits for IntOrString; the only typed anyOf Kubernetes allows.
    const out: StructuralSchema = {};
    copyCommon(node, out, path);
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    out['x-kubernetes-int-or-string'] = true;
    return out;
  }

  if (Array.isArray(node.anyOf)) return unionToEnum(node, node.anyOf, path);

  const type = scalarType(node.type, path);
  const out: StructuralSchema = {};
  copyCommon(node, out, path);
  out.type = type;

  if (node.const !== undefined) out.enum = [literalValue(node.const, path)];
  if (Array.isArray(node.enum)) out.enum = node.enum.map((v, i) => literalValue(v, `${path}.enum[${i}]`));

  if (type === 'object') {
    if (isObject(node.properties)) {
      out.properties = {};
      for (const [name, child] of Object.entries(node.properties)) {
        out.properties[name] = toStructural(child, path ? `${path}.${name}` : name);
      }
    }
    if (Array.isArray(node.required) && node.required.length > 0) {
      out.required = node.required.map((r) => {
        if (typeof r !== 'string') throw new CrdSchemaError(path, 'required lists a non-string');
        return r;
      });
    }
    if (isObject(node.patternProperties)) {
      const keys = Object.keys(node.patternProperties);
      const value = node.patternProperties[ANY_KEY_PATTERN];
      if (keys.length !== 1 || value === undefined) {
        throw new CrdSchemaError(path, `patternProperties ${JSON.stringify(keys)}: only string-keyed records are supported`);
      }
      out.additionalProperties = toStructural(value, `${path}[*]`);
    }
    // Structural schemas cannot say additionalProperties:false, and by default the API server
    // would silently prune a typo (failKernRequst) before admission, half-applying the manifest.
    // Preserving unknown fields on our strict objects lets them reach the validating webhook,
    // which rejects them with the field path and a near-miss suggestion.
    if (node.additionalProperties === false && isObject(node.properties)) {
      out['x-kubernetes-preserve-unknown-fields'] = true;
    }
    if (isObject(node.additionalProperties)) {
      out.additionalProperties = toStructural(node.additionalProperties, `${path}[*]`);
    } else if (node.additionalProperties === true) {
      throw new CrdSchemaError(path, 'additionalProperties:true; use a typed record or leave the object out of the CRD');
    }
  } else if (type === 'array') {
    if (node.items === undefined) throw new CrdSchemaError(path, 'array without items');
    out.items = toStructural(node.items, `${path}[]`);
  } else if (node.properties !== undefined || node.items !== undefined) {
    throw new CrdSchemaError(path, `${type} node with properties or items`);
  }
  return out;
}

const TYPE_META_DESCRIPTIONS = {
  apiVersion:
    'APIVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources',
  kind: 'Kind is a string value representing the REST resource this object represents. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds',
} as const;

/**
 * The top level of a custom resource: apiVersion and kind are plain strings (the API server sets
 * them per served version) and metadata is owned by the API server, so only `type: object`.
 */
export function resourceSchema(schema: TSchema): StructuralSchema {
  const plain = JSON.parse(JSON.stringify(schema)) as JsonValue;
  if (!isObject(plain) || !isObject(plain.properties)) throw new CrdSchemaError('', 'resource schema is not an object');
  const properties: Record<string, StructuralSchema> = {
    apiVersion: { type: 'string', description: TYPE_META_DESCRIPTIONS.apiVersion },
    kind: { type: 'string', description: TYPE_META_DESCRIPTIONS.kind },
    metadata: { type: 'object' },
  };
  for (const [name, child] of Object.entries(plain.properties)) {
    if (name in properties) continue;
    properties[name] = toStructural(child, name);
  }
  const out: StructuralSchema = { type: 'object', properties };
  if (typeof plain.description === 'string') out.description = plain.description;
  const required = (Array.isArray(plain.required) ? plain.required : []).filter(
    (r): r is string => typeof r === 'string' && !(r in TYPE_META_DESCRIPTIONS) && r !== 'metadata',
  );
  if (required.length > 0) out.required = required;
  return out;
}

export function buildCrd(input: CrdSpecInput): CustomResourceDefinition {
  const version: CustomResourceDefinition['spec']['versions'][number] = {
    name: input.version,
    served: true,
    storage: true,
    schema: { openAPIV3Schema: resourceSchema(input.schema) },
  };
  if (input.statusSubresource) version.subresources = { status: {} };
  if (input.printerColumns.length > 0) version.additionalPrinterColumns = input.printerColumns;
  const names: CustomResourceDefinition['spec']['names'] = {
    kind: input.kind,
    listKind: `${input.kind}List`,
    plural: input.plural,
    singular: input.singular,
  };
  if (input.shortNames) names.shortNames = input.shortNames;
  if (input.categories) names.categories = input.categories;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${input.plural}.${input.group}`, labels: { [PART_OF_LABEL]: PART_OF_VALUE } },
    spec: { group: input.group, names, scope: 'Namespaced', versions: [version] },
  };
}

export const KERNEL_CHAOS_CRD: CrdSpecInput = {
  group: 'chaos-mesh.org',
  kind: 'KernelChaos',
  plural: 'kernelchaos',
  singular: 'kernelchaos',
  version: 'v1alpha1',
  schema: KernelChaosSchema,
  statusSubresource: true,
  printerColumns: [
    { name: 'Mode', type: 'string', jsonPath: '.spec.mode', description: 'How many of the selected pods are targeted.' },
    { name: 'Failtype', type: 'integer', jsonPath: '.spec.failKernRequest.failtype', description: '0 slab, 1 page, 2 bio.' },
    { name: 'Phase', type: 'string', jsonPath: '.status.experiment.desiredPhase', description: 'Run or Stop.' },
    {
      name: 'Injected',
      type: 'string',
      jsonPath: '.status.conditions[?(@.type=="AllInjected")].status',
      description: 'Whether every selected container has the fault attached.',
    },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};

/**
 * The standalone profile's Schedule CRD: Chaos Mesh's Schedule shape restricted to type KernelChaos,
 * with no status subresource as in Chaos Mesh (the controller writes status with the object either way).
 * Labelled part-of=kernelchaos like every CRD here: that tells it from Chaos Mesh's at start-up.
 */
export const SCHEDULE_CRD: CrdSpecInput = {
  group: 'chaos-mesh.org',
  kind: 'Schedule',
  plural: 'schedules',
  singular: 'schedule',
  version: 'v1alpha1',
  schema: ScheduleSchema,
  statusSubresource: false,
  printerColumns: [
    { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule' },
    { name: 'Last-Run', type: 'date', jsonPath: '.status.time', description: 'When the last child was created.' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};

export const KERNEL_CHAOS_POLICY_CRD: CrdSpecInput = {
  group: 'kernelchaos.dev',
  kind: 'KernelChaosPolicy',
  plural: 'kernelchaospolicies',
  singular: 'kernelchaospolicy',
  version: 'v1alpha1',
  schema: KernelChaosPolicySchema,
  statusSubresource: false,
  printerColumns: [
    { name: 'Max-Probability', type: 'integer', jsonPath: '.spec.maxProbability' },
    { name: 'Max-Duration', type: 'string', jsonPath: '.spec.maxDuration' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  shortNames: ['kcpolicy'],
};

const HEADER =
  '# Generated by scripts/gen-crds.ts from src/api/schema.ts. Do not edit: change the schema and run `npm run gen:crds`.\n';

export function crdToYaml(crd: CustomResourceDefinition): string {
  // Sorted keys (as controller-gen does) keep regenerated files diff-stable; lineWidth 0 keeps
  // long descriptions on one line so a wording change is a one-line diff.
  return HEADER + stringify(crd, { sortMapEntries: true, lineWidth: 0 });
}

/** File name (relative to manifests/crds/) -> YAML text. */
export function renderCrdFiles(): Map<string, string> {
  return new Map([
    ['kernelchaos.chaos-mesh.org.yaml', crdToYaml(buildCrd(KERNEL_CHAOS_CRD))],
    ['kernelchaospolicies.kernelchaos.dev.yaml', crdToYaml(buildCrd(KERNEL_CHAOS_POLICY_CRD))],
    ['schedules.chaos-mesh.org.yaml', crdToYaml(buildCrd(SCHEDULE_CRD))],
  ]);
}
