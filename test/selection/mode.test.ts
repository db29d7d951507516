// mode/value with Chaos Mesh's counts, and seeded choices that are the same on every replica and
// restart and that do not reshuffle when pods come and go.
import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import type { SelectorMode } from '../../src/api/types.js';
import {
  chooseByMode,
  chooseByModeChecked,
  experimentSeed,
  parseModeValue,
  lowestRanked,
  rankPods,
  seededPercent,
} from '../../src/selection/index.js';
import { chaos, names, pods } from './fixtures.js';

const SIZES = [0, 1, 7, 100] as const;
const SEED = '6f1c2d7e-1b2a-4c3d-9e8f-0a1b2c3d4e5f';

function shuffled<T>(list: readonly T[], salt: number): T[] {
  // A fixed permutation (not Math.random) so the test is reproducible.
  return list.map((v, i) => ({ v, k: (i * 7919 + salt * 104729) % 1000003 })).sort((a, b) => a.k - b.k).map((x) => x.v);
}

const expectedCounts: Array<{ mode: SelectorMode; value?: string | number; count: (n: number) => number }> = [
  { mode: 'one', count: (n) => Math.min(1, n) },
  { mode: 'all', count: (n) => n },
  { mode: 'fixed', value: '3', count: (n) => Math.min(3, n) },
  { mode: 'fixed', value: 200, count: (n) => n },
  { mode: 'fixed-percent', value: '50', count: (n) => Math.floor(n / 2) },
  { mode: 'fixed-percent', value: 30, count: (n) => Math.floor((n * 30) / 100) },
  { mode: 'fixed-percent', value: '100', count: (n) => n },
];

describe('mode counts over 0, 1, 7, 100 pods', () => {
  for (const { mode, value, count } of expectedCounts) {
    for (const n of SIZES) {
      it(`${mode} ${value ?? ''} of ${n} pods takes ${count(n)}`, () => {
        const candidates = pods(n);
        const chosen = chooseByMode(mode, value, candidates, SEED);
        expect(chosen).toHaveLength(count(n));
        const keys = names(chosen);
        expect(new Set(keys).size).toBe(keys.length);
        expect(keys.every((k) => names(candidates).includes(k))).toBe(true);
        expect(keys).toEqual([...keys].sort());
      });
    }
  }

  for (const n of SIZES) {
    it(`random-max-percent 40 of ${n} pods takes floor(n * p / 100) for a seeded p in 0..40`, () => {
      const p = seededPercent(SEED, 40);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(40);
      expect(chooseByMode('random-max-percent', '40', pods(n), SEED)).toHaveLength(Math.floor((n * p) / 100));
    });
  }

  it('random-max-percent draws percents over the whole 0..max range across experiments', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) seen.add(seededPercent(`uid-${i}`, 10));
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('one picks different pods for different experiments (it is a random choice, not the first pod)', () => {
    const candidates = pods(100);
    const picks = new Set<string>();
    for (let i = 0; i < 30; i++) picks.add(names(chooseByMode('one', undefined, candidates, `uid-${i}`))[0] as string);
    expect(picks.size).toBeGreaterThan(15);
  });
});

describe('stability', () => {
  const modes: Array<[SelectorMode, string | undefined]> = [
    ['one', undefined],
    ['fixed', '3'],
    ['fixed-percent', '25'],
    ['random-max-percent', '60'],
  ];
  for (const [mode, value] of modes) {
    for (const n of SIZES) {
      it(`${mode}: a restart (same UID, pods listed in another order) chooses the same ${n === 0 ? 'nothing' : 'pods'} (${n})`, () => {
        const first = names(chooseByMode(mode, value, pods(n), SEED));
        for (let salt = 1; salt <= 3; salt++) {
          expect(names(chooseByMode(mode, value, shuffled(pods(n), salt), SEED))).toEqual(first);
        }
      });
    }
  }

  it('a small fixed choice picks exactly the lowest-ranked pods, as a full ranking would', () => {
    const all = pods(500);
    for (const n of [1, 2, 10, 37, 62, 63, 100, 499, 500]) {
      for (const order of [all, shuffled(all, n)]) {
        expect(names(lowestRanked(order, SEED, n))).toEqual(names(rankPods(all, SEED).slice(0, n)));
      }
    }
  });

  it('adding pods never reorders the existing ones: a fixed choice changes by at most the newcomer', () => {
    let current = pods(7);
    let chosen = names(chooseByMode('fixed', '3', current, SEED));
    for (let extra = 7; extra < 100; extra++) {
      const before = names(rankPods(current, SEED));
      const added = pods(extra + 1)[extra] as V1Pod;
      current = [...current, added];
      const after = names(rankPods(current, SEED)).filter((k) => k !== `apps/app-${extra}`);
      expect(after).toEqual(before);
      const next = names(chooseByMode('fixed', '3', current, SEED));
      const dropped = chosen.filter((k) => !next.includes(k));
      const gained = next.filter((k) => !chosen.includes(k));
      expect(dropped.length).toBeLessThanOrEqual(1);
      expect(gained.length === 0 || (gained.length === 1 && gained[0] === `apps/app-${extra}`)).toBe(true);
      chosen = next;
    }
  });

  it('removing a pod that was not chosen leaves the choice unchanged', () => {
    const all = pods(100);
    const chosen = names(chooseByMode('fixed', '5', all, SEED));
    const remaining = all.filter((p) => !chosen.includes(`apps/${p.metadata?.name}`)).slice(0, 40);
    const withoutSome = all.filter((p) => !remaining.includes(p));
    expect(names(chooseByMode('fixed', '5', withoutSome, SEED))).toEqual(chosen);
  });

  it('different experiments choose different pods', () => {
    const sets = new Set<string>();
    for (let i = 0; i < 20; i++) sets.add(names(chooseByMode('fixed', '3', pods(100), `uid-${i}`)).join(','));
    expect(sets.size).toBeGreaterThan(15);
  });
});

describe('value parsing (Chaos Mesh rules)', () => {
  it('accepts strings and integers alike', () => {
    expect(names(chooseByMode('fixed', '4', pods(7), SEED))).toEqual(names(chooseByMode('fixed', 4, pods(7), SEED)));
  });
  it.each([
    ['fixed', undefined, 'must be an integer for mode fixed, got nothing'],
    ['fixed', 'abc', 'must be an integer for mode fixed, got "abc"'],
    ['fixed', '0', 'at least 1'],
    ['fixed', -2, 'at least 1'],
    ['fixed-percent', '0', 'percent in 1..100'],
    ['fixed-percent', '101', 'percent in 1..100'],
    ['random-max-percent', '-1', 'percent in 1..100'],
    ['random-max-percent', '1.5', 'must be an integer'],
  ] as const)('%s with value %s is refused, naming spec.value', (mode, value, message) => {
    const parsed = parseModeValue(mode, value);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.message).toContain('spec.value');
      expect(parsed.message).toContain(message);
    }
    const choice = chooseByModeChecked(mode, value, pods(7), SEED);
    expect(choice.ok).toBe(false);
    expect(chooseByMode(mode, value, pods(7), SEED)).toEqual([]);
  });
  it('one and all ignore value', () => {
    expect(parseModeValue('one', 'junk')).toEqual({ ok: true, kind: 'one' });
    expect(chooseByMode('all', 'junk', pods(7), SEED)).toHaveLength(7);
  });
});

describe('experimentSeed', () => {
  it('is the UID when there is one, otherwise namespace/name', () => {
    expect(experimentSeed(chaos({}, { uid: 'abc' }))).toBe('abc');
    const c = chaos({}, { namespace: 'ns', name: 'n' });
    delete c.metadata.uid;
    expect(experimentSeed(c)).toBe('ns/n');
  });
});
