// What to tell a user about a field the schema does not have. Manifests copied from blog posts and
// chatbots carry invented fields (`action`, `errno`, `slab`, `ratio`); silently dropping them would
// run a different experiment than the user believes, so each is rejected with the real field.
import { distance } from 'fastest-levenshtein';

/** Where each real field lives (generic paths: list indices erased). */
const FIELD_HOMES: Readonly<Record<string, string>> = {
  apiVersion: '',
  kind: '',
  metadata: '',
  spec: '',
  selector: 'spec',
  mode: 'spec',
  value: 'spec',
  containerNames: 'spec',
  failKernRequest: 'spec',
  duration: 'spec',
  scheduler: 'spec',
  remoteCluster: 'spec',
  namespaces: 'spec.selector',
  labelSelectors: 'spec.selector',
  expressionSelectors: 'spec.selector',
  annotationSelectors: 'spec.selector',
  fieldSelectors: 'spec.selector',
  nodes: 'spec.selector',
  nodeSelectors: 'spec.selector',
  pods: 'spec.selector',
  podPhaseSelectors: 'spec.selector',
  failtype: 'spec.failKernRequest',
  headers: 'spec.failKernRequest',
  callchain: 'spec.failKernRequest',
  probability: 'spec.failKernRequest',
  times: 'spec.failKernRequest',
  funcname: 'spec.failKernRequest.callchain[]',
  parameters: 'spec.failKernRequest.callchain[]',
  predicate: 'spec.failKernRequest.callchain[]',
  cron: 'spec.scheduler',
};

const FAILTYPE = 'spec.failKernRequest.failtype (0 slab allocation, 1 page allocation, 2 block I/O)';

/** Invented fields and what they meant; `at` limits a hint to one place (generic path). */
const INVENTED: readonly { keys: readonly string[]; at?: string; message: string }[] = [
  { keys: ['namespace'], at: 'spec.selector', message: 'use namespaces, a list: namespaces: [my-namespace]' },
  {
    keys: ['namespace'],
    at: 'spec',
    message: "the experiment's own namespace is metadata.namespace; target namespaces go in spec.selector.namespaces",
  },
  {
    keys: ['errno', 'errorno', 'errnum', 'error', 'errorCode', 'err', 'returnValue', 'retval', 'return', 'returnCode'],
    message: 'the errno is fixed by failtype: 0 slab -> ENOMEM, 1 page -> ENOMEM, 2 bio -> EIO',
  },
  { keys: ['action'], message: `KernelChaos has no action: what fails is ${FAILTYPE}` },
  {
    keys: ['slab', 'page', 'bio', 'kmalloc', 'failslab', 'alloc', 'type', 'faultType', 'fault', 'failureType', 'injectionType'],
    message: `choose what fails with ${FAILTYPE}`,
  },
  {
    keys: ['ratio', 'percent', 'percentage', 'rate', 'chance', 'prob', 'likelihood', 'frequency', 'failRate', 'errorRate'],
    message: 'use spec.failKernRequest.probability: a percent 0..100 (omitted or 0 = every call)',
  },
  {
    keys: ['count', 'limit', 'maxTimes', 'max', 'maxCount', 'repeat', 'attempts', 'injections', 'maxFaults', 'maxFailures'],
    message: 'use spec.failKernRequest.times: the most faults to inject (omitted or 0 = no limit)',
  },
  {
    keys: ['target', 'targets', 'podSelector', 'selectors', 'pod', 'matchLabels', 'labels'],
    at: 'spec',
    message: 'use spec.selector (namespaces, labelSelectors, ...) with spec.mode to choose pods',
  },
  { keys: ['matchLabels', 'labels'], at: 'spec.selector', message: 'use labelSelectors: a map of label -> value' },
  { keys: ['matchExpressions'], at: 'spec.selector', message: 'use expressionSelectors: a list of {key, operator, values}' },
  { keys: ['containerName', 'container', 'containers'], message: 'use spec.containerNames, a list of container names' },
  { keys: ['schedule', 'interval', 'period', 'every'], message: 'use spec.scheduler.cron (for example "@every 10m") together with spec.duration' },
  { keys: ['function', 'func', 'functionName', 'function_name', 'fn', 'symbol', 'probe', 'kprobe'], at: 'spec.failKernRequest.callchain[]', message: 'use funcname: the kernel function, e.g. __x64_sys_mount' },
  {
    keys: ['function', 'func', 'functionName', 'function_name', 'fn', 'symbol', 'probe', 'kprobe', 'functions'],
    message: 'list kernel functions in spec.failKernRequest.callchain: [{funcname: __x64_sys_mount}]',
  },
  {
    keys: ['args', 'arguments', 'params', 'signature', 'argTypes', 'parameter'],
    message: 'use parameters in a callchain frame: the C parameter list, e.g. "struct dentry *parent, const struct qstr *name"',
  },
  {
    keys: ['condition', 'filter', 'where', 'expr', 'expression', 'when', 'pred', 'match'],
    message: 'use predicate in a callchain frame: a C expression over its parameters, e.g. STRNCMP(name->name, "bananas", 8)',
  },
  {
    keys: ['delay', 'latency', 'jitter', 'sleep'],
    message: 'KernelChaos makes kernel calls fail, it cannot delay them (use IOChaos or NetworkChaos for latency)',
  },
  { keys: ['callstack', 'stack', 'frames', 'chain', 'calls'], message: 'use spec.failKernRequest.callchain' },
  { keys: ['include', 'includes', 'header'], message: 'use spec.failKernRequest.headers: plain header names like linux/mmzone.h' },
];

/**
 * The message for an unknown field `key` found in the object at `context` (a generic path such as
 * `spec.failKernRequest`) whose real fields are `known`.
 */
export function unknownFieldMessage(key: string, context: string, known: readonly string[]): string {
  const home = Object.hasOwn(FIELD_HOMES, key) ? FIELD_HOMES[key] : undefined;
  if (home !== undefined && home !== context) {
    return `unknown field here: ${key} belongs under ${home === '' ? 'the top level' : home}`;
  }
  const fold = (t: string): string => t.toLowerCase().replace(/[-_]/g, '');
  const sameLetters = known.find((k) => fold(k) === fold(key));
  if (sameLetters) return `unknown field: did you mean ${sameLetters}?`;
  const specific = INVENTED.find((h) => h.at === context && h.keys.includes(key));
  const general = INVENTED.find((h) => h.at === undefined && h.keys.includes(key));
  const hint = specific ?? general;
  if (hint) return `unknown field: ${hint.message}`;
  const near = nearMiss(key, known);
  if (near) return `unknown field: did you mean ${near}?`;
  return known.length > 0 ? `unknown field; the fields here are ${known.join(', ')}` : 'unknown field';
}

/** A known name within a small edit distance (or equal ignoring case and separators). */
export function nearMiss(word: string, known: readonly string[]): string | null {
  if (word.length > 100) return null;
  const fold = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const same = known.find((k) => fold(k) === fold(word));
  if (same) return same;
  // Abbreviations and their long forms: Mon for Monday, Exist for Exists.
  const prefix = known.find((k) => k.length >= 3 && word.length >= 3 && (fold(word).startsWith(fold(k)) || fold(k).startsWith(fold(word))));
  if (prefix) return prefix;
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(word.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const allowed = Math.max(1, Math.floor(Math.max(word.length, 3) / 4));
  return best !== null && bestDistance <= allowed ? best : null;
}
