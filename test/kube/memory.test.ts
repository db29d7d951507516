// InMemoryStore: the cache every store builds on; events only for real changes.
import { describe, expect, it } from 'vitest';
import { InMemoryStore } from '../../src/kube/memory.js';
import type { StoreEvent } from '../../src/kube/store.js';

const pod = (name: string, labels: Record<string, string> = {}, namespace?: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels, ...(namespace ? { namespace } : {}) },
});

describe('InMemoryStore', () => {
  it('apply/delete emit ADDED, MODIFIED (only on a real change) and DELETED; namespaced kinds default to `default`', async () => {
    const store = new InMemoryStore();
    const events: string[] = [];
    const off = store.on((e: StoreEvent) => events.push(`${e.type} ${e.kind} ${e.object.metadata?.name}`));
    await store.start();
    expect(store.synced).toBe(true);
    store.apply(pod('a'));
    store.apply(pod('a'));
    store.apply(pod('a', { x: '1' }));
    store.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps' } });
    expect(store.get('Pod', 'default', 'a')?.metadata?.labels).toEqual({ x: '1' });
    expect(store.get('Pod', undefined, 'a')).toBeDefined();
    expect(store.list('Pod', 'default')).toHaveLength(1);
    expect(store.delete('Pod', 'default', 'a')).toBe(true);
    expect(store.delete('Pod', 'default', 'a')).toBe(false);
    off();
    store.apply(pod('b'));
    expect(events).toEqual(['ADDED Pod a', 'MODIFIED Pod a', 'ADDED Namespace apps', 'DELETED Pod a']);
  });

  it('replace() diffs against the given kinds only and lists in a stable order', () => {
    const store = new InMemoryStore();
    store.apply(pod('b', {}, 'ns1'));
    store.apply(pod('a', {}, 'ns2'));
    store.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });
    const events: string[] = [];
    store.on((e) => events.push(`${e.type} ${e.object.metadata?.name}`));
    store.replace([{ kind: 'Pod', object: pod('a', { y: '2' }, 'ns2') }, { kind: 'Pod', object: pod('c', {}, 'ns1') }], ['Pod']);
    expect(events).toEqual(['DELETED b', 'MODIFIED a', 'ADDED c']);
    expect(store.list('Pod').map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).toEqual(['ns1/c', 'ns2/a']);
    expect(store.list('Node')).toHaveLength(1);
  });

  it('refuses objects it cannot key, naming the problem', () => {
    const store = new InMemoryStore();
    expect(() => store.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' } } as never)).toThrow(/unsupported kind "Deployment"/);
    expect(() => store.put('Pod', { metadata: {} })).toThrow(/Pod without metadata.name/);
  });
});
