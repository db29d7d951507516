// KernelChaosPolicy evaluation: pure. A KernelChaos is held to the policies of every namespace it
// can reach (its own and every namespace its selector names), so an experiment created in a lax
// namespace cannot fault pods of a strict one.
import type { KernelChaos, KernelChaosPolicy, KernelChaosPolicySpec } from '../api/types.js';
import { experimentDuration, parseGoDuration } from '../api/duration.js';
import { parseSchedule } from '../api/cron.js';
import { formatUtc, formatWindow, inAnyWindow } from './windows.js';

export interface PolicyViolation {
  /** `namespace/name` of the policy. */
  policy: string;
  /** The policy field that is violated. */
  rule: keyof KernelChaosPolicySpec;
  /** JSON path in the KernelChaos, e.g. spec.failKernRequest.probability. */
  path: string;
  /** Why, naming the policy and the limit (without the path). */
  message: string;
}

export interface PolicyCheckOptions {
  /**
   * Check `allowedScheduleWindows` against `now` (creation time). Off for UPDATE: a spec cannot change
   * then, and pausing outside a window must stay possible.
   */
  checkCreationWindow?: boolean;
}

/** Namespaces a KernelChaos can affect: its own, selector.namespaces and the keys of selector.pods. */
export function reachableNamespaces(chaos: KernelChaos): string[] {
  const own = chaos.metadata.namespace ?? 'default';
  const selector = chaos.spec.selector;
  return [...new Set([own, ...(selector.namespaces ?? []), ...Object.keys(selector.pods ?? {})])].sort();
}

function policyRef(policy: KernelChaosPolicy): string {
  return `${policy.metadata.namespace ?? 'default'}/${policy.metadata.name ?? '(unnamed)'}`;
}

/** `prefix*` matches by prefix, anything else exactly. */
function functionAllowed(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

/** Violations of one policy; `ref` names it in every message. */
function checkOne(chaos: KernelChaos, policy: KernelChaosPolicy, now: Date, opts: PolicyCheckOptions): PolicyViolation[] {
  const ref = policyRef(policy);
  const limits = policy.spec;
  const fault = chaos.spec.failKernRequest;
  const out: PolicyViolation[] = [];
  const add = (rule: keyof KernelChaosPolicySpec, path: string, message: string): void => {
    out.push({ policy: ref, rule, path, message });
  };

  if (limits.allowedFailtypes && !limits.allowedFailtypes.includes(fault.failtype)) {
    add('allowedFailtypes', 'spec.failKernRequest.failtype',
      `${fault.failtype} is not allowed by policy ${ref} allowedFailtypes [${limits.allowedFailtypes.join(', ')}]`);
  }
  if (limits.maxProbability !== undefined) {
    // Omitted or 0 means every call, i.e. 100 percent.
    const effective = !fault.probability ? 100 : fault.probability;
    if (effective > limits.maxProbability) {
      const shown = fault.probability ? `${effective}` : `${effective} (omitted or 0 means 100)`;
      add('maxProbability', 'spec.failKernRequest.probability',
        `${shown} exceeds policy ${ref} maxProbability ${limits.maxProbability}`);
    }
  }
  if (limits.maxTimes !== undefined) {
    if (!fault.times) {
      add('maxTimes', 'spec.failKernRequest.times',
        `must be set to at most ${limits.maxTimes} (omitted or 0 means no limit), required by policy ${ref} maxTimes ${limits.maxTimes}`);
    } else if (fault.times > limits.maxTimes) {
      add('maxTimes', 'spec.failKernRequest.times', `${fault.times} exceeds policy ${ref} maxTimes ${limits.maxTimes}`);
    }
  }
  if (limits.maxDuration !== undefined) {
    const maxMs = parseGoDuration(limits.maxDuration);
    if (maxMs !== null) {
      const d = experimentDuration(chaos.spec.duration);
      if (d.kind === 'none') {
        add('maxDuration', 'spec.duration',
          `must be set to at most ${limits.maxDuration} (omitted means until deleted), required by policy ${ref} maxDuration ${limits.maxDuration}`);
      } else {
        // An unparsable duration is the validator's to report; only a known excess is a policy matter.
        if (d.kind === 'ms' && d.ms > maxMs) {
          add('maxDuration', 'spec.duration', `${chaos.spec.duration} exceeds policy ${ref} maxDuration ${limits.maxDuration}`);
        }
      }
    }
  }
  const chain = fault.callchain ?? [];
  if (limits.requireCallchain && chain.length === 0) {
    add('requireCallchain', 'spec.failKernRequest.callchain',
      `must list at least one frame (an empty chain fails every call of the site), required by policy ${ref} requireCallchain`);
  }
  if (limits.maxFrames !== undefined && chain.length > limits.maxFrames) {
    add('maxFrames', 'spec.failKernRequest.callchain', `has ${chain.length} frames; policy ${ref} maxFrames ${limits.maxFrames}`);
  }
  chain.forEach((frame, i) => {
    const typed = (frame.parameters ?? '').trim() !== '' || (frame.predicate ?? '').trim() !== '';
    if (limits.allowPredicates === false && typed) {
      add('allowPredicates', `spec.failKernRequest.callchain[${i}].${(frame.predicate ?? '').trim() !== '' ? 'predicate' : 'parameters'}`,
        `parameters and predicates are not allowed by policy ${ref} allowPredicates false: remove them (the frame still matches by funcname)`);
    }
    const length = (frame.predicate ?? '').length;
    if (limits.maxPredicateLength !== undefined && length > limits.maxPredicateLength) {
      add('maxPredicateLength', `spec.failKernRequest.callchain[${i}].predicate`,
        `is ${length} characters; policy ${ref} maxPredicateLength ${limits.maxPredicateLength}`);
    }
  });
  if (limits.allowedFunctions) {
    chain.forEach((frame, i) => {
      if (frame.funcname && !functionAllowed(frame.funcname, limits.allowedFunctions ?? [])) {
        add('allowedFunctions', `spec.failKernRequest.callchain[${i}].funcname`,
          `${frame.funcname} is not allowed by policy ${ref} allowedFunctions [${(limits.allowedFunctions ?? []).join(', ')}]`);
      }
    });
  }
  if (limits.allowedModes && !limits.allowedModes.includes(chaos.spec.mode)) {
    add('allowedModes', 'spec.mode', `${chaos.spec.mode} is not allowed by policy ${ref} allowedModes [${limits.allowedModes.join(', ')}]`);
  }
  const windows = limits.allowedScheduleWindows;
  if (opts.checkCreationWindow !== false && windows && windows.length > 0 && !inAnyWindow(windows, now)) {
    add('allowedScheduleWindows', 'metadata',
      `experiments may only be created inside policy ${ref} allowedScheduleWindows [${windows.map(formatWindow).join('; ')}], now is ${formatUtc(now)}`);
  }
  const cron = chaos.spec.scheduler?.cron;
  if (windows && windows.length > 0 && cron !== undefined) {
    const outside = firstRunOutside(cron, windows, chaos, now);
    if (outside) {
      add('allowedScheduleWindows', 'spec.scheduler.cron',
        `runs at ${formatUtc(outside)}, outside policy ${ref} allowedScheduleWindows [${windows.map(formatWindow).join('; ')}]`);
    }
  }
  return out;
}

/** Runs of one week cover every weekday/time combination a window can name. */
const RUN_HORIZON_MS = 7 * 24 * 60 * 60 * 1000;
/** Bounds the work per review; a per-minute schedule leaves any daily window within 1440 runs. */
const MAX_RUNS_CHECKED = 2_000;

/** The first scheduled run start (within a week from now) outside every window, if any. */
function firstRunOutside(cron: string, windows: NonNullable<KernelChaosPolicySpec['allowedScheduleWindows']>, chaos: KernelChaos, now: Date): Date | undefined {
  const created = chaos.metadata.creationTimestamp ? new Date(chaos.metadata.creationTimestamp) : now;
  const parsed = parseSchedule(cron, { anchor: Number.isNaN(created.getTime()) ? now : created });
  // An unparsable schedule is the validator's to report.
  if (!parsed.ok) return undefined;
  const end = now.getTime() + RUN_HORIZON_MS;
  let at: Date | null = now;
  for (let i = 0; i < MAX_RUNS_CHECKED; i++) {
    at = parsed.schedule.nextAfter(at);
    if (at === null || at.getTime() > end) return undefined;
    if (!inAnyWindow(windows, at)) return at;
  }
  return undefined;
}

/**
 * Every violation of every policy in a namespace the experiment can reach. `policies` may hold
 * policies of any namespace; those of unreachable namespaces are ignored. Sorted by policy then path
 * so messages are stable.
 */
export function checkPolicies(
  chaos: KernelChaos,
  policies: readonly KernelChaosPolicy[],
  now: Date,
  opts: PolicyCheckOptions = {},
): PolicyViolation[] {
  // Most clusters have few or no policies: skip the namespace walk then (the webhook's hot path).
  if (policies.length === 0) return [];
  const reach = new Set(reachableNamespaces(chaos));
  const relevant = policies
    .filter((p) => reach.has(p.metadata.namespace ?? 'default'))
    .sort((a, b) => policyRef(a).localeCompare(policyRef(b)));
  return relevant.flatMap((p) => checkOne(chaos, p, now, opts));
}

export function formatViolation(v: PolicyViolation): string {
  return `${v.path}: ${v.message}`;
}
