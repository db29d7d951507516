// Admission of Chaos Mesh's Schedule and Workflow objects (POST /validate-schedule,
// /validate-workflow): those carrying KernelChaos get the full KernelChaos rules; those carrying
// only other chaos kinds are allowed with a warning that kernelchaos did not check them (Chaos
// Mesh's own webhook, where installed, does).
import { isDeepStrictEqual } from 'node:util';
import { validateSchedule, validateWorkflow, type ChaosMeshVerdict } from '../api/validate-chaos-mesh.js';
import { allow, deny, formatFieldErrors, type AdmissionRequest, type AdmissionReviewResponse } from './admission.js';
import type { WebhookContext } from './context.js';

function review(
  request: AdmissionRequest,
  resource: 'schedules' | 'workflows',
  validate: (object: unknown) => ChaosMeshVerdict,
): AdmissionReviewResponse {
  const { uid } = request;
  if (request.operation === 'DELETE' || request.operation === 'CONNECT') return allow(uid);
  if (request.resource && request.resource.resource !== resource) {
    return deny(uid, 400, `this endpoint admits ${resource}, got resource ${request.resource.resource}; check the webhook configuration's rules`);
  }
  const object = request.object;
  if (typeof object !== 'object' || object === null || Array.isArray(object)) {
    return deny(uid, 400, `request.object: expected a ${resource === 'schedules' ? 'Schedule' : 'Workflow'} object`);
  }
  // Status writes (the Schedule's controller updates the whole object: no status subresource) and
  // metadata edits pass; a changed spec is checked in full.
  if (request.operation === 'UPDATE' && isDeepStrictEqual((request.oldObject as { spec?: unknown } | null | undefined)?.spec, (object as { spec?: unknown }).spec)) return allow(uid);
  const verdict = validate(object);
  if (verdict.valid === false) return deny(uid, 422, formatFieldErrors(verdict.errors), verdict.warnings);
  if (verdict.valid === 'unchecked') return allow(uid, [...verdict.warnings, `not checked by kernelchaos: ${verdict.reason}`]);
  return allow(uid, verdict.warnings);
}

export function reviewSchedule(request: AdmissionRequest, ctx: WebhookContext): AdmissionReviewResponse {
  void ctx;
  return review(request, 'schedules', validateSchedule);
}

export function reviewWorkflow(request: AdmissionRequest, ctx: WebhookContext): AdmissionReviewResponse {
  void ctx;
  return review(request, 'workflows', validateWorkflow);
}
