// Chaos Mesh's Schedule and Workflow (chaos-mesh.org/v1alpha1) as far as they carry KernelChaos:
// the rules of Chaos Mesh's own admission (schedule: robfig cron with optional seconds; CRD limits
// historyLimit >= 1, startingDeadlineSeconds > 0, concurrencyPolicy Forbid|Allow; workflow: entry
// names a template, unique DNS-1123 template names, per-type fields, no duration in a chaos template)
// plus the full KernelChaos rules on each embedded spec, with paths into the outer object
// (spec.kernelChaos.failKernRequest.probability). What carries another chaos kind is `unchecked`:
// kernelchaos never calls a manifest valid that it did not check. Never throws.
import type { FieldError } from './types.js';
import { API_VERSION } from './types.js';
import { parseSchedule } from './cron.js';
import { experimentDuration } from './duration.js';
import { MAX_WARNING_LENGTH, capErrors, internalError, topLevelProblem, validateKernelChaos } from './validate.js';
import { dns1123SubdomainProblem } from './validation/k8s-names.js';
import { UNLIMITED_WARNING } from './validation/kernelchaos-rules.js';
import { describeValue, isRecord, joinIndex, joinKey } from './validation/paths.js';
import { unknownFieldMessage } from './validation/unknown-fields.js';

export type ChaosMeshVerdict =
  | { valid: true; warnings: string[] }
  | { valid: false; errors: FieldError[]; warnings: string[] }
  /** Well-formed as far as checked, but it carries chaos of a kind kernelchaos does not validate. */
  | { valid: 'unchecked'; reason: string; warnings: string[] };

/** Chaos Mesh's embedded chaos fields (EmbedChaos), as its CRDs list them. */
export const EMBEDDED_CHAOS_KINDS = [
  'AWSChaos', 'AzureChaos', 'BlockChaos', 'DNSChaos', 'GCPChaos', 'HTTPChaos', 'IOChaos', 'JVMChaos', 'KernelChaos',
  'NetworkChaos', 'PhysicalMachineChaos', 'PodChaos', 'StressChaos', 'TimeChaos',
] as const;

/** `KernelChaos` -> `kernelChaos`, `IOChaos` -> `ioChaos`, `PhysicalMachineChaos` -> `physicalmachineChaos` (Chaos Mesh's JSON names). */
export function embeddedField(kind: string): string {
  const special: Record<string, string> = {
    AWSChaos: 'awsChaos', GCPChaos: 'gcpChaos', DNSChaos: 'dnsChaos', HTTPChaos: 'httpChaos', IOChaos: 'ioChaos',
    JVMChaos: 'jvmChaos', PhysicalMachineChaos: 'physicalmachineChaos',
  };
  return special[kind] ?? `${kind.charAt(0).toLowerCase()}${kind.slice(1)}`;
}
const EMBEDDED_FIELDS: readonly string[] = EMBEDDED_CHAOS_KINDS.map(embeddedField);

const SCHEDULE_FIELDS = ['schedule', 'startingDeadlineSeconds', 'concurrencyPolicy', 'historyLimit', 'type', 'workflow', ...EMBEDDED_FIELDS];
const SCHEDULE_TYPES = [...EMBEDDED_CHAOS_KINDS, 'Workflow'];
const WORKFLOW_TEMPLATE_TYPES = ['Task', 'Serial', 'Parallel', 'Suspend', 'Schedule', 'StatusCheck', ...EMBEDDED_CHAOS_KINDS];
const TEMPLATE_FIELDS = [
  'name', 'templateType', 'deadline', 'children', 'task', 'conditionalBranches', 'schedule', 'statusCheck',
  'abortWithStatusCheck', ...EMBEDDED_FIELDS,
];

interface Collect {
  errors: FieldError[];
  warnings: string[];
  unchecked: string[];
}

type Kind = 'Schedule' | 'Workflow';

export function validateSchedule(input: unknown): ChaosMeshVerdict {
  return guarded(input, 'Schedule', (object, out) => {
    checkHead(object, 'Schedule', out);
    const spec = object.spec;
    if (!isRecord(spec)) {
      out.errors.push({ path: 'spec', message: spec === undefined ? 'is required: schedule, type and the chaos (e.g. kernelChaos: {...})' : `must be an object, got ${describeValue(spec)}` });
      return;
    }
    checkScheduleSpec(spec, 'spec', namespaceOf(object), out);
  });
}

export function validateWorkflow(input: unknown): ChaosMeshVerdict {
  return guarded(input, 'Workflow', (object, out) => {
    checkHead(object, 'Workflow', out);
    const spec = object.spec;
    if (!isRecord(spec)) {
      out.errors.push({ path: 'spec', message: spec === undefined ? 'is required: entry and templates' : `must be an object, got ${describeValue(spec)}` });
      return;
    }
    checkWorkflowSpec(spec, 'spec', namespaceOf(object), out);
  });
}

function guarded(input: unknown, kind: Kind, check: (object: Record<string, unknown>, out: Collect) => void): ChaosMeshVerdict {
  try {
    const guard = topLevelProblem(input, kind, API_VERSION);
    if (guard) return { valid: false, errors: [guard], warnings: [] };
    const out: Collect = { errors: [], warnings: [], unchecked: [] };
    check(input as Record<string, unknown>, out);
    // kubectl shows warnings cut at 120 characters by the apiserver; cut them here, knowingly.
    const warnings = out.warnings.map((w) => (w.length > MAX_WARNING_LENGTH ? `${w.slice(0, MAX_WARNING_LENGTH - 3)}...` : w));
    if (out.errors.length > 0) return { valid: false, errors: capErrors(out.errors, 0), warnings };
    if (out.unchecked.length > 0) return { valid: 'unchecked', reason: out.unchecked.slice(0, 5).join('; '), warnings };
    return { valid: true, warnings };
  } catch (e) {
    return { valid: false, errors: [internalError(e)], warnings: [] };
  }
}

function namespaceOf(object: Record<string, unknown>): string | undefined {
  const ns = isRecord(object.metadata) ? object.metadata.namespace : undefined;
  return typeof ns === 'string' ? ns : undefined;
}

function checkHead(object: Record<string, unknown>, kind: Kind, out: Collect): void {
  if (object.apiVersion !== API_VERSION) {
    out.errors.push({ path: 'apiVersion', message: `must be ${API_VERSION}, got ${describeValue(object.apiVersion)}` });
  }
  if (object.kind !== kind) out.errors.push({ path: 'kind', message: `must be ${kind}, got ${describeValue(object.kind)}` });
  const metadata = object.metadata;
  if (!isRecord(metadata)) {
    out.errors.push({ path: 'metadata', message: 'is required: at least a name' });
    return;
  }
  const { name, generateName } = metadata;
  if (typeof name === 'string') {
    const p = dns1123SubdomainProblem(name);
    if (p) out.errors.push({ path: 'metadata.name', message: `${p}, got ${describeValue(name)}` });
    // Chaos Mesh names each child `<schedule>-<5 random characters>`.
    else if (kind === 'Schedule' && name.length > 253 - 6) {
      out.errors.push({ path: 'metadata.name', message: `must be at most ${253 - 6} characters: each run is named ${name.slice(0, 10)}...-xxxxx` });
    }
  } else if (name === undefined && typeof generateName !== 'string') {
    out.errors.push({ path: 'metadata.name', message: `is required: name the ${kind} (lowercase letters, digits and "-")` });
  } else if (name !== undefined) {
    out.errors.push({ path: 'metadata.name', message: `must be a string, got ${describeValue(name)}` });
  }
}

function unknownFields(object: Record<string, unknown>, path: string, known: readonly string[], out: Collect): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) out.errors.push({ path: joinKey(path, key), message: unknownFieldMessage(key, path, known) });
  }
}

function positiveInteger(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

function checkScheduleSpec(spec: Record<string, unknown>, path: string, namespace: string | undefined, out: Collect): void {
  unknownFields(spec, path, SCHEDULE_FIELDS, out);
  const schedulePath = joinKey(path, 'schedule');
  if (spec.schedule === undefined) {
    out.errors.push({ path: schedulePath, message: 'is required: when each run starts, e.g. "@every 10m", "*/5 * * * *" or "0 */5 * * * *" (with seconds)' });
  } else if (typeof spec.schedule !== 'string') {
    out.errors.push({ path: schedulePath, message: `must be a string, got ${describeValue(spec.schedule)}` });
  } else {
    const parsed = parseSchedule(spec.schedule, { secondsOptional: true });
    if (!parsed.ok) out.errors.push({ path: schedulePath, message: `${parsed.message}, got ${describeValue(spec.schedule)}` });
  }
  const { historyLimit, startingDeadlineSeconds, concurrencyPolicy } = spec;
  if (historyLimit !== undefined && !positiveInteger(historyLimit)) {
    out.errors.push({ path: joinKey(path, 'historyLimit'), message: `must be a whole number >= 1 (how many finished runs to keep), got ${describeValue(historyLimit)}` });
  }
  if (startingDeadlineSeconds !== undefined && startingDeadlineSeconds !== null && !positiveInteger(startingDeadlineSeconds)) {
    out.errors.push({
      path: joinKey(path, 'startingDeadlineSeconds'),
      message: `must be a whole number > 0 (how late a missed run may still start), got ${describeValue(startingDeadlineSeconds)}`,
    });
  }
  // The defaulting webhook turns "" into Forbid before the schema sees it.
  if (concurrencyPolicy !== undefined && concurrencyPolicy !== '' && concurrencyPolicy !== 'Forbid' && concurrencyPolicy !== 'Allow') {
    out.errors.push({ path: joinKey(path, 'concurrencyPolicy'), message: `must be Forbid (the default: no new run while one is running) or Allow, got ${describeValue(concurrencyPolicy)}` });
  }
  const type = spec.type;
  const typePath = joinKey(path, 'type');
  if (type === undefined) {
    out.errors.push({ path: typePath, message: 'is required: the kind of chaos each run creates, e.g. type: KernelChaos with kernelChaos: {...}' });
    return;
  }
  if (typeof type !== 'string' || !SCHEDULE_TYPES.includes(type)) {
    out.errors.push({ path: typePath, message: `must be one of ${SCHEDULE_TYPES.join(', ')}, got ${describeValue(type)}` });
    return;
  }
  if (type === 'Workflow') {
    const workflow = spec.workflow;
    const wPath = joinKey(path, 'workflow');
    if (!isRecord(workflow)) out.errors.push({ path: wPath, message: 'is required with type Workflow: entry and templates' });
    else checkWorkflowSpec(workflow, wPath, namespace, out);
    return;
  }
  const field = embeddedField(type);
  if (type !== 'KernelChaos') {
    if (spec[field] === undefined) out.errors.push({ path: joinKey(path, field), message: `is required with type ${type}` });
    else out.unchecked.push(`${joinKey(path, field)}: ${type} is Chaos Mesh's to validate, not kernelchaos's`);
    return;
  }
  checkEmbeddedKernelChaos(spec.kernelChaos, joinKey(path, 'kernelChaos'), namespace, 'schedule', out);
}

function checkEmbeddedKernelChaos(
  value: unknown,
  path: string,
  namespace: string | undefined,
  where: 'schedule' | 'workflow',
  out: Collect,
): void {
  if (value === undefined || value === null) {
    out.errors.push({ path, message: 'is required: the KernelChaos spec (mode, selector, failKernRequest)' });
    return;
  }
  if (!isRecord(value)) {
    out.errors.push({ path, message: `must be an object (a KernelChaos spec), got ${describeValue(value)}` });
    return;
  }
  const verdict = validateKernelChaos({
    apiVersion: API_VERSION,
    kind: 'KernelChaos',
    metadata: { name: 'embedded', ...(namespace !== undefined ? { namespace } : {}) },
    spec: value,
  });
  const inner = (p: string): string => (p === 'spec' ? path : p.startsWith('spec.') || p.startsWith('spec[') ? `${path}${p.slice(4)}` : p === '' ? path : `${path}: ${p}`);
  if (!verdict.valid) {
    for (const e of verdict.errors) out.errors.push({ path: e.path === '' ? path : inner(e.path), message: e.message });
  }
  // In a Workflow the template's deadline bounds the chaos, so "unlimited" is not true there.
  const warnings = where === 'workflow' ? verdict.warnings.filter((w) => !w.startsWith(UNLIMITED_WARNING)) : verdict.warnings;
  for (const w of warnings) out.warnings.push(w.startsWith('spec.') ? `${path}${w.slice(4)}` : `${path}: ${w}`);
  if (where === 'workflow') {
    // Chaos Mesh: a chaos inside a workflow is bounded by its template's deadline; even "" is refused there.
    if (value.duration !== undefined) {
      const d = experimentDuration(value.duration);
      out.errors.push({
        path: joinKey(path, 'duration'),
        message: d.kind === 'none'
          ? 'must be omitted in a Workflow (Chaos Mesh cannot parse "" there): the template\'s deadline bounds the chaos'
          : 'must not be set in a Workflow: use the template\'s deadline instead (e.g. deadline: 30s)',
      });
    }
  } else if (experimentDuration(value.duration).kind === 'none') {
    out.warnings.push(`${path}.duration is not set: each run lasts until it is deleted, so with concurrencyPolicy Forbid no second run starts`);
  }
}

function checkWorkflowSpec(spec: Record<string, unknown>, path: string, namespace: string | undefined, out: Collect): void {
  unknownFields(spec, path, ['entry', 'templates'], out);
  const templates = Array.isArray(spec.templates) ? spec.templates : [];
  const names = templates.map((t) => (isRecord(t) && typeof t.name === 'string' ? t.name : ''));
  const entryPath = joinKey(path, 'entry');
  if (typeof spec.entry !== 'string' || spec.entry === '') {
    out.errors.push({ path: entryPath, message: 'is required: the name of the template the workflow starts with' });
  } else if (!names.includes(spec.entry)) {
    out.errors.push({ path: entryPath, message: `can not find a template named ${describeValue(spec.entry)}` });
  }
  const tPath = joinKey(path, 'templates');
  if (spec.templates !== undefined && !Array.isArray(spec.templates)) {
    out.errors.push({ path: tPath, message: `must be a list of templates, got ${describeValue(spec.templates)}` });
    return;
  }
  if (templates.length === 0) {
    out.errors.push({ path: tPath, message: 'must list at least one template' });
    return;
  }
  const duplicated = [...new Set(names.filter((n, i) => n !== '' && names.indexOf(n) !== i))].sort();
  if (duplicated.length > 0) out.errors.push({ path: tPath, message: `template names must be unique, duplicated: ${duplicated.join(', ')}` });
  templates.forEach((t, i) => {
    const itemPath = joinIndex(tPath, i);
    if (!isRecord(t)) out.errors.push({ path: itemPath, message: `must be an object, got ${describeValue(t)}` });
    else checkTemplate(t, itemPath, names, namespace, out);
  });
}

function checkTemplate(t: Record<string, unknown>, path: string, names: readonly string[], namespace: string | undefined, out: Collect): void {
  unknownFields(t, path, TEMPLATE_FIELDS, out);
  const namePath = joinKey(path, 'name');
  if (typeof t.name !== 'string' || t.name === '') {
    out.errors.push({ path: namePath, message: 'is required: a DNS-1123 name other templates refer to' });
  } else {
    const p = dns1123SubdomainProblem(t.name);
    if (p) out.errors.push({ path: namePath, message: `${p}, got ${describeValue(t.name)}` });
  }
  if (t.deadline !== undefined) {
    const d = experimentDuration(t.deadline);
    if (d.kind === 'invalid') out.errors.push({ path: joinKey(path, 'deadline'), message: `must be a Go duration such as 30s or 5m, got ${describeValue(t.deadline)}` });
  }
  const type = t.templateType;
  const typePath = joinKey(path, 'templateType');
  if (typeof type !== 'string' || !WORKFLOW_TEMPLATE_TYPES.includes(type)) {
    out.errors.push({ path: typePath, message: `must be one of ${WORKFLOW_TEMPLATE_TYPES.join(', ')}, got ${describeValue(type)}` });
    return;
  }
  const has = (f: string): boolean => t[f] !== undefined && t[f] !== null && !(Array.isArray(t[f]) && (t[f] as unknown[]).length === 0);
  const chaosFields = EMBEDDED_FIELDS.filter(has);
  const forbid = (fields: readonly string[], what: string): void => {
    for (const f of fields) if (has(f)) out.errors.push({ path: joinKey(path, f), message: `must not be set in a ${type} template (${what})` });
  };
  const noChaos = (): void => {
    for (const f of chaosFields) out.errors.push({ path: joinKey(path, f), message: `must not be set in a ${type} template: only a chaos template carries a chaos` });
  };
  switch (type) {
    case 'Suspend':
      if (experimentDuration(t.deadline).kind === 'none') out.errors.push({ path: joinKey(path, 'deadline'), message: 'is required in a Suspend template: how long to wait' });
      forbid(['task', 'children', 'conditionalBranches', 'schedule'], 'it only waits');
      noChaos();
      return;
    case 'Serial':
    case 'Parallel':
      if (Array.isArray(t.children)) {
        t.children.forEach((c, i) => {
          if (typeof c !== 'string' || !names.includes(c)) out.errors.push({ path: joinIndex(joinKey(path, 'children'), i), message: `can not find a template named ${describeValue(c)}` });
        });
      }
      forbid(['task', 'conditionalBranches', 'schedule'], 'it runs its children');
      noChaos();
      return;
    case 'Schedule':
      forbid(['task', 'children', 'conditionalBranches'], 'it runs its schedule');
      noChaos();
      if (isRecord(t.schedule)) {
        const inner = t.schedule;
        if (inner.type === 'KernelChaos') checkScheduleSpec(inner, joinKey(path, 'schedule'), namespace, out);
        else out.unchecked.push(`${joinKey(path, 'schedule')}: a schedule of ${describeValue(inner.type)} is Chaos Mesh's to validate`);
      }
      return;
    case 'Task':
      forbid(['children', 'schedule'], 'it runs a task');
      noChaos();
      out.unchecked.push(`${joinKey(path, 'task')}: Task templates are Chaos Mesh's to validate`);
      return;
    case 'StatusCheck':
      forbid(['task', 'children', 'conditionalBranches', 'schedule'], 'it checks a status');
      noChaos();
      out.unchecked.push(`${joinKey(path, 'statusCheck')}: StatusCheck templates are Chaos Mesh's to validate`);
      return;
    default: {
      forbid(['task', 'children', 'conditionalBranches', 'schedule'], 'a chaos template carries only its chaos');
      const field = embeddedField(type);
      if (type !== 'KernelChaos') {
        if (!has(field)) out.errors.push({ path: joinKey(path, field), message: `is required in a ${type} template` });
        else out.unchecked.push(`${joinKey(path, field)}: ${type} is Chaos Mesh's to validate`);
        return;
      }
      checkEmbeddedKernelChaos(t.kernelChaos, joinKey(path, 'kernelChaos'), namespace, 'workflow', out);
    }
  }
}
