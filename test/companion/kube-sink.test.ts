import { describe, expect, it } from 'vitest';
import type { CoreV1Event } from '@kubernetes/client-node';
import type { ContainerRecord, KernelChaos } from '../../src/api/types.js';
import { KubeStatusSink, mergeRecords, type StatusApi } from '../../src/companion/kube-sink.js';
import { chaosObject, silentLog } from './fakes.js';

const rec = (id: string, node: string | undefined, phase: ContainerRecord['phase'] = 'Injected'): ContainerRecord => ({
  id, selectorKey: '.', phase, injectedCount: 1, recoveredCount: 0, ...(node ? { node } : {}),
});

class FakeApi implements StatusApi {
  conflicts = 0;
  writes: KernelChaos[] = [];
  events: CoreV1Event[] = [];
  constructor(public object: KernelChaos | undefined) {}
  async getKernelChaos(): Promise<KernelChaos> {
    if (!this.object) throw Object.assign(new Error('not found'), { code: 404 });
    return structuredClone(this.object);
  }
  async replaceKernelChaosStatus(_ns: string, _name: string, body: KernelChaos): Promise<void> {
    if (this.conflicts > 0) {
      this.conflicts -= 1;
      // Another node wrote meanwhile: its record must survive our retry.
      const other = this.object?.status?.experiment?.containerRecords ?? [];
      const current = this.object as KernelChaos;
      this.object = { ...current, status: { ...current.status, experiment: { containerRecords: [...other, rec('app/db/pg', 'node-b')] } } };
      throw Object.assign(new Error('conflict'), { code: 409 });
    }
    this.writes.push(body);
    this.object = body;
  }
  async createEvent(_ns: string, e: CoreV1Event): Promise<void> {
    this.events.push(e);
  }
}

describe('mergeRecords', () => {
  it('replaces only this node\'s records', () => {
    const merged = mergeRecords([rec('a/p/c', 'node-a', 'Failed'), rec('a/q/c', 'node-b'), rec('a/gone/c', 'node-a')], [rec('a/p/c', 'node-a')], 'node-a');
    expect(merged.map((r) => `${r.id}@${r.node}:${r.phase}`)).toEqual(['a/p/c@node-a:Injected', 'a/q/c@node-b:Injected']);
  });
});

describe('KubeStatusSink', () => {
  it('merges into status.experiment.containerRecords, re-reading on a 409 conflict', async () => {
    const chaos = chaosObject('exp');
    chaos.status = { conditions: [{ type: 'Selected', status: 'True' }], experiment: { containerRecords: [rec('app/x/c', 'node-c')] } };
    const api = new FakeApi(chaos);
    api.conflicts = 1;
    const sink = new KubeStatusSink({ api, node: 'node-a', log: silentLog });
    sink.records({ namespace: 'chaos', name: 'exp', uid: 'uid-exp' }, [rec('app/web/app', 'node-a')]);
    await sink.flush();
    expect(api.writes).toHaveLength(1);
    const written = api.writes[0]?.status;
    expect(written?.conditions).toEqual([{ type: 'Selected', status: 'True' }]);
    expect(written?.experiment?.containerRecords?.map((r) => `${r.id}@${r.node}`)).toEqual(['app/db/pg@node-b', 'app/web/app@node-a', 'app/x/c@node-c']);
  });

  it('does nothing for a deleted experiment, or a new one that reuses the name', async () => {
    const gone = new FakeApi(undefined);
    const s1 = new KubeStatusSink({ api: gone, node: 'node-a', log: silentLog });
    s1.records({ namespace: 'chaos', name: 'exp', uid: 'uid-exp' }, [rec('app/web/app', 'node-a')]);
    await s1.flush();
    expect(gone.writes).toHaveLength(0);
    const reused = new FakeApi(chaosObject('exp', { uid: 'uid-new' }));
    const s2 = new KubeStatusSink({ api: reused, node: 'node-a', log: silentLog });
    s2.records({ namespace: 'chaos', name: 'exp', uid: 'uid-old' }, [rec('app/web/app', 'node-a')]);
    await s2.flush();
    expect(reused.writes).toHaveLength(0);
  });

  it('creates Events on the pod and the experiment', async () => {
    const api = new FakeApi(chaosObject('exp'));
    const sink = new KubeStatusSink({ api, node: 'node-a', log: silentLog });
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
