// Structure checks with ajv against the TypeBox schemas (the single source of truth), and the
// translation of ajv's errors into one message per field that says what would be valid.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import type { FieldError } from '../types.js';
import { describeValue, genericPath, isRecord, joinKey, pointerToPath } from './paths.js';
import { nearMiss, unknownFieldMessage } from './unknown-fields.js';

const ajv = new Ajv({
  allErrors: true,
  // Errors carry their schema and data, which the messages below need.
  verbose: true,
  // TypeBox adds annotations such as x-kubernetes-int-or-string that are for the CRD, not for ajv.
  strict: false,
});

const compiled = new WeakMap<TSchema, ValidateFunction>();

function validatorFor(schema: TSchema): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    v = ajv.compile(schema);
    compiled.set(schema, v);
  }
  return v;
}

/** Extra words for some fields' range errors. */
const RANGE_HINTS: Readonly<Record<string, string>> = {
  'spec.failKernRequest.failtype': ' (0 slab allocation, 1 page allocation, 2 block I/O)',
  'spec.failKernRequest.probability': ' (a percent; omitted or 0 = every call)',
  'spec.failKernRequest.times': ' (the most faults; omitted or 0 = no limit)',
};

const REQUIRED_HINTS: Readonly<Record<string, string>> = {
  'spec': 'the experiment: selector, mode and failKernRequest',
  'metadata': 'at least a name',
  'apiVersion': 'chaos-mesh.org/v1alpha1',
  'kind': 'KernelChaos',
  'spec.selector': 'which pods, e.g. selector: {namespaces: [my-namespace]}',
  'spec.mode': 'one of one, all, fixed, fixed-percent, random-max-percent',
  'spec.failKernRequest': 'the fault, e.g. failKernRequest: {failtype: 0, callchain: [{funcname: __x64_sys_mount}]}',
  'spec.failKernRequest.failtype': '0 slab allocation, 1 page allocation, 2 block I/O',
  'spec.scheduler.cron': 'e.g. "@every 10m" or "*/5 * * * *"',
  'spec.selector.expressionSelectors[].key': 'the label key',
  'spec.selector.expressionSelectors[].operator': 'In, NotIn, Exists or DoesNotExist',
};

export interface StructuralResult {
  errors: FieldError[];
  /** Problems past the first MAX_TRANSLATED, counted but not described. */
  omitted: number;
}

/** Structural errors of `input` against `schema`, one per problem. */
export function structuralErrors(schema: TSchema, input: unknown): StructuralResult {
  const validate = validatorFor(schema);
  if (validate(input)) return { errors: [], omitted: 0 };
  return translate(validate.errors ?? [], input);
}

function translate(errors: readonly ErrorObject[], root: unknown): StructuralResult {
  // An anyOf (a union of literals or of types) is reported once; its branches' errors are noise.
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  const inUnion = (e: ErrorObject): boolean =>
    unions.some((u) => u !== e && e.schemaPath.startsWith(`${u.schemaPath}/`));
  const out: FieldError[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  for (const e of errors) {
    // Translating costs (suggestions compare strings); past a screenful the rest are only counted.
    if (out.length >= MAX_TRANSLATED) {
      skipped++;
      continue;
    }
    if (inUnion(e)) continue;
    const error = translateOne(e, root);
    const key = `${error.path}\u0000${error.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(error);
    }
  }
  return { errors: out, omitted: skipped };
}

const MAX_TRANSLATED = 200;

function translateOne(e: ErrorObject, root: unknown): FieldError {
  const path = pointerToPath(e.instancePath, root);
  const got = describeValue(e.data);
  const parent = isRecord(e.parentSchema) ? e.parentSchema : {};
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty?: unknown }).additionalProperty);
      const known = isRecord(parent.properties) ? Object.keys(parent.properties) : [];
      return { path: joinKey(path, key), message: unknownFieldMessage(key, genericPath(path), known) };
    }
    case 'required': {
      const missing = String((e.params as { missingProperty?: unknown }).missingProperty);
      const full = joinKey(path, missing);
      const hint = REQUIRED_HINTS[genericPath(full)];
      return { path: full, message: hint ? `is required: ${hint}` : 'is required' };
    }
    case 'type': {
      const want = String((e.params as { type?: unknown }).type);
      return { path, message: `must be ${article(want)}, got ${got}${typeHint(path, e.data, want)}` };
    }
    case 'minimum':
    case 'maximum': {
      const min = typeof parent.minimum === 'number' ? parent.minimum : undefined;
      const max = typeof parent.maximum === 'number' ? parent.maximum : undefined;
      const range = min !== undefined && max !== undefined ? `${min}..${max}` : min !== undefined ? `>= ${min}` : `<= ${String(max)}`;
      return { path, message: `must be ${range}${RANGE_HINTS[genericPath(path)] ?? ''}, got ${got}` };
    }
    case 'const':
      return { path, message: constMessage([(e.params as { allowedValue?: unknown }).allowedValue], e.data, path) };
    case 'anyOf': {
      const branches = Array.isArray(e.schema) ? (e.schema as unknown[]) : [];
      const literals = branches.filter((b): b is { const: unknown } => isRecord(b) && 'const' in b).map((b) => b.const);
      if (literals.length === branches.length && literals.length > 0) return { path, message: constMessage(literals, e.data, path) };
      const types = branches.map((b) => (isRecord(b) && typeof b.type === 'string' ? b.type : 'value'));
      return { path, message: `must be ${types.map(article).join(' or ')}, got ${got}${typeHint(path, e.data, types.join('|'))}` };
    }
    case 'minLength':
      return { path, message: 'must not be empty' };
    case 'maxLength':
      return { path, message: `must be at most ${String(parent.maxLength)} characters` };
    case 'pattern':
      return { path, message: patternMessage(parent, got) };
    case 'minItems':
      return { path, message: `must have at least ${String(parent.minItems)} item(s)` };
    case 'maxItems':
      return { path, message: `must have at most ${String(parent.maxItems)} items` };
    default:
      return { path, message: `${e.message ?? 'is invalid'}${got === 'nothing' ? '' : `, got ${got}`}` };
  }
}

function article(type: string): string {
  switch (type) {
    case 'integer': return 'an integer';
    case 'object': return 'an object (a map of fields)';
    case 'array': return 'a list';
    case 'string': return 'a string';
    case 'number': return 'a number';
    case 'boolean': return 'true or false';
    case 'null': return 'null';
    default: return type;
  }
}

/** Likely intent behind a wrong type: a percent with %, a fraction for a percent, a quoted number. */
function typeHint(path: string, data: unknown, want: string): string {
  const generic = genericPath(path);
  if (want.includes('integer') && typeof data === 'number' && !Number.isInteger(data)) {
    if (generic === 'spec.failKernRequest.probability' && data > 0 && data < 1) {
      return ` (probability is a percent: write ${Math.round(data * 100)} for ${data})`;
    }
    return ' (a whole number)';
  }
  if (want === 'integer' && typeof data === 'string' && /^\s*\d+\s*%?\s*$/.test(data)) {
    return ` (write the number without quotes${data.includes('%') ? ' or %' : ''}: ${data.replace(/[\s%]/g, '')})`;
  }
  if (want === 'array' && typeof data === 'string') return ` (write a list: [${JSON.stringify(data.slice(0, 40))}])`;
  if (want === 'array' && isRecord(data)) return ' (write a list: start the entry with "- ")';
  // YAML reads `version: 1` or `enabled: true` as a number or boolean; labels and names are strings.
  if (want === 'string' && (typeof data === 'number' || typeof data === 'boolean')) return ` (quote it: "${String(data)}")`;
  return '';
}

function constMessage(allowed: readonly unknown[], data: unknown, path: string): string {
  const shown = allowed.map((a) => String(a));
  const expected = shown.length === 1 ? (shown[0] as string) : `one of ${shown.join(', ')}`;
  let hint = '';
  if (typeof data === 'string') {
    const near = nearMiss(data, shown);
    if (near && near !== data) hint = ` (did you mean ${near}?)`;
  }
  if (path === 'apiVersion' && typeof data === 'string' && data.endsWith('/v1alpha1') === false && data.startsWith('chaos-mesh.org/')) {
    hint = ' (KernelChaos is served only as v1alpha1)';
  }
  return `must be ${expected}, got ${describeValue(data)}${hint}`;
}

function patternMessage(schema: Record<string, unknown>, got: string): string {
  const description = typeof schema.description === 'string' ? schema.description : '';
  if (typeof schema.pattern === 'string' && schema.pattern.includes('[01][0-9]|2[0-3]')) {
    return `must be a time HH:MM from 00:00 to 23:59, got ${got}`;
  }
  return `must match ${description || String(schema.pattern)}, got ${got}`;
}
