// Admission of KernelChaos objects: validation (schema, semantics, immutability, namespace policies)
// and defaulting. Pure: (request, context) -> AdmissionReview.
import { isDeepStrictEqual } from 'node:util';
import jsonpatch from 'fast-json-patch';
import type { FieldError, KernelChaos } from '../api/types.js';
import { validateKernelChaos } from '../api/validate.js';
import { applyKernelChaosDefaults } from '../api/defaults.js';
import { reachableNamespaces, type PolicyViolation } from '../policy/check.js';
import { isProtectedNamespace, policyVerdict } from '../admission/gate.js';
import {
  allow,
  allowWithPatch,
  deny,
  formatFieldErrors,
  type AdmissionRequest,
  type AdmissionReviewResponse,
} from './admission.js';
import type { WebhookContext } from './context.js';

type Warning = FieldError | string;

export function warningText(w: Warning): string {
  return typeof w === 'string' ? w : w.path ? `${w.path}: ${w.message}` : w.message;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`;
}

/** Guards shared by both KernelChaos endpoints: the review must carry a KernelChaos object. */
function objectOrDenial(request: AdmissionRequest): { object: Record<string, unknown> } | { denial: AdmissionReviewResponse } {
  if (request.resource && request.resource.resource !== 'kernelchaos') {
    return {
      denial: deny(request.uid, 400, `this endpoint admits kernelchaos, got resource ${request.resource.resource}; check the webhook configuration's rules`),
    };
  }
  if (!isRecord(request.object)) {
    return { denial: deny(request.uid, 400, `request.object: expected a KernelChaos object, got ${describe(request.object)}`) };
  }
  return { object: request.object };
}

/** The object's namespace may be empty on CREATE (kubectl -n); the request's is authoritative. */
function withRequestNamespace(object: Record<string, unknown>, request: AdmissionRequest): Record<string, unknown> {
  const metadata = isRecord(object.metadata) ? object.metadata : undefined;
  if (!request.namespace || !metadata || metadata.namespace) return object;
  return { ...object, metadata: { ...metadata, namespace: request.namespace } };
}

function advisoryWarnings(chaos: KernelChaos, ctx: WebhookContext): string[] {
  const out: string[] = [];
  const selector = chaos.spec.selector;
  // The common case reaches only the own namespace (the webhook configuration keeps experiments out
  // of system namespaces): no walk needed.
  if (selector.pods === undefined && (selector.namespaces ?? []).every((ns) => ns === chaos.metadata.namespace)) return out;
  for (const ns of reachableNamespaces(chaos)) {
    if (isProtectedNamespace(ns, ctx.ownNamespace)) {
      out.push(`spec.selector: namespace ${ns} is never targeted (system namespace)`);
    }
  }
  return out;
}

function specsEqual(oldObject: unknown, newObject: Record<string, unknown>): boolean {
  const oldSpec = isRecord(oldObject) ? oldObject.spec : undefined;
  if (isDeepStrictEqual(oldSpec, newObject.spec)) return true;
  // An object stored before this webhook defaulted it differs only by defaults: compare defaulted forms.
  try {
    const a = applyKernelChaosDefaults(structuredClone(oldObject) as KernelChaos);
    const b = applyKernelChaosDefaults(structuredClone(newObject) as unknown as KernelChaos);
    return isDeepStrictEqual(a.spec, b.spec);
  } catch {
    return false;
  }
}

/** POST /validate-kernelchaos */
export function reviewKernelChaos(request: AdmissionRequest, ctx: WebhookContext): AdmissionReviewResponse {
  const { uid } = request;
  if (request.operation === 'DELETE' || request.operation === 'CONNECT') return allow(uid);
  const guarded = objectOrDenial(request);
  if ('denial' in guarded) return guarded.denial;
  const object = withRequestNamespace(guarded.object, request);

  if (request.operation === 'UPDATE') {
    // Spec unchanged: metadata edits (pause annotation, labels, finalizer removal) always pass, even
    // for an object that newer rules would reject, so no experiment can get stuck in deletion.
    // Policies were enforced at creation.
    if (specsEqual(request.oldObject, object)) return allow(uid);
    return deny(
      uid,
      422,
      'spec: a KernelChaos spec cannot change after creation (as in Chaos Mesh); delete and re-create it, ' +
        'or pause and resume it with the annotation experiment.chaos-mesh.org/pause: "true"',
    );
  }

  const verdict = admitKernelChaos(object, ctx);
  switch (verdict.outcome) {
    case 'invalid':
      return deny(uid, 422, formatFieldErrors(verdict.errors), verdict.warnings);
    case 'forbidden':
      return deny(uid, 403, verdict.reasons.join('; '), verdict.warnings);
    case 'allowed':
      return allow(uid, verdict.warnings);
  }
}

/** The webhook's decision on creating one KernelChaos, before it becomes an AdmissionReview. */
export type AdmissionVerdict =
  | { outcome: 'invalid'; errors: FieldError[]; warnings: string[] }
  | { outcome: 'forbidden'; violations: PolicyViolation[]; reasons: string[]; warnings: string[] }
  | { outcome: 'allowed'; chaos: KernelChaos; warnings: string[] };

/**
 * Validation, then every KernelChaosPolicy of the store the experiment can reach, then advisory
 * warnings: what POST /validate-kernelchaos decides on CREATE and what `kernelchaos validate`
 * reports offline. `object` carries its namespace (the request's, when the manifest has none).
 */
export function admitKernelChaos(object: unknown, ctx: WebhookContext): AdmissionVerdict {
  const verdict = validateKernelChaos(object);
  const warnings = verdict.warnings.map(warningText);
  if (!verdict.valid) return { outcome: 'invalid', errors: verdict.errors, warnings };
  const policies = ctx.store.list('KernelChaosPolicy');
  const policy = policyVerdict(verdict.chaos, policies, ctx.now());
  if (!policy.allowed) return { outcome: 'forbidden', violations: policy.violations, reasons: policy.reasons, warnings };
  const advice = advisoryWarnings(verdict.chaos, ctx);
  return { outcome: 'allowed', chaos: verdict.chaos, warnings: advice.length > 0 ? [...warnings, ...advice] : warnings };
}

/**
 * The object the mutating webhook stores: the defaults applied to the spec, metadata exactly as
 * sent. `namespace` stands in for a manifest without one (the request's namespace).
 */
export function defaultedKernelChaos(object: Record<string, unknown>, namespace?: string): Record<string, unknown> {
  const metadata = isRecord(object.metadata) ? object.metadata : undefined;
  const placed = namespace && metadata && !metadata.namespace ? { ...object, metadata: { ...metadata, namespace } } : object;
  const defaulted = applyKernelChaosDefaults(structuredClone(placed) as unknown as KernelChaos);
  return { ...(defaulted as unknown as Record<string, unknown>), metadata: object.metadata };
}

/**
 * Chaos Mesh's CRD types `value` as a string and the apiserver checks that schema after the mutating
 * webhooks: beside Chaos Mesh a `value: 1` (valid Chaos Mesh 1.x YAML, and our CRD's int-or-string)
 * is written as "1" rather than refused.
 */
function encodeValue(object: Record<string, unknown>, ctx: WebhookContext): Record<string, unknown> {
  if (ctx.profile?.()?.kernelChaos.valueType !== 'string') return object;
  const spec = isRecord(object.spec) ? object.spec : undefined;
  if (typeof spec?.value !== 'number') return object;
  return { ...object, spec: { ...spec, value: String(spec.value) } };
}

/** POST /mutate-kernelchaos: defaults (and the profile's value encoding) as a JSONPatch against exactly what was sent. */
export function mutateKernelChaos(request: AdmissionRequest, ctx: WebhookContext): AdmissionReviewResponse {
  const { uid } = request;
  if (request.operation === 'DELETE' || request.operation === 'CONNECT') return allow(uid);
  const guarded = objectOrDenial(request);
  if ('denial' in guarded) return guarded.denial;
  const verdict = validateKernelChaos(withRequestNamespace(guarded.object, request));
  if (!verdict.valid) {
    // On UPDATE the validating webhook decides (metadata-only edits of old objects must pass).
    if (request.operation === 'UPDATE') return allow(uid);
    // Never default an invalid object: the denial carries the same field errors the validator would.
    return deny(uid, 422, formatFieldErrors(verdict.errors), verdict.warnings.map(warningText));
  }
  const original = guarded.object;
  // Defaults may depend on the namespace (selector.namespaces), which kubectl -n leaves to the
  // request; metadata itself is the apiserver's to fill, so the patch never touches it.
  return allowWithPatch(uid, jsonpatch.compare(original, encodeValue(defaultedKernelChaos(original, request.namespace), ctx)));
}
