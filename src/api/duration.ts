// Go's time.ParseDuration syntax (Chaos Mesh's `duration` field is a Go duration): a signed
// sequence of decimal numbers with optional fractions, each with a unit (ns, us, µs, ms, s, m, h).
// Hand-written because the npm duration parsers accept other syntaxes (`1 minute`, `P1D`) that the
// cluster's Go code would reject, and "the same verdict offline as in the cluster" is the goal.

const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3, // U+00B5 micro sign
  'μs': 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's limit: durations are int64 nanoseconds (about 290 years). */
const MAX_NS = 2 ** 63;

const COMPONENT = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;

/**
 * Parses a Go duration (`90s`, `1m30s`, `1.5h`, `-2m`, `0`) into milliseconds (fractional when
 * the text is finer than 1 ms). Returns null when Go would reject the text.
 */
export function parseGoDuration(text: string): number | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 256) return null;
  let rest = text;
  let sign = 1;
  if (rest[0] === '-' || rest[0] === '+') {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return null;
  let totalNs = 0;
  while (rest.length > 0) {
    const m = COMPONENT.exec(rest);
    if (!m) return null;
    const whole = m[1] ?? '';
    const frac = m[2];
    const unit = m[3] as string;
    // Go needs at least one digit on either side of the dot: `.s` and `s` are errors.
    if (whole === '' && (frac === undefined || frac === '')) return null;
    const value = Number(`${whole === '' ? '0' : whole}.${frac ?? '0'}`);
    totalNs += value * (UNIT_NS[unit] as number);
    if (!Number.isFinite(totalNs) || totalNs > MAX_NS) return null;
    rest = rest.slice(m[0].length);
  }
  return (sign * totalNs) / 1e6;
}

/** Formats milliseconds as Go's Duration.String() would: `1h30m0s`, `1.5s`, `500ms`, `0s`. */
export function formatGoDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const negative = ms < 0;
  let ns = Math.round(Math.abs(ms) * 1e6);
  const sign = negative && ns > 0 ? '-' : '';
  if (ns === 0) return '0s';
  if (ns < 1e9) {
    // Below a second Go picks the largest unit that keeps the integer part non-zero.
    if (ns < 1e3) return `${sign}${ns}ns`;
    if (ns < 1e6) return `${sign}${decimal(ns, 1e3)}µs`;
    return `${sign}${decimal(ns, 1e6)}ms`;
  }
  const hours = Math.floor(ns / 3600e9);
  ns -= hours * 3600e9;
  const minutes = Math.floor(ns / 60e9);
  ns -= minutes * 60e9;
  const seconds = decimal(ns, 1e9);
  let out = sign;
  if (hours > 0) out += `${hours}h`;
  if (hours > 0 || minutes > 0) out += `${minutes}m`;
  return `${out}${seconds}s`;
}

/** `count / unit` in decimal without trailing zeros (Go prints `1.5s`, not `1.500000000s`, never `1e-9`). */
function decimal(count: number, unit: number): string {
  const whole = Math.floor(count / unit);
  const rest = count - whole * unit;
  if (rest === 0) return String(whole);
  const digits = String(unit).length - 1;
  return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
}

/**
 * `spec.duration` as Chaos Mesh 2.x reads it: absent or `""` means no duration (the experiment runs
 * until deleted), otherwise a Go duration. The one place this rule lives.
 */
export type ExperimentDuration = { kind: 'none' } | { kind: 'ms'; ms: number } | { kind: 'invalid'; text: string };

export function experimentDuration(raw: unknown): ExperimentDuration {
  if (raw === undefined || raw === null || raw === '') return { kind: 'none' };
  if (typeof raw !== 'string') return { kind: 'invalid', text: String(raw) };
  const ms = parseGoDuration(raw);
  return ms === null ? { kind: 'invalid', text: raw } : { kind: 'ms', ms };
}
