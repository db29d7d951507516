import { describe, expect, it } from 'vitest';
import { claimsStart, nodeShare, recordedFaultsByNode } from '../../src/api/budget.js';

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
