// Admission of KernelChaosPolicy objects (POST /validate-kernelchaospolicy): a policy with a typo
// would silently allow everything, so policies are validated as strictly as experiments.
import { validateKernelChaosPolicy } from '../api/validate.js';
import { allow, deny, formatFieldErrors, type AdmissionRequest, type AdmissionReviewResponse } from './admission.js';
import type { WebhookContext } from './context.js';
import { warningText } from './kernelchaos.js';

export function reviewKernelChaosPolicy(request: AdmissionRequest, ctx: WebhookContext): AdmissionReviewResponse {
  void ctx;
  const { uid } = request;
  if (request.operation === 'DELETE' || request.operation === 'CONNECT') return allow(uid);
  if (request.resource && request.resource.resource !== 'kernelchaospolicies') {
    return deny(uid, 400, `this endpoint admits kernelchaospolicies, got resource ${request.resource.resource}; check the webhook configuration's rules`);
  }
  const object = request.object;
  if (typeof object !== 'object' || object === null || Array.isArray(object)) {
    return deny(uid, 400, 'request.object: expected a KernelChaosPolicy object');
  }
  const verdict = validateKernelChaosPolicy(object);
  const warnings = verdict.warnings.map(warningText);
  if (!verdict.valid) return deny(uid, 422, formatFieldErrors(verdict.errors), warnings);
  return allow(uid, warnings);
}
