// Frames and whole fault requests: funcname checks plus the two parsers, producing the AST the BPF
// generator consumes. Errors carry the field below failKernRequest (`callchain[1].predicate`).
import type { FailKernRequest, Frame } from '../types.js';
import type { Parameter, ParsedFailKernRequest, ParsedFrame, SitePredicate } from './ast.js';
import { siteFor } from '../../bpf/sites.js';
import { PredicateError } from './errors.js';
import { C_KEYWORDS, isCIdentifier, STRING_HELPERS } from './c-names.js';
import { parseParameters } from './parameters.js';
import { parsePredicate } from './expression.js';

/** KSYM_NAME_LEN was 128 before Linux 6.1; longer names cannot be kernel symbols on older nodes. */
export const MAX_FUNCNAME_LENGTH = 127;

/** Compiler clone suffixes (`.constprop.0`, `.isra.0`, `.part.1`, `.cold`) visible in /proc/kallsyms. */
const CLONE_SUFFIX = /^([A-Za-z_][A-Za-z0-9_]*)((?:\.(?:constprop|isra|part|cold|llvm|lto_priv)(?:\.\d+)*)+)$/;

/** The injection sites themselves: a chain frame on them would be the site, not a caller. */
const INJECTION_SITES: ReadonlySet<string> = new Set(['should_failslab', 'should_fail_alloc_page', 'should_fail_bio']);

/**
 * Why `name` cannot be a call-chain function, or null when it is a plausible kernel symbol.
 * Decision: compiler clones (`foo.constprop.0`) are rejected, because their arguments differ from
 * the source signature (constprop drops some, isra rewrites them), so `parameters` would be read
 * from the wrong registers, and the suffix changes from one kernel build to the next.
 */
export function funcnameProblem(name: string): string | null {
  if (name.length === 0) return 'must name a kernel function, e.g. __x64_sys_mount';
  const clone = CLONE_SUFFIX.exec(name);
  if (clone) {
    return `'${name}' is a compiler-generated clone whose arguments differ from the source; use the original function '${clone[1]}'`;
  }
  if (!isCIdentifier(name)) {
    return `must be a C identifier (letters, digits and _, not starting with a digit), got ${JSON.stringify(name.length > 60 ? `${name.slice(0, 60)}...` : name)}`;
  }
  if (name.length > MAX_FUNCNAME_LENGTH) return `must be at most ${MAX_FUNCNAME_LENGTH} characters (a kernel symbol name), got ${name.length}`;
  if (C_KEYWORDS.has(name) || STRING_HELPERS.has(name)) return `'${name}' is a C keyword, not a kernel function`;
  if (INJECTION_SITES.has(name)) {
    return `'${name}' is the injection site itself (chosen by failtype); list the functions that call it instead`;
  }
  return null;
}

/** Parses one frame; throws PredicateError whose `field` is `funcname`, `parameters` or `predicate`. */
export function parseFrame(frame: Readonly<Frame>): ParsedFrame {
  const funcname = frame.funcname ?? '';
  const problem = funcnameProblem(funcname);
  if (problem) throw new PredicateError(problem, 0, 'funcname');
  let parameters;
  try {
    parameters = parseParameters(frame.parameters ?? '');
  } catch (e) {
    throw e instanceof PredicateError ? e.withField('parameters') : e;
  }
  const text = frame.predicate ?? '';
  if (text.trim() === '') return { funcname, parameters, predicate: null };
  try {
    return { funcname, parameters, predicate: parsePredicate(text, parameters) };
  } catch (e) {
    throw e instanceof PredicateError ? e.withField('predicate') : e;
  }
}

/** A FailKernRequest, also as a readonly (`as const`) literal. */
export type FailKernRequestInput = Readonly<Omit<FailKernRequest, 'callchain' | 'headers'>> & {
  readonly callchain?: readonly Readonly<Frame>[];
  readonly headers?: readonly string[];
};

/** A frame that names no function: bpfki's and inject.py's predicate on the injection site. */
export function isSiteFrame(frame: Readonly<Frame>): boolean {
  return frame.funcname === undefined || frame.funcname === '';
}

function typeText(p: Parameter): string {
  const t = p.type;
  const base = t.base.kind === 'struct' ? `struct ${t.base.name}` : t.base.kind === 'union' ? `union ${t.base.name}` : t.base.name;
  return `${t.qualifiers.length > 0 ? `${t.qualifiers.join(' ')} ` : ''}${base}${' *'.repeat(t.pointerDepth)}`.replace(/ \*/g, ' *');
}

/**
 * The site frame's parameters: the site's own (from the failtype) when omitted; when written, the
 * same types in the same order as the site's real prototype (names are the user's), as a prefix.
 * Throws PredicateError on `parameters` or `predicate`.
 */
export function parseSiteFrame(frame: Readonly<Frame>, failtype: 0 | 1 | 2): SitePredicate | null {
  const site = siteFor(failtype);
  const real = parseParameters(site.parameters);
  let parameters = real;
  if (frame.parameters !== undefined && frame.parameters.trim() !== '') {
    try {
      parameters = parseParameters(frame.parameters);
    } catch (e) {
      throw e instanceof PredicateError ? e.withField('parameters') : e;
    }
    const wrong = parameters.findIndex((p, i) => real[i] === undefined || typeText(p) !== typeText(real[i] as Parameter));
    if (wrong >= 0) {
      throw new PredicateError(
        `must match the injection site ${site.prototype} (failtype ${failtype}): parameter ${wrong + 1} ` +
          `${real[wrong] ? `is ${typeText(real[wrong] as Parameter)}` : 'does not exist'}; write '${site.parameters}' or omit parameters`,
        0,
        'parameters',
      );
    }
  }
  const text = frame.predicate ?? '';
  if (text.trim() === '') return null;
  try {
    return { parameters, predicate: parsePredicate(text, parameters) };
  } catch (e) {
    throw e instanceof PredicateError ? e.withField('predicate') : e;
  }
}

/**
 * Parses a structurally valid failKernRequest; throws the first PredicateError with its field
 * (`callchain[0].predicate`). validateKernelChaos reports every error instead.
 */
export function parseFailKernRequest(req: FailKernRequestInput): ParsedFailKernRequest {
  if (req.failtype !== 0 && req.failtype !== 1 && req.failtype !== 2) {
    throw new PredicateError(`failtype must be 0, 1 or 2, got ${String(req.failtype)}`, 0, 'failtype');
  }
  const failtype = req.failtype;
  const frames = req.callchain ?? [];
  const last = frames.length - 1;
  let site: SitePredicate | null = null;
  const callchain = frames.flatMap((frame, i) => {
    try {
      if (i === last && isSiteFrame(frame)) {
        site = parseSiteFrame(frame, failtype);
        return [];
      }
      return [parseFrame(frame)];
    } catch (e) {
      throw e instanceof PredicateError ? e.withField(`callchain[${i}].${e.field}`) : e;
    }
  });
  return {
    failtype,
    callchain,
    ...(site ? { site } : {}),
    headers: [...(req.headers ?? [])],
    probability: req.probability ?? 0,
    times: req.times ?? 0,
  };
}
