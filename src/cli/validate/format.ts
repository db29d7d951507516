// The output formats of `kernelchaos validate`, pure: reports in, text out.
// text:  FILE:LINE:COL: KIND/NS/NAME: FIELD: message (what editors and CI annotate), then a summary.
// json:  the reports and the summary, for programs.
// yaml:  what the cluster would store: each valid document with the mutating webhook's defaults.
// junit: one testcase per document, for CI test reports.
import { stringify } from 'yaml';
import { fails, summarize, warningsOf, type DocumentReport, type Finding, type ReportOptions, type ValidateSummary } from './report.js';

export const FORMATS = ['text', 'json', 'yaml', 'junit'] as const;
export type Format = (typeof FORMATS)[number];

export interface FormatOptions extends ReportOptions {
  /** Only what fails: no summary, nothing for passing documents. */
  quiet: boolean;
  /** ANSI colours (text only): a terminal, and NO_COLOR unset. */
  color: boolean;
}

/** What to print where. */
export interface Rendered {
  stdout: string;
  stderr: string;
}

/** Colour only on a terminal, never with NO_COLOR set (https://no-color.org). */
export function useColor(isTTY: boolean | undefined, env: NodeJS.ProcessEnv): boolean {
  return isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '') && env.TERM !== 'dumb';
}

const paint = (on: boolean, code: string) => (s: string): string => (on ? `\u001b[${code}m${s}\u001b[0m` : s);

function where(r: DocumentReport, f: { line: number; column: number }): string {
  return `${r.source}:${f.line}:${f.column}`;
}

function who(r: DocumentReport): string {
  return `${r.kind}/${r.namespace}/${r.name}`;
}

function findingLine(r: DocumentReport, f: Finding, severity: 'error' | 'warning', o: FormatOptions): string {
  const red = paint(o.color, '31');
  const yellow = paint(o.color, '33');
  const dim = paint(o.color, '2');
  const loc = dim(where(r, f));
  // A document that is not even YAML has no kind or name to show.
  const subject = r.kind === '-' ? '' : ` ${who(r)}:`;
  const fieldPart = severity === 'error' && f.path !== '' ? ` ${f.path}:` : '';
  const tag = severity === 'warning' ? ` ${yellow('warning:')}` : '';
  return `${loc}:${subject}${fieldPart}${tag} ${severity === 'error' ? red(f.message) : f.message}`;
}

export function summaryLine(s: ValidateSummary): string {
  const parts = [`${s.valid} valid`, `${s.invalid} invalid`];
  if (s.denied > 0) parts.push(`${s.denied} denied by policy`);
  if (s.unchecked > 0) parts.push(`${s.unchecked} not checked (Chaos Mesh kinds only its webhook validates)`);
  if (s.skipped > 0) parts.push(`${s.skipped} skipped (other kinds)`);
  if (s.readErrors > 0) parts.push(`${s.readErrors} unreadable`);
  if (s.warnings > 0) parts.push(`${s.warnings} warning${s.warnings === 1 ? '' : 's'}`);
  return parts.join(', ');
}

/** Problems in text, in source order; read errors go to stderr. */
function problemLines(reports: readonly DocumentReport[], o: FormatOptions): { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  for (const r of reports) {
    if (r.status === 'error') {
      err.push(`${r.source}: ${r.message}`);
      continue;
    }
    if (o.quiet && !fails(r, o)) continue;
    if (r.status === 'invalid' || r.status === 'denied' || r.status === 'unchecked') out.push(...r.errors.map((f) => findingLine(r, f, 'error', o)));
    out.push(...warningsOf(r).map((f) => findingLine(r, f, 'warning', o)));
  }
  return { out, err };
}

function text(reports: readonly DocumentReport[], o: FormatOptions): Rendered {
  const { out, err } = problemLines(reports, o);
  if (!o.quiet) {
    const s = summarize(reports);
    const failed = reports.some((r) => fails(r, o));
    out.push(paint(o.color, failed ? '1;31' : '1;32')(summaryLine(s)));
  }
  return { stdout: out.length > 0 ? `${out.join('\n')}\n` : '', stderr: err.length > 0 ? `${err.join('\n')}\n` : '' };
}

function json(reports: readonly DocumentReport[], o: FormatOptions): Rendered {
  const summary = summarize(reports);
  const shown = o.quiet ? reports.filter((r) => fails(r, o)) : reports;
  const documents = shown.map((r) => {
    if (r.status !== 'valid') return r;
    // The defaulted object is -o yaml's business; JSON reports stay about findings.
    const { defaulted: _defaulted, ...rest } = r;
    void _defaulted;
    return rest;
  });
  const valid = !reports.some((r) => fails(r, o));
  return { stdout: `${JSON.stringify({ valid, summary, documents }, null, 2)}\n`, stderr: '' };
}

/** Valid documents as the cluster would store them; problems as text on stderr. */
function yaml(reports: readonly DocumentReport[], o: FormatOptions): Rendered {
  const objects = reports.flatMap((r) => (r.status === 'valid' && r.defaulted !== undefined ? [r.defaulted] : []));
  const stdout = objects.map((x) => stringify(x, { lineWidth: 0, version: '1.1' })).join('---\n');
  const problems = text(reports, { ...o, quiet: true, color: false });
  return { stdout, stderr: problems.stderr + problems.stdout };
}

// eslint-disable-next-line no-control-regex -- these are exactly what XML 1.0 cannot carry
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g;

function xml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string)
    // XML 1.0 forbids most control characters, even escaped.
    .replace(CONTROL, '');
}

function junit(reports: readonly DocumentReport[], o: FormatOptions): Rendered {
  const plain = { ...o, color: false };
  const bySource = new Map<string, DocumentReport[]>();
  for (const r of reports) bySource.set(r.source, [...(bySource.get(r.source) ?? []), r]);
  const suites: string[] = [];
  let tests = 0;
  let failures = 0;
  let errors = 0;
  let skipped = 0;
  for (const [source, rs] of bySource) {
    const cases: string[] = [];
    let f = 0;
    let e = 0;
    let s = 0;
    for (const r of rs) {
      const place = `document ${r.index + 1}, line ${r.line}`;
      const name = r.status === 'error' ? source : r.kind === '-' ? place : `${who(r)} (${place})`;
      const open = `    <testcase classname="${xml(source)}" name="${xml(name)}">`;
      const warnings = warningsOf(r).map((w) => findingLine(r, w, 'warning', plain));
      const out = warnings.length > 0 ? [`      <system-out>${xml(warnings.join('\n'))}</system-out>`] : [];
      if (r.status === 'error') {
        e++;
        cases.push(open, `      <error message="${xml(r.message)}" type="unreadable"/>`, '    </testcase>');
      } else if (r.status === 'skipped') {
        s++;
        cases.push(open, `      <skipped message="${xml(r.reason)}"/>`, '    </testcase>');
      } else if (r.status === 'invalid' || r.status === 'denied' || r.status === 'unchecked' || (o.strict && warnings.length > 0)) {
        f++;
        const found = r.status === 'valid' ? [] : r.errors.map((x) => findingLine(r, x, 'error', plain));
        const lines = o.strict ? [...found, ...warnings] : found;
        const type = r.status === 'valid' ? 'warning' : r.status;
        const top = r.status === 'valid' ? warningsOf(r)[0] : r.errors[0];
        const first = top ? (top.path && r.status !== 'valid' ? `${top.path}: ${top.message}` : top.message) : '';
        cases.push(open, `      <failure message="${xml(first)}" type="${type}">${xml(lines.join('\n'))}</failure>`, ...out, '    </testcase>');
      } else if (out.length > 0) {
        cases.push(open, ...out, '    </testcase>');
      } else {
        cases.push(open.replace(/>$/, '/>'));
      }
    }
    tests += rs.length;
    failures += f;
    errors += e;
    skipped += s;
    suites.push(`  <testsuite name="${xml(source)}" tests="${rs.length}" failures="${f}" errors="${e}" skipped="${s}">`, ...cases, '  </testsuite>');
  }
  const head = `<testsuites name="kernelchaos validate" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}">`;
  return { stdout: ['<?xml version="1.0" encoding="UTF-8"?>', head, ...suites, '</testsuites>', ''].join('\n'), stderr: '' };
}

export function render(format: Format, reports: readonly DocumentReport[], o: FormatOptions): Rendered {
  switch (format) {
    case 'text':
      return text(reports, o);
    case 'json':
      return json(reports, o);
    case 'yaml':
      return yaml(reports, o);
    case 'junit':
      return junit(reports, o);
  }
}
