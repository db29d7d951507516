// The manifests expose every component's /metrics the way a ServiceMonitor finds it: each
// container's --metrics-port is a named container port, a Service labelled component=metrics
// targets it by name, and the ServiceMonitor's endpoints name those Service ports.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { V1Container, V1DaemonSet, V1Deployment, V1PodSpec, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
type Doc = { kind: string; metadata: { name: string; labels?: Record<string, string> } };

function built(dir: string): Doc[] {
  // What `kubectl apply -k` applies.
  const out = execFileSync('kubectl', ['kustomize', join(ROOT, 'manifests', dir)], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as Doc);
}

const objects = [...built('webhook'), ...built('companion')];
const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet') as unknown as Array<V1Deployment | V1DaemonSet>;
const metricsServices = objects.filter((o) => o.kind === 'Service' && o.metadata.labels?.['app.kubernetes.io/component'] === 'metrics') as unknown as V1Service[];
const monitor = parseAllDocuments(readFileSync(join(ROOT, 'manifests', 'monitoring', 'servicemonitor.yaml'), 'utf8'))[0]?.toJS() as {
  spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> };
};

function podOf(w: V1Deployment | V1DaemonSet): V1PodSpec {
  const spec = w.spec?.template.spec;
  if (!spec) throw new Error('no pod template');
  return spec;
}
const argValue = (c: V1Container, flag: string): string | undefined => c.args?.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

describe('metrics in the manifests', () => {
  it('every component container serves --metrics-port on a named container port', () => {
    const served = workloads.flatMap((w) => podOf(w).containers.map((c) => ({ c, port: argValue(c, '--metrics-port') })));
    expect(served.map(({ c }) => c.name).sort()).toEqual(['companion', 'controller', 'webhook']);
    for (const { c, port } of served) {
      expect(port, c.name).toBeDefined();
      const named = c.ports?.find((p) => p.containerPort === Number(port));
      expect(named?.name, c.name).toMatch(/metrics$/);
    }
  });

  it('Services labelled component=metrics target those ports by name, and the ServiceMonitor scrapes them', () => {
    expect(metricsServices.length).toBe(3);
    const podPorts = new Map<string, Set<string>>();
    for (const w of workloads) {
      const labels = w.spec?.template.metadata?.labels ?? {};
      podPorts.set(JSON.stringify(labels), new Set(podOf(w).containers.flatMap((c) => (c.ports ?? []).map((p) => p.name ?? ''))));
    }
    const scrapedContainers = new Set<string>();
    for (const svc of metricsServices) {
      const selector = svc.spec?.selector ?? {};
      const w = workloads.find((x) => Object.entries(selector).every(([k, v]) => x.spec?.template.metadata?.labels?.[k] === v));
      expect(w, svc.metadata?.name).toBeDefined();
      if (!w) continue;
      for (const p of svc.spec?.ports ?? []) {
        expect(typeof p.targetPort).toBe('string');
        const c = podOf(w).containers.find((x) => x.ports?.some((cp) => cp.name === p.targetPort));
        expect(c, `${svc.metadata?.name}:${p.name}`).toBeDefined();
        // The Service port carries a name the ServiceMonitor asks for.
        if (monitor.spec.endpoints.some((e) => e.port === p.name) && c) scrapedContainers.add(c.name);
      }
      expect(Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => svc.metadata?.labels?.[k] === v)).toBe(true);
    }
    expect([...scrapedContainers].sort()).toEqual(['companion', 'controller', 'webhook']);
    expect(monitor.spec.endpoints.every((e) => e.path === '/metrics')).toBe(true);
  });
});
