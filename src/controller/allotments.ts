// The controller's half of per-node `times` budgets, pure: from the experiments' target nodes, the
// node reports and the allotments already written to the allotments objects to write. The rule
// itself is src/api/budget.ts (allotBudgets), which the companion's side shares.
import { allotBudgets, type AllotmentEntry, type NodeBudgetState } from '../api/budget.js';
import { allotmentsName, parseAllotments, type NodeAllotments, type NodeReport } from '../kube/reports.js';
import type { V1ConfigMap } from '@kubernetes/client-node';

export interface ExperimentBudget {
  uid: string;
  /** spec.failKernRequest.times (0 = no limit: no allotments). */
  times: number;
  /** Nodes holding the experiment's targets now (empty when it is not active). */
  targetNodes: ReadonlySet<string>;
  reports: readonly NodeReport[];
}

export interface WrittenAllotments {
  name: string;
  allotments: NodeAllotments;
}

export type AllotmentAction =
  | { type: 'putAllotments'; namespace: string; name: string; allotments: NodeAllotments }
  | { type: 'deleteAllotments'; namespace: string; name: string };

/** The allotments objects among the controller's ConfigMaps, by node. */
export function writtenAllotments(configMaps: readonly V1ConfigMap[]): Map<string, WrittenAllotments> {
  const out = new Map<string, WrittenAllotments>();
  for (const cm of configMaps) {
    const a = parseAllotments(cm);
    if (a && cm.metadata?.name === allotmentsName(a.node)) out.set(a.node, { name: cm.metadata.name, allotments: a });
  }
  return out;
}

/**
 * Every node's allotments after this pass. Entries stay while their experiment lives (a node
 * without its entry would fall back to the even share); experiments gone or without `times` lose them.
 * `knownNodes`: the cluster's nodes, so that a node that is gone and never reported counts as detached.
 */
export function allotmentActions(
  experiments: readonly ExperimentBudget[],
  written: ReadonlyMap<string, WrittenAllotments>,
  knownNodes: ReadonlySet<string>,
  namespace: string,
): AllotmentAction[] {
  const next = new Map<string, Record<string, AllotmentEntry>>();
  const limited = new Set(experiments.filter((e) => e.times > 0).map((e) => e.uid));
  for (const [node, w] of written) {
    const kept: Record<string, AllotmentEntry> = {};
    for (const [uid, entry] of Object.entries(w.allotments.allotments)) if (limited.has(uid)) kept[uid] = entry;
    next.set(node, kept);
  }
  const writtenFor = new Map<string, string[]>();
  for (const [node, w] of written) {
    for (const uid of Object.keys(w.allotments.allotments)) {
      const nodes = writtenFor.get(uid);
      if (nodes) nodes.push(node);
      else writtenFor.set(uid, [node]);
    }
  }
  for (const e of experiments) {
    if (e.times <= 0) continue;
    const reports = new Map(e.reports.map((r) => [r.node, r]));
    const nodes = new Set([...e.targetNodes, ...reports.keys(), ...(writtenFor.get(e.uid) ?? [])]);
    const states = new Map<string, NodeBudgetState>();
    for (const node of nodes) {
      const report = reports.get(node);
      states.set(node, {
        entry: written.get(node)?.allotments.allotments[e.uid],
        acknowledged: report?.budget,
        used: report?.faultsInjected ?? 0,
        hasTargets: e.targetNodes.has(node),
        detached: report ? !report.records.some((r) => r.phase === 'Injected') : !knownNodes.has(node),
      });
    }
    for (const [node, entry] of allotBudgets(e.times, states)) {
      let entries = next.get(node);
      if (!entries) next.set(node, (entries = {}));
      entries[e.uid] = entry;
    }
  }
  const actions: AllotmentAction[] = [];
  for (const node of [...next.keys()].sort()) {
    const allotments = next.get(node) ?? {};
    const before = written.get(node);
    if (Object.keys(allotments).length === 0) {
      if (before) actions.push({ type: 'deleteAllotments', namespace, name: before.name });
      continue;
    }
    if (before && sameEntries(before.allotments.allotments, allotments)) continue;
    actions.push({ type: 'putAllotments', namespace, name: allotmentsName(node), allotments: { node, allotments } });
  }
  return actions;
}

function sameEntries(a: Readonly<Record<string, AllotmentEntry>>, b: Readonly<Record<string, AllotmentEntry>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k]?.version === b[k]?.version && a[k]?.allotment === b[k]?.allotment);
}
