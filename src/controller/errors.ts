// HTTP status of a failed @kubernetes/client-node call (ApiException.code), if it has one.
export function apiErrorCode(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** Worth retrying the same request: throttled, server-side trouble, or no HTTP answer at all. */
export function isTransient(error: unknown): boolean {
  const code = apiErrorCode(error);
  return code === undefined || code === 429 || code >= 500;
}
