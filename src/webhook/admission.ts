// AdmissionReview admission.k8s.io/v1: the request as the apiserver sends it, and the constructors
// for every answer, so that what the apiserver checks of a response holds by construction: the
// request's uid, apiVersion/kind, a patch only together with patchType, the denial reason in
// status.message, warnings within the apiserver's limits: each at most 120 characters (the advised
// length; the apiserver truncates past 256) and 4096 in total (the apiserver drops what follows).
import type { FieldError } from '../api/types.js';
import { clipText } from '../api/validation/paths.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const MAX_WARNING_LENGTH = 120;
export const MAX_WARNINGS_TOTAL = 4096;

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}
export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface AdmissionRequest {
  uid: string;
  kind?: GroupVersionKind;
  resource?: GroupVersionResource;
  subResource?: string;
  name?: string;
  namespace?: string;
  operation?: Operation;
  userInfo?: { username?: string; groups?: string[] };
  /** The object as the user sent it (after earlier mutations); untrusted JSON. */
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
  options?: unknown;
}

/** HTTP-style status codes used for denials: 400 malformed, 403 forbidden by policy, 422 invalid. */
export type DenialCode = 400 | 403 | 422;
export type DenialReason = 'BadRequest' | 'Forbidden' | 'Invalid';

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: DenialCode; message: string; reason: DenialReason };
  patch?: string;
  patchType?: 'JSONPatch';
  warnings?: string[];
  /** Keys are prefixed with the webhook's name by the apiserver and land in the audit log. */
  auditAnnotations?: Record<string, string>;
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type ParsedReview = { ok: true; request: AdmissionRequest } | { ok: false; message: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const OPERATIONS: ReadonlySet<string> = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

/**
 * Checks the envelope only (the object inside is judged by the handlers). Anything that prevents an
 * answer (no request, no uid) is an HTTP 400, since a review without its uid cannot be answered.
 */
export function parseAdmissionReview(body: unknown): ParsedReview {
  if (!isRecord(body)) return { ok: false, message: 'body must be a JSON AdmissionReview object' };
  if (body.kind !== undefined && body.kind !== 'AdmissionReview') {
    return { ok: false, message: `kind must be AdmissionReview, got ${JSON.stringify(body.kind)}` };
  }
  if (body.apiVersion !== undefined && body.apiVersion !== ADMISSION_API_VERSION) {
    return {
      ok: false,
      message: `apiVersion must be ${ADMISSION_API_VERSION} (set admissionReviewVersions: [v1]), got ${JSON.stringify(body.apiVersion)}`,
    };
  }
  const request = body.request;
  if (!isRecord(request)) return { ok: false, message: 'request: missing; an AdmissionReview must carry a request object' };
  if (typeof request.uid !== 'string' || request.uid.length === 0) {
    return { ok: false, message: 'request.uid: missing; it must be a non-empty string' };
  }
  if (request.operation !== undefined && (typeof request.operation !== 'string' || !OPERATIONS.has(request.operation))) {
    return { ok: false, message: `request.operation: must be CREATE, UPDATE, DELETE or CONNECT, got ${JSON.stringify(request.operation)}` };
  }
  return { ok: true, request: request as unknown as AdmissionRequest };
}

/** Cuts a warning to the apiserver's 120 characters (ASCII ellipsis: warnings must be plain text). */
export function truncateWarning(text: string): string {
  const clean = text.replace(/[\r\n\t]+/g, ' ');
  return clean.length <= MAX_WARNING_LENGTH ? clean : `${clean.slice(0, MAX_WARNING_LENGTH - 3)}...`;
}

function review(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/** Distinct warnings, cut to length, as many as fit in the total (a last one says how many did not). */
export function boundWarnings(warnings: readonly string[]): string[] {
  const all = [...new Set(warnings.map(truncateWarning))];
  const out: string[] = [];
  let used = 0;
  for (const [i, w] of all.entries()) {
    const rest = all.length - i - 1;
    // Room for this one and, if any follow, for the note that names them.
    const reserve = rest > 0 ? 48 : 0;
    if (used + w.length + reserve > MAX_WARNINGS_TOTAL) {
      out.push(`${all.length - i} more warning(s) not shown`);
      break;
    }
    out.push(w);
    used += w.length;
  }
  return out;
}

function withWarnings(response: AdmissionResponse, warnings: readonly string[] | undefined): AdmissionResponse {
  if (warnings && warnings.length > 0) response.warnings = boundWarnings(warnings);
  return response;
}

export function allow(uid: string, warnings?: readonly string[], auditAnnotations?: Record<string, string>): AdmissionReviewResponse {
  const response: AdmissionResponse = { uid, allowed: true };
  if (auditAnnotations && Object.keys(auditAnnotations).length > 0) response.auditAnnotations = auditAnnotations;
  return review(withWarnings(response, warnings));
}

/** Allows with a JSONPatch; an empty patch is left out entirely (with its patchType). */
export function allowWithPatch(
  uid: string,
  operations: readonly unknown[],
  warnings?: readonly string[],
  auditAnnotations?: Record<string, string>,
): AdmissionReviewResponse {
  const out = allow(uid, warnings, auditAnnotations);
  if (operations.length > 0) {
    out.response.patchType = 'JSONPatch';
    out.response.patch = Buffer.from(JSON.stringify(operations)).toString('base64');
  }
  return out;
}

const REASONS: Record<DenialCode, DenialReason> = { 400: 'BadRequest', 403: 'Forbidden', 422: 'Invalid' };

/** A denial kubectl can print: every error is in it, but no single message runs to megabytes. */
const MAX_DENIAL_MESSAGE = 16 * 1024;

export function deny(uid: string, code: DenialCode, message: string, warnings?: readonly string[]): AdmissionReviewResponse {
  return review(withWarnings({ uid, allowed: false, status: { code, message: clipText(message, MAX_DENIAL_MESSAGE), reason: REASONS[code] } }, warnings));
}

/** `path: message` for each error, '; '-joined: what `kubectl apply` prints after "denied the request:". */
export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ');
}
