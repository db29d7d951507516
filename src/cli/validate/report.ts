// What `kernelchaos validate` found, per document: the model every output format prints.

export interface Finding {
  /** JSON path in the document ('' for the whole document). */
  path: string;
  message: string;
  /** 1-based; where the path (or its nearest written parent) is in the source. */
  line: number;
  column: number;
  /** For policy violations: `namespace/name` of the policy and its violated rule. */
  policy?: string;
  rule?: string;
}

export interface DocumentIdentity {
  source: string;
  index: number;
  line: number;
  column: number;
  kind: string;
  /** The namespace the cluster would put it in ('-' for cluster-scoped or unknown). */
  namespace: string;
  name: string;
}

export type DocumentOutcome =
  | { status: 'valid'; warnings: Finding[]; /** What the cluster would store (the mutating webhook's defaults applied). */ defaulted?: unknown }
  /** The webhook's 422: schema or semantic errors. */
  | { status: 'invalid'; errors: Finding[]; warnings: Finding[] }
  /** The webhook's 403: valid, but a KernelChaosPolicy forbids it. */
  | { status: 'denied'; errors: Finding[]; warnings: Finding[] }
  /** A Schedule or Workflow carrying chaos kernelchaos does not validate: never passed. `errors` says so. */
  | { status: 'unchecked'; errors: Finding[]; warnings: Finding[] }
  | { status: 'skipped'; reason: string }
  /** The source could not be read. */
  | { status: 'error'; message: string };

export type DocumentReport = DocumentIdentity & DocumentOutcome;

export interface ValidateSummary {
  valid: number;
  invalid: number;
  denied: number;
  unchecked: number;
  skipped: number;
  readErrors: number;
  warnings: number;
}

export interface ReportOptions {
  /** Warnings fail the run (exit 1), as errors do. */
  strict: boolean;
}

export function warningsOf(r: DocumentReport): Finding[] {
  return r.status === 'valid' || r.status === 'invalid' || r.status === 'denied' || r.status === 'unchecked' ? r.warnings : [];
}

export function summarize(reports: readonly DocumentReport[]): ValidateSummary {
  const summary: ValidateSummary = { valid: 0, invalid: 0, denied: 0, unchecked: 0, skipped: 0, readErrors: 0, warnings: 0 };
  for (const r of reports) {
    if (r.status === 'valid') summary.valid++;
    else if (r.status === 'invalid') summary.invalid++;
    else if (r.status === 'denied') summary.denied++;
    else if (r.status === 'unchecked') summary.unchecked++;
    else if (r.status === 'skipped') summary.skipped++;
    else summary.readErrors++;
    summary.warnings += warningsOf(r).length;
  }
  return summary;
}

/** Whether the document fails the run. */
export function fails(r: DocumentReport, options: ReportOptions): boolean {
  if (r.status === 'invalid' || r.status === 'denied' || r.status === 'unchecked' || r.status === 'error') return true;
  return options.strict && warningsOf(r).length > 0;
}

/** 0 all pass, 1 any invalid, denied (or, with strict, warned), 2 any source unreadable. */
export function exitCode(reports: readonly DocumentReport[], options: ReportOptions): number {
  if (reports.some((r) => r.status === 'error')) return 2;
  return reports.some((r) => fails(r, options)) ? 1 : 0;
}
