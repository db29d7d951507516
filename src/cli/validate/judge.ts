// One verdict per document, with the webhook's own decision function: KernelChaos goes through
// admitKernelChaos (validation, then every reachable KernelChaosPolicy), KernelChaosPolicy through
// validateKernelChaosPolicy. More kinds slot in as entries of JUDGES. Pure: the context carries the
// policies, the clock and the namespaces.
import type { FieldError, KernelChaosPolicy } from '../../api/types.js';
import { POLICY_API_VERSION } from '../../api/types.js';
import type { ManifestDocument, Position } from '../../api/manifests.js';
import { validateKernelChaosPolicy } from '../../api/validate.js';
import { validateSchedule, validateWorkflow, type ChaosMeshVerdict } from '../../api/validate-chaos-mesh.js';
import { nearMiss } from '../../api/validation/unknown-fields.js';
import { parseFailKernRequest } from '../../api/predicate/index.js';
import { requestTypeProblems } from '../../bpf/btf.js';
import { InMemoryStore } from '../../kube/memory.js';
import type { PolicyViolation } from '../../policy/check.js';
import type { WebhookContext } from '../../webhook/context.js';
import { DEFAULT_NAMESPACE } from '../../webhook/context.js';
import { admitKernelChaos, defaultedKernelChaos } from '../../webhook/kernelchaos.js';
import type { DocumentIdentity, DocumentOutcome, DocumentReport, Finding } from './report.js';

export type ParsedDocument = Extract<ManifestDocument, { ok: true }>;

export interface JudgeContext {
  /** Policies, clock and own namespace exactly as the webhook would see them. */
  webhook: WebhookContext;
  /** Where a manifest without metadata.namespace goes (kubectl's context namespace). */
  namespace: string;
  /** Namespaces known to exist (from a cluster or the inputs); undefined when unknown (offline). */
  namespaces?: ReadonlySet<string>;
  /** A node's BTF to check parameters and predicates against (`--btf`). */
  btf?: string;
}

type Judge = (doc: ParsedDocument, ctx: JudgeContext, at: Locator) => DocumentOutcome;

type Locator = (path: string) => Position;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field(object: unknown, key: string): unknown {
  return isRecord(object) ? object[key] : undefined;
}

/** A manifest without a namespace lands in the context's, as with `kubectl apply`. */
export function placed(object: unknown, namespace: string): unknown {
  if (!isRecord(object) || !isRecord(object.metadata) || object.metadata.namespace) return object;
  return { ...object, metadata: { ...object.metadata, namespace } };
}

/** The first field path a warning names, for its position (`spec.value is ignored...`). */
function pathIn(text: string): string {
  return /\b((?:spec|metadata)(?:\.[A-Za-z_][\w]*|\[\d+\])*)/.exec(text)?.[1] ?? '';
}

function finding(at: Locator, path: string, message: string, extra: Partial<Finding> = {}): Finding {
  const p = at(path);
  return { path, message, line: p.line, column: p.column, ...extra };
}

function warningFindings(at: Locator, warnings: readonly string[]): Finding[] {
  return warnings.map((w) => {
    const path = pathIn(w);
    const p = at(path);
    return { path, message: w, line: p.line, column: p.column };
  });
}

function errorFindings(at: Locator, errors: readonly FieldError[]): Finding[] {
  return errors.map((e) => finding(at, e.path, e.message));
}

function violationFindings(at: Locator, violations: readonly PolicyViolation[]): Finding[] {
  return violations.map((v) => finding(at, v.path, v.message, { policy: v.policy, rule: v.rule }));
}

const judgeKernelChaos: Judge = (doc, ctx, at) => {
  const object = placed(doc.object, ctx.namespace);
  const verdict = admitKernelChaos(object, ctx.webhook);
  const warnings = warningFindings(at, verdict.warnings);
  if (verdict.outcome === 'invalid') return { status: 'invalid', errors: errorFindings(at, verdict.errors), warnings };
  if (verdict.outcome === 'forbidden') {
    // An unusable policy refuses without a structured violation: its reason stands on the object.
    const errors = verdict.violations.length > 0 ? violationFindings(at, verdict.violations) : verdict.reasons.map((r) => finding(at, 'metadata', r));
    return { status: 'denied', errors, warnings };
  }
  if (ctx.btf !== undefined) {
    const typeErrors = requestTypeProblems(parseFailKernRequest(verdict.chaos.spec.failKernRequest), ctx.btf);
    if (typeErrors.length > 0) return { status: 'invalid', errors: errorFindings(at, typeErrors), warnings };
  }
  const own = verdict.chaos.metadata.namespace ?? ctx.namespace;
  if (ctx.namespaces && !ctx.namespaces.has(own)) {
    // The apiserver refuses objects in a namespace that does not exist, before any webhook.
    const path = field(field(doc.object, 'metadata'), 'namespace') === undefined ? 'metadata' : 'metadata.namespace';
    return { status: 'invalid', errors: [finding(at, path, `namespace ${own} does not exist in the cluster: create it first`)], warnings };
  }
  if (ctx.namespaces) {
    for (const ns of verdict.chaos.spec.selector.namespaces ?? []) {
      if (!ctx.namespaces.has(ns)) warnings.push(finding(at, 'spec.selector.namespaces', `namespace ${ns} does not exist in the cluster: it selects no pods`));
    }
  }
  return { status: 'valid', warnings, defaulted: defaultedKernelChaos(doc.object as Record<string, unknown>, ctx.namespace) };
};

const judgeKernelChaosPolicy: Judge = (doc, _ctx, at) => {
  const verdict = validateKernelChaosPolicy(doc.object);
  const warnings = warningFindings(at, verdict.warnings);
  if (!verdict.valid) return { status: 'invalid', errors: errorFindings(at, verdict.errors), warnings };
  return { status: 'valid', warnings, defaulted: doc.object };
};

/** Schedule and Workflow: Chaos Mesh's rules and the full KernelChaos rules on each embedded spec. */
function chaosMeshJudge(validate: (object: unknown) => ChaosMeshVerdict): Judge {
  return (doc, _ctx, at) => {
    const verdict = validate(doc.object);
    const warnings = warningFindings(at, verdict.warnings);
    if (verdict.valid === 'unchecked') return { status: 'unchecked', errors: [finding(at, '', `not checked: ${verdict.reason}`)], warnings };
    if (!verdict.valid) return { status: 'invalid', errors: errorFindings(at, verdict.errors), warnings };
    return { status: 'valid', warnings, defaulted: doc.object };
  };
}

/** The kinds validate judges; any other kind is skipped (a near miss of one of these is judged as it). */
export const JUDGES: Readonly<Record<string, Judge>> = {
  KernelChaos: judgeKernelChaos,
  KernelChaosPolicy: judgeKernelChaosPolicy,
  Schedule: chaosMeshJudge(validateSchedule),
  Workflow: chaosMeshJudge(validateWorkflow),
};

/** Which judge a document gets: its kind, or a near miss of one of ours (a typo is reported, not skipped). */
function kindOf(object: unknown): { kind: string; declared: string } | { skip: string; declared: string } {
  const kind = field(object, 'kind');
  const apiVersion = field(object, 'apiVersion');
  const known = Object.keys(JUDGES);
  if (typeof kind === 'string') {
    if (known.includes(kind)) return { kind, declared: kind };
    const near = nearMiss(kind, known);
    if (near) return { kind: near, declared: kind };
    return { skip: `kind ${kind} is not validated by kernelchaos`, declared: kind };
  }
  if (apiVersion === POLICY_API_VERSION) return { kind: 'KernelChaosPolicy', declared: '-' };
  // Without a kind, a document is most likely a KernelChaos missing a line: validating reports it.
  return { kind: 'KernelChaos', declared: '-' };
}

function identity(doc: ManifestDocument, kind: string, namespace: string): DocumentIdentity {
  const base = { source: doc.source, index: doc.index, line: doc.line, column: doc.ok ? (doc.column ?? 1) : 1 };
  if (!doc.ok) return { ...base, kind: '-', namespace: '-', name: '-' };
  const metadata = field(doc.object, 'metadata');
  const ns = field(metadata, 'namespace');
  const name = field(metadata, 'name');
  const generateName = field(metadata, 'generateName');
  return {
    ...base,
    kind,
    namespace: kind === 'Namespace' ? '-' : typeof ns === 'string' && ns !== '' ? ns : namespace,
    name: typeof name === 'string' && name !== '' ? name : typeof generateName === 'string' ? `${generateName}*` : '-',
  };
}

export function judgeDocument(doc: ManifestDocument, ctx: JudgeContext): DocumentReport {
  if (!doc.ok) {
    const who = identity(doc, '-', '-');
    if (doc.error === 'read') return { ...who, status: 'error', message: doc.message };
    return { ...who, status: 'invalid', errors: [{ path: '', message: doc.message, line: doc.line, column: 1 }], warnings: [] };
  }
  const kind = kindOf(doc.object);
  if ('skip' in kind) return { ...identity(doc, kind.declared, ctx.namespace), status: 'skipped', reason: kind.skip };
  const who = identity(doc, kind.declared === '-' ? kind.kind : kind.declared, ctx.namespace);
  const at: Locator = doc.position ?? (() => ({ line: doc.line, column: doc.column ?? 1 }));
  const judge = JUDGES[kind.kind] as Judge;
  return { ...who, ...judge(doc, ctx, at) };
}

/** Valid KernelChaosPolicy objects among documents, placed in their namespace. */
export function policiesIn(docs: readonly ManifestDocument[], namespace: string): KernelChaosPolicy[] {
  const out: KernelChaosPolicy[] = [];
  for (const d of docs) {
    if (!d.ok || field(d.object, 'kind') !== 'KernelChaosPolicy') continue;
    const object = placed(d.object, namespace);
    const verdict = validateKernelChaosPolicy(object);
    if (verdict.valid) out.push(verdict.policy);
  }
  return out;
}

/** Names of Namespace objects among documents. */
export function namespacesIn(docs: readonly ManifestDocument[]): string[] {
  return docs.flatMap((d) => {
    if (!d.ok || field(d.object, 'kind') !== 'Namespace') return [];
    const name = field(field(d.object, 'metadata'), 'name');
    return typeof name === 'string' ? [name] : [];
  });
}

export interface ContextInput {
  policies: readonly KernelChaosPolicy[];
  namespace?: string;
  namespaces?: readonly string[];
  now?: Date;
  ownNamespace?: string;
  btf?: string;
}

/** A judge context whose store holds `policies` (later ones replace earlier ones of the same name). */
export function judgeContext(input: ContextInput): JudgeContext {
  const store = new InMemoryStore();
  for (const p of input.policies) store.put('KernelChaosPolicy', p);
  const now = input.now;
  return {
    webhook: { store, now: () => now ?? new Date(), ownNamespace: input.ownNamespace ?? DEFAULT_NAMESPACE },
    namespace: input.namespace ?? 'default',
    ...(input.namespaces ? { namespaces: new Set(input.namespaces) } : {}),
    ...(input.btf !== undefined ? { btf: input.btf } : {}),
  };
}
