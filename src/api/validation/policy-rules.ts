// KernelChaosPolicy rules beyond the schema: a policy with a typo would silently allow everything,
// so its durations, function patterns and windows are checked as strictly as an experiment.
import type { FieldError } from '../types.js';
import { parseGoDuration } from '../duration.js';
import { describeValue, isRecord, joinIndex } from './paths.js';
import { dns1123LabelProblem } from './k8s-names.js';

const FUNCTION_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*\*?$|^\*$/;

export function policyRules(input: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const metadata = input.metadata;
  if (isRecord(metadata)) {
    if (typeof metadata.name !== 'string' && typeof metadata.generateName !== 'string') {
      errors.push({ path: 'metadata.name', message: 'is required: name the policy' });
    }
    if (typeof metadata.namespace === 'string') {
      const p = dns1123LabelProblem(metadata.namespace);
      if (p) errors.push({ path: 'metadata.namespace', message: `${p}, got ${describeValue(metadata.namespace)}` });
    }
  }
  const spec = input.spec;
  if (!isRecord(spec)) return errors;
  if (typeof spec.maxDuration === 'string') {
    const ms = parseGoDuration(spec.maxDuration);
    if (ms === null) errors.push({ path: 'spec.maxDuration', message: `must be a Go duration such as 10m or 1h30m, got ${describeValue(spec.maxDuration)}` });
    else if (ms <= 0) errors.push({ path: 'spec.maxDuration', message: `must be positive, got ${describeValue(spec.maxDuration)}` });
  }
  if (Array.isArray(spec.allowedFunctions)) {
    spec.allowedFunctions.forEach((f, i) => {
      if (typeof f === 'string' && !FUNCTION_PATTERN.test(f)) {
        errors.push({
          path: joinIndex('spec.allowedFunctions', i),
          message: `must be a kernel function name or a prefix ending in * (ext4_*), got ${describeValue(f)}`,
        });
      }
    });
  }
  return errors;
}
