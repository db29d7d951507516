// `times` is the most faults of one KernelChaos in total: over every program armed for it, on every
// node, across re-arms and companion restarts. Pure; the companion applies it when it arms and the
// README states it. A program's `times` counter starts at claimsStart(): it injects only while
// the counter is below `times`, so it may add at most `times - claimsStart()` faults.

/** What a status record says about faults (Chaos Mesh containerRecords plus our counts). */
export interface RecordedFaults {
  node?: string | undefined;
  faultsInjected?: number | undefined;
}

/**
 * Faults recorded per node. A node's companion writes its experiment total on each of its
 * container records (one program serves them all), so a node's count is the largest of them.
 */
export function recordedFaultsByNode(records: readonly RecordedFaults[]): Map<string, number> {
  const byNode = new Map<string, number>();
  for (const r of records) {
    if (r.node === undefined) continue;
    const n = Math.max(0, Math.floor(r.faultsInjected ?? 0));
    byNode.set(r.node, Math.max(byNode.get(r.node) ?? 0, n));
  }
  return byNode;
}

/** Node `node`'s fixed share of `times` among `nodes`: an even split, the remainder to the first names. */
export function nodeShare(times: number, node: string, nodes: readonly string[]): number {
  const sorted = [...new Set([...nodes, node])].sort();
  const rank = sorted.indexOf(node);
  return Math.floor(times / sorted.length) + (rank < times % sorted.length ? 1 : 0);
}

export interface ClaimsInput {
  /** spec.failKernRequest.times; 0 = no limit. */
  times: number;
  node: string;
  /** Faults this node's earlier programs of the experiment injected (this process, or its records after a restart). */
  usedHere: number;
  /** The experiment's status records (every node's). */
  records: readonly RecordedFaults[];
  /** Nodes that hold target pods of the experiment now (this node included or not). */
  nodes: readonly string[];
}

/**
 * The rule: a node may inject its share of `times` (nodeShare over the nodes with target pods) and
 * never more than what the other nodes' records leave. So one node alone resumes where it stopped,
 * pods that move to another node take the remainder, and nodes that inject at once split `times`.
 */
export function claimsStart(input: ClaimsInput): number {
  const { times, node } = input;
  if (times <= 0) return 0;
  const byNode = recordedFaultsByNode(input.records);
  let others = 0;
  for (const [n, faults] of byNode) if (n !== node) others += faults;
  const usedHere = Math.max(input.usedHere, byNode.get(node) ?? 0);
  const budget = Math.min(nodeShare(times, node, input.nodes), times - others);
  const remaining = Math.max(0, budget - usedHere);
  return times - remaining;
}
