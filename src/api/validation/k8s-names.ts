// Kubernetes name rules (apimachinery validation), so a selector that the apiserver would refuse
// in a label query is reported here with its field instead of silently matching nothing.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Namespaces and container names: lowercase letters, digits and '-', at most 63. */
export function dns1123LabelProblem(value: string): string | null {
  if (value.length === 0) return 'must not be empty';
  if (value.length > 63) return `must be at most 63 characters, got ${value.length}`;
  if (!DNS1123_LABEL.test(value)) return 'must be lowercase letters, digits and "-", starting and ending with a letter or digit';
  return null;
}

/** Pod and node names. */
export function dns1123SubdomainProblem(value: string): string | null {
  if (value.length === 0) return 'must not be empty';
  if (value.length > 253) return `must be at most 253 characters, got ${value.length}`;
  if (!DNS1123_SUBDOMAIN.test(value)) return 'must be lowercase letters, digits, "-" and ".", starting and ending with a letter or digit';
  return null;
}

/** Label and annotation keys: `[prefix/]name`. */
export function qualifiedNameProblem(key: string): string | null {
  if (key.length === 0) return 'key must not be empty';
  const slash = key.lastIndexOf('/');
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (slash >= 0) {
    const prefix = key.slice(0, slash);
    const p = dns1123SubdomainProblem(prefix);
    if (p) return `key prefix ${JSON.stringify(prefix)} ${p}`;
  }
  if (name.length === 0) return 'key name after "/" must not be empty';
  if (name.length > 63) return `key name must be at most 63 characters, got ${name.length}`;
  if (!QUALIFIED_NAME_PART.test(name)) return 'key name must be letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
  return null;
}

export function labelValueProblem(value: string): string | null {
  if (value.length === 0) return null;
  if (value.length > 63) return `value must be at most 63 characters, got ${value.length}`;
  if (!QUALIFIED_NAME_PART.test(value)) return 'value must be letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
  return null;
}
