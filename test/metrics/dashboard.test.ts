// manifests/monitoring/grafana-dashboard.json only queries metrics the components register: the
// names come from the real registries of the webhook, controller and companion.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CompanionMetrics } from '../../src/metrics/companion.js';
import { ControllerMetrics } from '../../src/metrics/controller.js';
import { componentRegistry } from '../../src/metrics/registry.js';
import { WebhookMetrics } from '../../src/webhook/metrics.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const dashboard = JSON.parse(readFileSync(join(ROOT, 'manifests', 'monitoring', 'grafana-dashboard.json'), 'utf8')) as {
  panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }> }>;
  templating: { list: Array<{ name: string; type: string; definition?: string }> };
};

/** Every series name the components can export (histograms as _bucket, _sum, _count). */
async function exportedNames(): Promise<Set<string>> {
  const companion = componentRegistry({ processMetrics: true });
  new CompanionMetrics(companion, { podLabels: true });
  const controller = componentRegistry({ processMetrics: false });
  new ControllerMetrics(controller, { isLeader: false, onReconcile: () => {} });
  const webhook = new WebhookMetrics().registry;
  const names = new Set<string>();
  for (const registry of [companion, controller, webhook]) {
    for (const m of await registry.getMetricsAsJSON()) {
      const kinds = String(m.type) === 'histogram' ? ['_bucket', '_sum', '_count'] : String(m.type) === 'summary' ? ['', '_sum', '_count'] : [''];
      for (const k of kinds) names.add(m.name + k);
    }
  }
  return names;
}

const PROMQL_WORDS = new Set([
  'sum', 'avg', 'min', 'max', 'count', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset',
  'rate', 'irate', 'increase', 'delta', 'histogram_quantile', 'label_values', 'topk', 'bottomk', 'clamp_min', 'clamp_max', 'abs', 'time', 'vector',
]);

/** The metric names a PromQL expression uses: identifiers outside label matchers, groupings, ranges and strings. */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, ' ')
    // Grafana's label_values(metric, label): the second argument is a label.
    .replace(/\blabel_values\(([^,)]*),[^)]*\)/g, '$1');
  return [...stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((w) => !PROMQL_WORDS.has(w) && !/^\d/.test(w));
}

describe('Grafana dashboard', () => {
  it('has the panels users look for', () => {
    const titles = dashboard.panels.map((p) => p.title.toLowerCase());
    for (const want of ['faults injected per second', 'site calls vs faults', 'armed containers', 'arm latency']) {
      expect(titles.some((t) => t.includes(want)), want).toBe(true);
    }
  });

  it('every query names at least one metric, and only metrics the components export', async () => {
    const names = await exportedNames();
    expect(names.has('kernelchaos_companion_faults_injected_total')).toBe(true);
    const queries = [
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
      ...dashboard.templating.list.filter((v) => v.type === 'query').map((v) => ({ where: `variable ${v.name}`, expr: v.definition ?? '' })),
    ];
    expect(queries.length).toBeGreaterThan(10);
    for (const q of queries) {
      const used = metricNamesIn(q.expr);
      expect(used.length, `${q.where}: ${q.expr}`).toBeGreaterThan(0);
      for (const n of used) expect(names.has(n), `${q.where}: ${n} is not exported`).toBe(true);
    }
  });

  it('the name check itself catches a metric nobody exports', async () => {
    const names = await exportedNames();
    const used = metricNamesIn('sum by (namespace) (rate(kernelchaos_companion_faults_total{namespace="x"}[5m]))');
    expect(used).toEqual(['kernelchaos_companion_faults_total']);
    expect(names.has('kernelchaos_companion_faults_total')).toBe(false);
  });
});
