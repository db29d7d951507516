// Text renderings of experiment summaries: a kubectl-style table, ages like kubectl's.
import type { ExperimentSummary } from './summary.js';

/** kubectl's short ages: 45s, 12m, 3h, 5d. */
export function age(from: string | undefined, now: Date): string {
  if (!from) return '<unknown>';
  const ms = now.getTime() - Date.parse(from);
  if (!Number.isFinite(ms)) return '<unknown>';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Columns padded to their widest cell, three spaces apart, as kubectl prints them. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd()).join('\n');
}

function cut(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length <= n ? one : `${one.slice(0, n - 1)}…`;
}

export function experimentRow(s: ExperimentSummary, now: Date, withNamespace: boolean): string[] {
  const last = s.lastEvent ? cut(`${s.lastEvent.reason}: ${s.lastEvent.message}`, 60) + ` (${age(s.lastEvent.at, now)})` : '<none>';
  return [
    ...(withNamespace ? [s.namespace] : []),
    s.name,
    s.phase,
    s.schedule,
    String(s.targetedPods.length),
    String(s.armedContainers),
    String(s.faults),
    last,
    age(s.createdAt, now),
  ];
}

export function experimentsTable(summaries: readonly ExperimentSummary[], now: Date, withNamespace: boolean): string {
  const header = [...(withNamespace ? ['NAMESPACE'] : []), 'NAME', 'PHASE', 'SCHEDULE', 'TARGETED', 'ARMED', 'FAULTS', 'LAST EVENT', 'AGE'];
  return table([header, ...summaries.map((s) => experimentRow(s, now, withNamespace))]);
}
