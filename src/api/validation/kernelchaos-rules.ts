// The KernelChaos rules that a JSON schema cannot say: value by mode, selector syntax, durations
// and schedules, headers, and the call chain parsed as C. Reads the raw input defensively (every
// field may have any type: ajv reports wrong types, these rules skip them) and never throws.
import type { FieldError } from '../types.js';
import { experimentDuration } from '../duration.js';
import { parseSchedule } from '../cron.js';
import { funcnameProblem, parseParameters, parsePredicate, PredicateError, type Expr, type Parameter } from '../predicate/index.js';
import { budgetProblem, type CostedFrame } from '../predicate/budget.js';
import { parseSiteFrame } from '../predicate/frame.js';
import { ExpressionOperators, SelectorModes } from '../schema.js';
import { describeValue, isRecord, joinIndex, joinKey } from './paths.js';
import {
  dns1123LabelProblem,
  dns1123SubdomainProblem,
  labelValueProblem,
  qualifiedNameProblem,
} from './k8s-names.js';

/** The generator's limit (src/bpf/generate.ts): more frames than this cannot be tracked per thread. */
export const MAX_CALLCHAIN_FRAMES = 16;
export const MAX_HEADERS = 32;
/** Warnings end up in kubectl's output, which the apiserver truncates at 120 characters. */
export const MAX_WARNING_LENGTH = 120;
/** The start of the warning for a fault without any limit (a Workflow's deadline is one, so it drops it). */
export const UNLIMITED_WARNING = 'every matching call fails until the experiment is deleted';

/** Pod fields the apiserver indexes for field selectors (as src/selection implements them). */
const POD_FIELD_SELECTORS = [
  'metadata.name', 'metadata.namespace', 'spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName',
  'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName',
];

export interface RuleOutput {
  errors: FieldError[];
  warnings: string[];
}

/**
 * `cluster`: the verdict the webhook gives. `local`: for `kernelchaos run`/`render` (the same rules
 * today; the selector and scheduler just do not apply there).
 */
export type ValidationContext = 'cluster' | 'local';

export function kernelChaosRules(input: Record<string, unknown>, _context: ValidationContext = 'cluster'): RuleOutput {
  const out: RuleOutput = { errors: [], warnings: [] };
  const err = (path: string, message: string): void => {
    out.errors.push({ path, message });
  };
  const warn = (text: string): void => {
    out.warnings.push(text.length > MAX_WARNING_LENGTH ? `${text.slice(0, MAX_WARNING_LENGTH - 3)}...` : text);
  };
  checkMetadata(input.metadata, err);
  const spec = input.spec;
  if (!isRecord(spec)) return out;
  checkModeValue(spec, err, warn);
  if (isRecord(spec.selector)) checkSelector(spec.selector, err);
  checkContainerNames(spec.containerNames, err);
  checkTiming(spec, err, warn);
  if (isRecord(spec.failKernRequest)) checkFailKernRequest(spec.failKernRequest, spec, err, warn);
  if (typeof spec.remoteCluster === 'string' && spec.remoteCluster !== '') {
    warn(`spec.remoteCluster is not supported: the experiment runs in this cluster`);
  }
  return out;
}

type Report = (path: string, message: string) => void;

function checkMetadata(metadata: unknown, err: Report): void {
  if (!isRecord(metadata)) return;
  const { name, generateName, namespace } = metadata;
  if (typeof name === 'string') {
    const p = dns1123SubdomainProblem(name);
    if (p) err('metadata.name', `${p}, got ${describeValue(name)}`);
  } else if (name === undefined && typeof generateName !== 'string') {
    err('metadata.name', 'is required: name the experiment (lowercase letters, digits and "-")');
  }
  if (typeof namespace === 'string') {
    const p = dns1123LabelProblem(namespace);
    if (p) err('metadata.namespace', `${p}, got ${describeValue(namespace)}`);
  }
}

/** Integer or decimal string (Chaos Mesh reads value with strconv.Atoi). */
function modeValue(value: unknown): number | 'absent' | 'invalid' {
  if (value === undefined || value === null || value === '') return 'absent';
  if (typeof value === 'number') return Number.isInteger(value) ? value : 'invalid';
  if (typeof value === 'string' && /^[+-]?\d{1,15}$/.test(value)) return Number(value);
  return 'invalid';
}

function checkModeValue(spec: Record<string, unknown>, err: Report, warn: (t: string) => void): void {
  const mode = spec.mode;
  if (typeof mode !== 'string' || !(SelectorModes as readonly string[]).includes(mode)) return;
  const value = modeValue(spec.value);
  if (mode === 'one' || mode === 'all') {
    if (value !== 'absent') warn(`spec.value is ignored with mode ${mode}`);
    return;
  }
  const what = mode === 'fixed' ? 'the number of pods to target' : 'the percent of selected pods to target';
  const range = mode === 'fixed' ? '>= 1' : '1..100';
  if (value === 'absent') {
    err('spec.value', `is required with mode ${mode}: ${what} (${range}), e.g. value: "${mode === 'fixed' ? 2 : 50}"`);
    return;
  }
  if (value === 'invalid') {
    // Wrong types are ajv's to report; a string that is not a whole number is ours.
    if (typeof spec.value === 'string') {
      const hint = spec.value.includes('%') ? ' (without the % sign)' : '';
      err('spec.value', `must be a whole number${hint} with mode ${mode}: ${what} (${range}), got ${describeValue(spec.value)}`);
    }
    return;
  }
  if (mode === 'fixed' ? value < 1 : value < 1 || value > 100) {
    err('spec.value', `must be ${range} with mode ${mode} (${what}), got ${describeValue(spec.value)}`);
  }
}

function checkSelector(selector: Record<string, unknown>, err: Report): void {
  const base = 'spec.selector';
  eachString(selector.namespaces, joinKey(base, 'namespaces'), (path, ns) => {
    const p = dns1123LabelProblem(ns);
    if (p) err(path, `namespace ${p}, got ${describeValue(ns)}`);
  });
  checkLabelMap(selector.labelSelectors, joinKey(base, 'labelSelectors'), true, err);
  checkLabelMap(selector.nodeSelectors, joinKey(base, 'nodeSelectors'), true, err);
  checkLabelMap(selector.annotationSelectors, joinKey(base, 'annotationSelectors'), false, err);
  if (isRecord(selector.fieldSelectors)) {
    for (const key of Object.keys(selector.fieldSelectors)) {
      // src/selection accepts `field!=` / `field=` keys as an extension of the equality map.
      const field = key.replace(/\s*(!=|==|!|=)$/, '').trim();
      if (!POD_FIELD_SELECTORS.includes(field)) {
        err(joinKey(joinKey(base, 'fieldSelectors'), key), `pods cannot be selected by ${describeValue(field)}; use one of ${POD_FIELD_SELECTORS.join(', ')}`);
      }
    }
  }
  eachString(selector.nodes, joinKey(base, 'nodes'), (path, node) => {
    const p = dns1123SubdomainProblem(node);
    if (p) err(path, `node name ${p}, got ${describeValue(node)}`);
  });
  if (isRecord(selector.pods)) {
    for (const [ns, names] of Object.entries(selector.pods)) {
      const path = joinKey(joinKey(base, 'pods'), ns);
      const p = dns1123LabelProblem(ns);
      if (p) err(path, `the key is a namespace: it ${p}`);
      eachString(names, path, (itemPath, name) => {
        const q = dns1123SubdomainProblem(name);
        if (q) err(itemPath, `pod name ${q}, got ${describeValue(name)}`);
      });
    }
  }
  if (Array.isArray(selector.expressionSelectors)) {
    selector.expressionSelectors.forEach((req, i) => {
      if (!isRecord(req)) return;
      const path = joinIndex(joinKey(base, 'expressionSelectors'), i);
      if (typeof req.key === 'string' && req.key !== '') {
        const p = qualifiedNameProblem(req.key);
        if (p) err(joinKey(path, 'key'), `label ${p}, got ${describeValue(req.key)}`);
      }
      const op = req.operator;
      if (typeof op !== 'string' || !(ExpressionOperators as readonly string[]).includes(op)) return;
      const values = Array.isArray(req.values) ? req.values : [];
      if ((op === 'In' || op === 'NotIn') && values.length === 0) {
        err(joinKey(path, 'values'), `must list at least one value with operator ${op}`);
      }
      if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) {
        err(joinKey(path, 'values'), `must be empty with operator ${op} (it tests only whether the label exists)`);
      }
      eachString(req.values, joinKey(path, 'values'), (itemPath, v) => {
        const p = labelValueProblem(v);
        if (p) err(itemPath, `label ${p}, got ${describeValue(v)}`);
      });
    });
  }
}

function checkLabelMap(map: unknown, path: string, checkValues: boolean, err: Report): void {
  if (!isRecord(map)) return;
  for (const [key, value] of Object.entries(map)) {
    const p = qualifiedNameProblem(key);
    if (p) err(joinKey(path, key), `label ${p}`);
    if (checkValues && typeof value === 'string') {
      const q = labelValueProblem(value);
      if (q) err(joinKey(path, key), `label ${q}, got ${describeValue(value)}`);
    }
  }
}

function eachString(list: unknown, path: string, check: (path: string, value: string) => void): void {
  if (!Array.isArray(list)) return;
  list.forEach((item, i) => {
    if (typeof item === 'string') check(joinIndex(path, i), item);
  });
}

function checkContainerNames(names: unknown, err: Report): void {
  eachString(names, 'spec.containerNames', (path, name) => {
    const p = dns1123LabelProblem(name);
    if (p) err(path, `container name ${p}, got ${describeValue(name)}`);
  });
}

function checkTiming(spec: Record<string, unknown>, err: Report, warn: (t: string) => void): void {
  const { duration, scheduler } = spec;
  // Chaos Mesh 2.x: a duration alone is one run that ends `duration` after creation; "" means none.
  if (typeof duration === 'string') {
    const d = experimentDuration(duration);
    if (d.kind === 'invalid') {
      err('spec.duration', `must be a Go duration such as 90s, 1m30s or 2h (units ns, us, ms, s, m, h), got ${describeValue(duration)}`);
    } else if (d.kind === 'ms' && d.ms < 0) {
      err('spec.duration', `must not be negative (it would end before it starts), got ${describeValue(duration)}`);
    } else if (d.kind === 'ms' && d.ms === 0) {
      warn(scheduler === undefined || scheduler === null
        ? 'spec.duration is 0s: the experiment ends as soon as it starts'
        : 'spec.duration is 0s: every run of spec.scheduler ends as soon as it starts');
    }
  }
  const hasDuration = experimentDuration(duration).kind !== 'none';
  const hasScheduler = scheduler !== undefined && scheduler !== null;
  // The Chaos Mesh 1.x form: each fire of scheduler.cron opens one run of `duration`.
  if (hasScheduler && !hasDuration) {
    err('spec.duration', 'is required with spec.scheduler: how long each run lasts, e.g. duration: 30s');
  }
  if (isRecord(scheduler) && typeof scheduler.cron === 'string') {
    const parsed = parseSchedule(scheduler.cron);
    if (!parsed.ok) err('spec.scheduler.cron', `${parsed.message}, got ${describeValue(scheduler.cron)}`);
  }
}

function checkFailKernRequest(
  req: Record<string, unknown>,
  spec: Record<string, unknown>,
  err: Report,
  warn: (t: string) => void,
): void {
  const base = 'spec.failKernRequest';
  if (Array.isArray(req.headers)) {
    if (req.headers.length > MAX_HEADERS) err(joinKey(base, 'headers'), `must list at most ${MAX_HEADERS} headers, got ${req.headers.length}`);
    eachString(req.headers, joinKey(base, 'headers'), (path, header) => {
      const p = headerProblem(header);
      if (p) err(path, p);
    });
    if (req.headers.length > 0) warn(`${base}.headers are not needed: predicates are compiled against the kernel's BTF types`);
  }
  const callchain = Array.isArray(req.callchain) ? req.callchain : [];
  if (callchain.length > MAX_CALLCHAIN_FRAMES) {
    err(joinKey(base, 'callchain'), `must have at most ${MAX_CALLCHAIN_FRAMES} frames, got ${callchain.length}`);
  } else {
    const costed: CostedFrame[] = [];
    const failtype = req.failtype === 0 || req.failtype === 1 || req.failtype === 2 ? req.failtype : null;
    callchain.forEach((frame, i) => {
      if (!isRecord(frame)) return;
      const path = joinIndex(joinKey(base, 'callchain'), i);
      if (frame.funcname === undefined || frame.funcname === '') {
        if (i === callchain.length - 1) checkSiteFrame(frame, path, failtype, err);
        else err(joinKey(path, 'funcname'), `is required except in the last frame (which may be a predicate on the injection site itself): the kernel function that must be on the stack, e.g. __x64_sys_mount`);
      } else {
        const predicate = checkFrame(frame, path, err);
        if (typeof frame.funcname === 'string') costed.push({ index: i, funcname: frame.funcname, predicate });
      }
    });
    const overBudget = budgetProblem(costed);
    if (overBudget) err(joinKey(base, 'callchain'), overBudget);
  }
  const failtype = req.failtype;
  if (callchain.length === 0 && (failtype === 0 || failtype === 1)) {
    const what = failtype === 0 ? 'slab' : 'page';
    warn(`${base}.callchain is empty: every ${what} allocation of the targeted containers can fail`);
  }
  const probability = req.probability;
  const always = probability === undefined || probability === 0 || probability === 100;
  const unlimited = req.times === undefined || req.times === 0;
  if (always && unlimited && experimentDuration(spec.duration).kind === 'none') {
    warn(`${UNLIMITED_WARNING}: set ${base}.times or spec.duration`);
  }
}

/** Plain relative header names only: they are pasted into an #include line. */
export function headerProblem(header: string): string | null {
  if (header === '') return 'must not be empty: a header name such as linux/mmzone.h';
  if (header.length > 255) return `must be at most 255 characters, got ${header.length}`;
  if (/[\r\n]/.test(header)) return 'must not contain a line break';
  if (/["'<>`]/.test(header)) return `must be a plain name without quotes or angle brackets (linux/mmzone.h, not <linux/mmzone.h>), got ${describeValue(header)}`;
  if (/\s/.test(header)) return `must not contain spaces, got ${describeValue(header)}`;
  if (header.startsWith('/')) return `must be relative to the include path (linux/mmzone.h), not an absolute path, got ${describeValue(header)}`;
  if (header.split('/').some((seg) => seg === '..' || seg === '.')) return `must not contain '.' or '..' path segments, got ${describeValue(header)}`;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.+-]*(\/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$/.test(header)) {
    return `must be a header path of letters, digits, _, -, + and . separated by /, got ${describeValue(header)}`;
  }
  if (!header.endsWith('.h')) return `must name a header file ending in .h, got ${describeValue(header)}`;
  return null;
}

/** The accepted form of a site predicate, shown when one is refused. */
const SITE_FORM: Readonly<Record<0 | 1 | 2, string>> = {
  0: 'e.g. parameters: "struct kmem_cache *s, gfp_t gfpflags", predicate: "s->size == 4096"',
  1: 'e.g. parameters: "gfp_t gfp_mask, unsigned int order", predicate: "order >= 2"',
  2: 'e.g. parameters: "struct bio *bio", predicate: "bio->bi_iter.bi_sector == 128"',
};

/** A last frame without funcname: a predicate on the site's own arguments, checked against its prototype. */
function checkSiteFrame(frame: Record<string, unknown>, path: string, failtype: 0 | 1 | 2 | null, err: Report): void {
  const { parameters, predicate } = frame;
  if (failtype === null) return; // the failtype error says it; the site is unknown
  if ((parameters !== undefined && typeof parameters !== 'string') || (predicate !== undefined && typeof predicate !== 'string')) return;
  try {
    parseSiteFrame({ ...(parameters !== undefined ? { parameters } : {}), ...(predicate !== undefined ? { predicate } : {}) }, failtype);
  } catch (e) {
    const field = e instanceof PredicateError && e.field === 'parameters' ? 'parameters' : 'predicate';
    const text = field === 'parameters' ? String(parameters ?? '') : String(predicate ?? '');
    const message = predicateMessage(e, text);
    err(joinKey(path, field), field === 'predicate' ? `${message}; a site predicate is one C expression over the site's arguments, ${SITE_FORM[failtype]}` : message);
  }
}

/** Reports the frame's problems; returns its parsed predicate (null when absent or invalid). */
function checkFrame(frame: Record<string, unknown>, path: string, err: Report): Expr | null {
  const { funcname, parameters, predicate } = frame;
  if (typeof funcname === 'string') {
    const p = funcnameProblem(funcname);
    if (p) err(joinKey(path, 'funcname'), p);
  }
  let params: Parameter[] | null = [];
  if (typeof parameters === 'string') {
    try {
      params = parseParameters(parameters);
    } catch (e) {
      params = null;
      err(joinKey(path, 'parameters'), predicateMessage(e, parameters));
    }
  } else if (parameters !== undefined) {
    params = null;
  }
  // With unreadable parameters, a predicate error would only repeat that problem.
  if (params === null || typeof predicate !== 'string' || predicate.trim() === '') return null;
  try {
    return parsePredicate(predicate, params);
  } catch (e) {
    err(joinKey(path, 'predicate'), predicateMessage(e, predicate));
    return null;
  }
}

/** `message (column 12)`, or `(line 2, column 4)` in a multi-line block scalar; columns count from 0. */
function predicateMessage(e: unknown, text: string): string {
  if (!(e instanceof PredicateError)) return `could not be parsed: ${e instanceof Error ? e.message : String(e)}`;
  const before = text.slice(0, e.position);
  const lineStart = before.lastIndexOf('\n');
  if (lineStart < 0) return e.describe();
  const line = before.split('\n').length;
  return `${e.message} (line ${line}, column ${e.position - lineStart - 1})`;
}

