// `kernelchaos controller --manifests DIR --dry-run`: what the controller would do to the objects in
// a directory (which pods each experiment targets, which labels change), without a cluster.
import type { KernelChaos } from '../api/types.js';
import type { ClusterStore } from '../kube/store.js';
import { podKey } from '../selection/index.js';
import { describe } from './executor.js';
import { reconcile, type Action } from './reconcile.js';
import type { ExperimentPlan } from './status.js';

export interface PreviewExperiment {
  experiment: string;
  plan: ExperimentPlan['kind'];
  /** namespace/name of the targeted pods (active plans). */
  targets: string[];
  /** Why it targets nothing (denied, invalid, finished). */
  reason?: string;
}

export interface Preview {
  experiments: PreviewExperiment[];
  actions: string[];
}

function reasonOf(plan: ExperimentPlan): string | undefined {
  switch (plan.kind) {
    case 'denied':
      return plan.reasons.join('; ');
    case 'invalid':
      return plan.message;
    case 'finished':
      return plan.reason;
    case 'deleting':
      return 'being deleted';
    case 'active':
      return plan.targets.length === 0 ? 'no eligible pod matches' : undefined;
  }
}

export function preview(store: ClusterStore, webhookNamespace: string, now: Date): Preview {
  const experiments: readonly KernelChaos[] = store.list('KernelChaos');
  const result = reconcile({
    experiments,
    pods: store.list('Pod'),
    namespaces: store.list('Namespace'),
    nodes: store.list('Node'),
    policies: store.list('KernelChaosPolicy'),
    now,
    webhookNamespace,
  });
  const out: PreviewExperiment[] = [];
  for (const [ref, plan] of result.plans) {
    const reason = reasonOf(plan);
    out.push({ experiment: ref, plan: plan.kind, targets: plan.kind === 'active' ? plan.targets.map(podKey) : [], ...(reason ? { reason } : {}) });
  }
  // A manifest directory has no finalizers or status to manage; show what matters: labels and events.
  const shown = result.actions.filter((a: Action) => a.type === 'labelPod' || a.type === 'event');
  return { experiments: out, actions: shown.map(describe) };
}

export function formatPreview(p: Preview): string {
  const lines: string[] = [];
  if (p.experiments.length === 0) lines.push('no KernelChaos in the directory');
  for (const e of p.experiments) {
    lines.push(`${e.experiment}: ${e.plan}${e.reason ? ` (${e.reason})` : ''}`);
    for (const t of e.targets) lines.push(`  target ${t}`);
  }
  if (p.actions.length > 0) {
    lines.push('', 'would:');
    for (const a of p.actions) lines.push(`  ${a}`);
  }
  return lines.join('\n');
}
