import { describe, expect, it } from 'vitest';
import {
  allotBudgets,
  claimsStart,
  companionBudget,
  describeBudget,
  nodeCharge,
  nodeShare,
  recordedFaultsByNode,
  type AcknowledgedBudget,
  type AllotmentEntry,
  type NodeBudgetState,
} from '../../src/api/budget.js';

const rec = (node: string, faultsInjected: number) => ({ node, faultsInjected });

describe('times for the whole experiment', () => {
  it('one node resumes where its records stop (companion restart): 3 - 2 used leaves 1', () => {
    expect(claimsStart({ times: 3, node: 'a', usedHere: 0, records: [rec('a', 2), rec('a', 2)], nodes: ['a'] })).toBe(2);
    // the process's own count wins when it is ahead of the records
    expect(claimsStart({ times: 3, node: 'a', usedHere: 3, records: [rec('a', 2)], nodes: ['a'] })).toBe(3);
    expect(claimsStart({ times: 3, node: 'a', usedHere: 0, records: [], nodes: [] })).toBe(0);
  });

  it('no limit stays no limit', () => {
    expect(claimsStart({ times: 0, node: 'a', usedHere: 7, records: [rec('b', 5)], nodes: ['a', 'b'] })).toBe(0);
  });

  it('nodes that inject at once split times exactly, the remainder to the first names', () => {
    const nodes = ['c', 'a', 'b'];
    expect(nodes.map((n) => nodeShare(10, n, nodes))).toEqual([3, 4, 3]);
    const remaining = nodes.map((node) => 10 - claimsStart({ times: 10, node, usedHere: 0, records: [], nodes }));
    expect(remaining.reduce((x, y) => x + y, 0)).toBe(10);
    // fewer faults than nodes: some nodes get none
    expect(['a', 'b', 'c'].map((n) => nodeShare(2, n, nodes))).toEqual([1, 1, 0]);
  });

  it('pods that moved to another node take only what the first node left', () => {
    expect(claimsStart({ times: 3, node: 'b', usedHere: 0, records: [rec('a', 2)], nodes: ['b'] })).toBe(2);
    expect(claimsStart({ times: 3, node: 'b', usedHere: 0, records: [rec('a', 5)], nodes: ['b'] })).toBe(3);
  });

  it('a node count is the largest of its records; records without a node are ignored', () => {
    expect(recordedFaultsByNode([rec('a', 1), rec('a', 4), { faultsInjected: 9 }, rec('b', 2)])).toEqual(new Map([['a', 4], ['b', 2]]));
  });
});

describe('per-node allotments from the controller', () => {
  const state = (s: Partial<NodeBudgetState>): NodeBudgetState => ({ entry: undefined, acknowledged: undefined, used: 0, hasTargets: true, detached: false, ...s });
  const entry = (allotment: number, version = 1, ceiling = allotment): AllotmentEntry => ({ allotment, version, ceiling });
  const values = (m: Map<string, AllotmentEntry>) => new Map([...m].map(([n, e]) => [n, e.allotment]));

  it('nodes with targets split times evenly, each gets an allotment (0 included), and the companion arms under it', () => {
    const out = allotBudgets(3, new Map([['c', state({})], ['a', state({})], ['b', state({})], ['d', state({})]]));
    expect(values(out)).toEqual(new Map([['a', 1], ['b', 1], ['c', 1], ['d', 0]]));
    expect(out.get('a')).toEqual({ allotment: 1, version: 1, ceiling: 1 });
    expect(companionBudget({ times: 3, node: 'a', usedHere: 0, records: [], nodes: [], allotment: 1 })).toEqual({ source: { kind: 'allotment', allotment: 1 }, claimed: 2 });
    // Restarted after using its allotment: nothing left.
    expect(companionBudget({ times: 3, node: 'a', usedHere: 0, records: [rec('a', 1)], nodes: ['a'], allotment: 1 }).claimed).toBe(3);
  });

  it('without an allotment the companion takes the even share and says so', () => {
    const b = companionBudget({ times: 10, node: 'a', usedHere: 0, records: [], nodes: ['a', 'b', 'c'], allotment: undefined });
    expect(b).toEqual({ source: { kind: 'even-share', allotment: 4 }, claimed: 6 });
    expect(describeBudget(10, b.source)).toMatch(/even share .*no allotment from the controller yet/);
    expect(describeBudget(10, { kind: 'allotment', allotment: 4 })).toMatch(/allotted by the controller/);
  });

  it('a node that left returns what it did not use once detached, and the pool goes to the nodes with targets once it echoes that write', () => {
    const a = state({ entry: entry(2), acknowledged: { allotment: 2, version: 1 }, used: 1, hasTargets: false, detached: true });
    const b = state({ entry: entry(2), acknowledged: { allotment: 2, version: 1 } });
    const first = allotBudgets(4, new Map([['a', a], ['b', b]]));
    // a drops to what it used; b cannot grow yet: a's companion may still obey 2 (the ceiling).
    expect(first).toEqual(new Map([['a', { allotment: 1, version: 2, ceiling: 2 }]]));
    expect(nodeCharge({ ...a, entry: first.get('a') })).toBe(2);
    const echoed = { ...a, entry: first.get('a'), acknowledged: { allotment: 1, version: 2 } };
    expect(nodeCharge(echoed)).toBe(1);
    expect(values(allotBudgets(4, new Map([['a', echoed], ['b', b]])))).toEqual(new Map([['b', 3]]));
    // Still attached (its report shows a fault injected): nothing is returned.
    expect(allotBudgets(4, new Map([['a', { ...a, detached: false }], ['b', b]]))).toEqual(new Map());
    // A budget a node took on its own (even share) counts until it obeys the controller's.
    expect(nodeCharge(state({ entry: entry(1), acknowledged: { allotment: 3 } }))).toBe(3);
  });

  // A random world: nodes gain and lose targets, companions see allotments and targets late, inject,
  // and report late; the controller reallots from what it has seen. The companion's side follows
  // lifecycle.ts: it arms under the entry it sees, re-arms when the allotment changes, disarms
  // without targets, and reports the entry's version only when its program obeys that entry.
  function mulberry32(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('over random arrivals, departures, usage and late views, allotments never sum above times, only grow while a node holds targets, and faults never exceed times', () => {
    let returned = 0;
    for (let run = 0; run < 400; run++) {
      const random = mulberry32(run + 1);
      const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
      const times = 1 + Math.floor(random() * 12);
      const names = Array.from({ length: 2 + Math.floor(random() * 5) }, (_, i) => `node-${i}`);
      interface Companion {
        seen: AllotmentEntry | undefined;
        seenTargets: boolean;
        /** The allotment the armed program obeys. */
        armed: number | undefined;
        used: number;
      }
      const hasTargets = new Map(names.map((n) => [n, random() < 0.5]));
      const written = new Map<string, AllotmentEntry>();
      const companions = new Map<string, Companion>(names.map((n) => [n, { seen: undefined, seenTargets: false, armed: undefined, used: 0 }]));
      const reports = new Map<string, { used: number; acknowledged: AcknowledgedBudget | undefined; detached: boolean }>();
      for (let step = 0; step < 300; step++) {
        const node = pick(names);
        const c = companions.get(node) as Companion;
        switch (pick(['targets', 'seeAllotment', 'seeTargets', 'inject', 'inject', 'report', 'controller', 'controller'] as const)) {
          case 'targets':
            hasTargets.set(node, !hasTargets.get(node));
            break;
          case 'seeAllotment':
            c.seen = written.get(node);
            break;
          case 'seeTargets':
            c.seenTargets = hasTargets.get(node) ?? false;
            break;
          case 'inject':
            if (c.armed !== undefined && c.used < c.armed) c.used++;
            break;
          case 'report': {
            const acknowledged = c.armed !== undefined && c.armed !== c.seen?.allotment ? { allotment: c.armed } : c.seen ? { allotment: c.seen.allotment, version: c.seen.version } : undefined;
            reports.set(node, { used: c.used, acknowledged, detached: c.armed === undefined });
            break;
          }
          case 'controller': {
            const states = new Map<string, NodeBudgetState>();
            for (const n of names) {
              const r = reports.get(n);
              states.set(n, { entry: written.get(n), acknowledged: r?.acknowledged, used: r?.used ?? 0, hasTargets: hasTargets.get(n) ?? false, detached: r?.detached ?? false });
            }
            for (const [n, e] of allotBudgets(times, states)) {
              const s = states.get(n) as NodeBudgetState;
              if (s.hasTargets) expect(e.allotment).toBeGreaterThanOrEqual(s.entry?.allotment ?? 0);
              else {
                expect(e.allotment).toBe(s.used);
                returned++;
              }
              expect(e.version).toBe((s.entry?.version ?? 0) + 1);
              written.set(n, e);
            }
            const charges = names.map((n) => nodeCharge({ ...(states.get(n) as NodeBudgetState), entry: written.get(n) }));
            expect(charges.reduce((x, y) => x + y, 0)).toBeLessThanOrEqual(times);
            break;
          }
        }
        if (!c.seenTargets) c.armed = undefined;
        else if (c.seen !== undefined) c.armed = c.seen.allotment;
        expect([...written.values()].reduce((x, y) => x + y.allotment, 0)).toBeLessThanOrEqual(times);
        expect([...companions.values()].reduce((x, y) => x + y.used, 0)).toBeLessThanOrEqual(times);
      }
    }
    // The sequences did exercise returns.
    expect(returned).toBeGreaterThan(100);
  });
});
