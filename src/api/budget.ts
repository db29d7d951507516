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

// Per-node allotments handed out by the controller. The controller knows which nodes hold target
// pods; it writes each node an allotment (the most faults that node may reach in total), and a
// companion arms with it, falling back to claimsStart()'s even share only while none is written.
//
// Every write of a node's entry gets the next version, and the companion's report echoes the
// version it obeys. A node's charge is the most it may ever inject: its allotment once it echoed the
// latest version, else the ceiling (the largest allotment written since the last version it echoed,
// which it may still obey), and never less than what it reported using. The charges never sum above
// `times`. Allotments only grow while a node holds targets; once its targets are gone and its report
// shows it detached, its allotment drops to what it used, and the rest returns to the pool when its
// companion echoes that write.

/** One node's entry for one experiment, as the controller writes it. */
export interface AllotmentEntry {
  allotment: number;
  version: number;
  ceiling: number;
}

/** What a node's report says its program obeys; `version` when it is the controller's entry. */
export interface AcknowledgedBudget {
  allotment: number;
  version?: number | undefined;
}

/** What the controller knows of one node for one experiment. */
export interface NodeBudgetState {
  entry: AllotmentEntry | undefined;
  acknowledged: AcknowledgedBudget | undefined;
  /** Faults the node reported. */
  used: number;
  /** Whether target pods of the experiment are on the node now. */
  hasTargets: boolean;
  /** Whether the node's report shows nothing attached (a node with no report is not known to be detached). */
  detached: boolean;
}

function echoes(s: Pick<NodeBudgetState, 'entry' | 'acknowledged'>): boolean {
  return s.entry !== undefined && s.acknowledged?.version === s.entry.version;
}

/** The most faults a node may ever have injected, as far as the controller can tell. */
export function nodeCharge(s: NodeBudgetState): number {
  const entry = s.entry ? (echoes(s) ? s.entry.allotment : s.entry.ceiling) : 0;
  // An echo without a version is a budget the node took on its own (the even share).
  const own = s.acknowledged && s.acknowledged.version === undefined ? s.acknowledged.allotment : 0;
  return Math.max(entry, own, s.used);
}

/** The entry that replaces `s.entry` with `allotment`. */
export function nextEntry(s: Pick<NodeBudgetState, 'entry' | 'acknowledged'>, allotment: number): AllotmentEntry {
  const previous = s.entry ? (echoes(s) ? s.entry.allotment : s.entry.ceiling) : 0;
  return { allotment, version: (s.entry?.version ?? 0) + 1, ceiling: Math.max(allotment, previous) };
}

/**
 * The entries to write (node -> entry) for one experiment: every node with targets gets one (an
 * allotment of 0 included, so it never falls back to the even share), nodes that left return what
 * they did not use, and nodes with targets grow towards an even split of what the other nodes'
 * charges leave, first names first, never beyond the pool. Nodes absent from the result keep theirs.
 */
export function allotBudgets(times: number, nodes: ReadonlyMap<string, NodeBudgetState>): Map<string, AllotmentEntry> {
  const out = new Map<string, AllotmentEntry>();
  if (times <= 0) return out;
  const after = new Map<string, NodeBudgetState>();
  for (const [node, s] of nodes) {
    if (!s.hasTargets && s.detached && s.entry !== undefined && s.entry.allotment > s.used) {
      const entry = nextEntry(s, s.used);
      out.set(node, entry);
      after.set(node, { ...s, entry });
    } else {
      after.set(node, s);
    }
  }
  let pool = times;
  for (const s of after.values()) pool -= nodeCharge(s);
  pool = Math.max(0, pool);
  const targets = [...after].filter(([, s]) => s.hasTargets).map(([n]) => n).sort();
  let othersCharge = 0;
  for (const s of after.values()) if (!s.hasTargets) othersCharge += nodeCharge(s);
  const open = Math.max(0, times - othersCharge);
  for (const [rank, node] of targets.entries()) {
    const s = after.get(node) as NodeBudgetState;
    const charge = nodeCharge(s);
    // nodeShare(open, node, targets), without sorting the targets again for every node.
    const share = Math.floor(open / targets.length) + (rank < open % targets.length ? 1 : 0);
    const grow = Math.min(Math.max(0, share - charge), pool);
    pool -= grow;
    // Only grants from the pool make an allotment grow (faults a node reported beyond it, or took on
    // its own, count in its charge, not in its allotment).
    const allotment = (s.entry?.allotment ?? 0) + grow;
    if (s.entry === undefined || allotment !== s.entry.allotment) out.set(node, nextEntry(s, allotment));
  }
  return out;
}

export type BudgetSource =
  | { kind: 'allotment'; allotment: number }
  /** No allotment from the controller yet: the even share of claimsStart(). */
  | { kind: 'even-share'; allotment: number };

/** Where a new program's counter starts under `source`, given what this node already injected. */
export function claimsStartFrom(times: number, source: BudgetSource, usedHere: number): number {
  if (times <= 0) return 0;
  return times - Math.max(0, Math.min(times, source.allotment) - usedHere);
}

/**
 * The companion's budget for a new program and where its counter starts: the controller's allotment
 * when one is written, else the even share (claimsStart).
 */
export function companionBudget(input: ClaimsInput & { allotment: number | undefined }): { source: BudgetSource; claimed: number } {
  const usedHere = Math.max(input.usedHere, recordedFaultsByNode(input.records).get(input.node) ?? 0);
  if (input.allotment !== undefined) {
    const source: BudgetSource = { kind: 'allotment', allotment: input.allotment };
    return { source, claimed: claimsStartFrom(input.times, source, usedHere) };
  }
  const claimed = claimsStart(input);
  return { source: { kind: 'even-share', allotment: usedHere + (input.times - claimed) }, claimed };
}

/** How records and logs say which budget a program obeys. */
export function describeBudget(times: number, source: BudgetSource): string {
  return source.kind === 'allotment'
    ? `times budget ${source.allotment} of ${times} (allotted by the controller)`
    : `times budget ${source.allotment} of ${times} (even share over the nodes with targets: no allotment from the controller yet)`;
}
