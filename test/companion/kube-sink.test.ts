import { describe, expect, it } from 'vitest';
import type { CoreV1Event, V1ConfigMap } from '@kubernetes/client-node';
import type { ContainerRecord } from '../../src/api/types.js';
import { KubeStatusSink, type ReportApi } from '../../src/companion/kube-sink.js';
import { parseReport, reportConfigMap, reportName } from '../../src/kube/reports.js';
import { silentLog } from './fakes.js';

const NS = 'kernelchaos-system';
const rec = (id: string, faults = 0, phase: ContainerRecord['phase'] = 'Injected'): ContainerRecord => ({
  id, selectorKey: '.', phase, injectedCount: 1, recoveredCount: 0, faultsInjected: faults,
});

class FakeApi implements ReportApi {
  readonly objects = new Map<string, V1ConfigMap>();
  readonly calls: string[] = [];
  events: CoreV1Event[] = [];
  /** Fail this many writes with 503 first. */
  failures = 0;
  async listReports(_ns: string, labelSelector: string): Promise<V1ConfigMap[]> {
    this.calls.push(`list ${labelSelector}`);
    return [...this.objects.values()];
  }
  async createReport(_ns: string, body: V1ConfigMap): Promise<void> {
    this.calls.push('create');
    this.fail();
    const name = body.metadata?.name ?? '';
    if (this.objects.has(name)) throw Object.assign(new Error('exists'), { code: 409 });
    this.objects.set(name, body);
  }
  async replaceReport(_ns: string, name: string, body: V1ConfigMap): Promise<void> {
    this.calls.push('replace');
    this.fail();
    if (!this.objects.has(name)) throw Object.assign(new Error('not found'), { code: 404 });
    this.objects.set(name, body);
  }
  async createEvent(_ns: string, e: CoreV1Event): Promise<void> {
    this.events.push(e);
  }
  private fail(): void {
    if (this.failures > 0) {
      this.failures -= 1;
      throw Object.assign(new Error('unavailable'), { code: 503 });
    }
  }
}

const EXP = { namespace: 'chaos', name: 'exp', uid: 'uid-exp' };

describe('KubeStatusSink (node reports)', () => {
  it('writes this node\'s records into its own report object: create once, then one PUT per change; never the KernelChaos', async () => {
    const api = new FakeApi();
    const sink = new KubeStatusSink({ api, node: 'node-a', namespace: NS, log: silentLog });
    sink.records(EXP, [rec('app/web/app', 2)]);
    await sink.flush();
    sink.records(EXP, [rec('app/web/app', 5)]);
    await sink.flush();
    expect(api.calls).toEqual(['create', 'replace']);
    const stored = api.objects.get(reportName('uid-exp', 'node-a'));
    expect(stored?.metadata?.namespace).toBe(NS);
    expect(parseReport(stored as V1ConfigMap)).toEqual({ node: 'node-a', experiment: EXP, faultsInjected: 5, records: [rec('app/web/app', 5)] });
  });

  it('keeps the latest records through failures and retries them with backoff', async () => {
    const api = new FakeApi();
    api.failures = 2;
    const sink = new KubeStatusSink({ api, node: 'node-a', namespace: NS, log: silentLog, retryDelayMs: 5 });
    sink.records(EXP, [rec('app/web/app', 1)]);
    await sink.flush();
    sink.records(EXP, [rec('app/web/app', 3)]);
    for (let i = 0; i < 100 && api.objects.size === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await sink.flush();
    const stored = parseReport(api.objects.get(reportName('uid-exp', 'node-a')) as V1ConfigMap);
    expect(stored?.faultsInjected).toBe(3);
    expect(api.calls.filter((c) => c === 'create').length).toBe(3);
  });

  it('after a restart, reads this node\'s earlier reports as seeds and updates them in place', async () => {
    const api = new FakeApi();
    const earlier = reportConfigMap(NS, { node: 'node-a', experiment: EXP, faultsInjected: 9, records: [rec('app/web/app', 9)] });
    const otherNode = reportConfigMap(NS, { node: 'node-b', experiment: EXP, faultsInjected: 4, records: [rec('app/db/app', 4)] });
    api.objects.set(earlier.metadata?.name ?? '', earlier);
    api.objects.set(otherNode.metadata?.name ?? '', otherNode);
    const sink = new KubeStatusSink({ api, node: 'node-a', namespace: NS, log: silentLog });
    const seeds = await sink.loadSeeds();
    expect([...seeds.keys()]).toEqual(['uid-exp']);
    expect(seeds.get('uid-exp')?.[0]?.faultsInjected).toBe(9);
    sink.records(EXP, [rec('app/web/app', 10)]);
    await sink.flush();
    expect(api.calls.slice(1)).toEqual(['replace']);
  });

  it('does not report for an experiment without a uid', async () => {
    const api = new FakeApi();
    const sink = new KubeStatusSink({ api, node: 'node-a', namespace: NS, log: silentLog });
    sink.records({ namespace: 'chaos', name: 'exp', uid: 'chaos/exp' }, [rec('app/web/app')]);
    await sink.flush();
    expect(api.calls).toEqual([]);
  });

  it('creates Events on the pod and the experiment', async () => {
    const api = new FakeApi();
    const sink = new KubeStatusSink({ api, node: 'node-a', namespace: NS, log: silentLog });
    sink.event({ involved: { kind: 'Pod', namespace: 'app', name: 'web' }, type: 'Normal', reason: 'FaultInjected', message: 'chaos/exp: attached' });
    sink.event({ involved: { kind: 'KernelChaos', namespace: 'chaos', name: 'exp', uid: 'uid-exp' }, type: 'Warning', reason: 'FaultFailed', message: 'no cgroup' });
    await sink.flush();
    expect(api.events.map((e) => [e.involvedObject.kind, e.involvedObject.apiVersion, e.reason, e.type, e.metadata.namespace])).toEqual([
      ['Pod', 'v1', 'FaultInjected', 'Normal', 'app'],
      ['KernelChaos', 'chaos-mesh.org/v1alpha1', 'FaultFailed', 'Warning', 'chaos'],
    ]);
    expect(api.events[1]?.involvedObject.uid).toBe('uid-exp');
    expect(api.events[0]?.source).toEqual({ component: 'kernelchaos-companion', host: 'node-a' });
  });
});
