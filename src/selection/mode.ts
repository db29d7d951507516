// How many of the matching pods an experiment targets (Chaos Mesh's FilterObjectsByMode), with
// deterministic instead of crypto-random choices: pods are ranked by a hash of (seed, namespace/name)
// where the seed is the experiment's UID. A restarted controller, a second replica, the webhook and
// the companion all compute the same set, and adding or removing a pod never reorders the others
// (rendezvous hashing): a fixed-size choice changes by at most the pod that entered or left.
import { createHash } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import type { KernelChaos, SelectorMode } from '../api/types.js';
import { podKey } from './match.js';

/** The number (fixed) or percent (fixed-percent, random-max-percent) a mode needs, or why it is unusable. */
export type ModeCount =
  | { ok: true; kind: 'one' | 'all' }
  | { ok: true; kind: 'fixed'; count: number }
  | { ok: true; kind: 'fixed-percent' | 'random-max-percent'; percent: number }
  | { ok: false; message: string };

function parseInteger(value: string | number | undefined): number | null {
  if (typeof value === 'number') return Number.isInteger(value) ? value : null;
  if (value === undefined) return null;
  // Go's strconv.Atoi: optional sign, decimal digits only.
  return /^[+-]?\d+$/.test(value.trim()) ? Number(value.trim()) : null;
}

/** Interprets `spec.value` for `mode` with Chaos Mesh's rules (value must be a positive integer; percents in 1..100). */
export function parseModeValue(mode: SelectorMode, value: string | number | undefined): ModeCount {
  if (mode === 'one' || mode === 'all') return { ok: true, kind: mode };
  const n = parseInteger(value);
  if (n === null) {
    return { ok: false, message: `spec.value must be an integer for mode ${mode}, got ${value === undefined ? 'nothing' : JSON.stringify(value)}` };
  }
  if (mode === 'fixed') {
    if (n <= 0) return { ok: false, message: `spec.value must be at least 1 for mode fixed, got ${n}` };
    return { ok: true, kind: 'fixed', count: n };
  }
  if (n <= 0 || n > 100) return { ok: false, message: `spec.value must be a percent in 1..100 for mode ${mode}, got ${n}` };
  return { ok: true, kind: mode, percent: n };
}

/** 64 bits of sha256(seed NUL key) as a bigint: the rank of `key` under `seed`. */
export function rankOf(seed: string, key: string): bigint {
  return createHash('sha256').update(seed).update('\0').update(key).digest().readBigUInt64BE(0);
}

// Ranks memoised per (seed, pod key): a pod's rank depends on nothing else, so a label change (a new
// object) keeps it, and a reconcile over 100k pods does not re-hash them. Bounded: past the limit the
// memo starts over (at worst the next reconcile re-hashes).
const MAX_MEMO_RANKS = 1_000_000;
const ranks = new Map<string, Map<string, bigint>>();
let memoRanks = 0;

function podRank(key: string, seed: string): bigint {
  let bySeed = ranks.get(seed);
  if (!bySeed) ranks.set(seed, (bySeed = new Map()));
  let rank = bySeed.get(key);
  if (rank === undefined) {
    if (memoRanks >= MAX_MEMO_RANKS) {
      ranks.clear();
      memoRanks = 0;
      ranks.set(seed, (bySeed = new Map()));
    }
    rank = rankOf(seed, key);
    bySeed.set(key, rank);
    memoRanks++;
  }
  return rank;
}

interface Ranked {
  pod: V1Pod;
  key: string;
  rank: bigint;
}

function byRank(a: Ranked, b: Ranked): number {
  return a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function ranked(candidates: readonly V1Pod[], seed: string): Ranked[] {
  return candidates.map((pod) => {
    const key = podKey(pod);
    return { pod, key, rank: podRank(key, seed) };
  });
}

/** Pods ordered by rank under `seed` (ties, practically impossible, broken by namespace/name). */
export function rankPods(candidates: readonly V1Pod[], seed: string): V1Pod[] {
  return ranked(candidates, seed).sort(byRank).map((k) => k.pod);
}

/** The first `n` of rankPods(candidates, seed), without sorting them all when n is small. */
export function lowestRanked(candidates: readonly V1Pod[], seed: string, n: number): V1Pod[] {
  if (n <= 0) return [];
  const all = ranked(candidates, seed);
  if (n * 8 >= all.length) return all.sort(byRank).slice(0, n).map((k) => k.pod);
  // Keep the n lowest in order: each candidate costs one comparison unless it enters the set.
  const best: Ranked[] = [];
  for (const r of all) {
    if (best.length === n && byRank(r, best[n - 1] as Ranked) >= 0) continue;
    let i = best.length === n ? n - 1 : best.length;
    if (best.length === n) best.pop();
    while (i > 0 && byRank(r, best[i - 1] as Ranked) < 0) i--;
    best.splice(i, 0, r);
  }
  return best.map((k) => k.pod);
}

/**
 * random-max-percent: Chaos Mesh draws a percent uniformly from 0..max per selection; here it is
 * drawn once per experiment from the seed, so every replica and every restart agrees.
 */
export function seededPercent(seed: string, maxPercent: number): number {
  return Number(rankOf(seed, 'random-max-percent') % BigInt(maxPercent + 1));
}

/** How many of `total` candidates the mode takes (floor for percents, as Chaos Mesh). */
export function targetCount(count: ModeCount & { ok: true }, total: number, seed: string): number {
  switch (count.kind) {
    case 'one':
      return Math.min(1, total);
    case 'all':
      return total;
    case 'fixed':
      return Math.min(count.count, total);
    case 'fixed-percent':
      return Math.floor((total * count.percent) / 100);
    case 'random-max-percent':
      return Math.floor((total * seededPercent(seed, count.percent)) / 100);
  }
}

export type ModeChoice = { ok: true; pods: V1Pod[] } | { ok: false; message: string };

/** The chosen pods sorted by namespace/name, or why `value` is unusable. */
export function chooseByModeChecked(
  mode: SelectorMode,
  value: string | number | undefined,
  candidates: readonly V1Pod[],
  seed: string,
): ModeChoice {
  const count = parseModeValue(mode, value);
  if (!count.ok) return count;
  const n = targetCount(count, candidates.length, seed);
  const chosen = n >= candidates.length ? [...candidates] : lowestRanked(candidates, seed, n);
  chosen.sort((a, b) => (podKey(a) < podKey(b) ? -1 : podKey(a) > podKey(b) ? 1 : 0));
  return { ok: true, pods: chosen };
}

/** As chooseByModeChecked; an unusable value chooses nothing (validation reports it at apply time). */
export function chooseByMode(
  mode: SelectorMode,
  value: string | number | undefined,
  candidates: readonly V1Pod[],
  seed: string,
): V1Pod[] {
  const choice = chooseByModeChecked(mode, value, candidates, seed);
  return choice.ok ? choice.pods : [];
}

/** The seed for an experiment's random choices: its UID, or namespace/name when it has none (manifest files). */
export function experimentSeed(chaos: KernelChaos): string {
  return chaos.metadata.uid ?? `${chaos.metadata.namespace ?? 'default'}/${chaos.metadata.name ?? ''}`;
}
