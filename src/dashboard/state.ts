// What the dashboard shows, built from the controller's cluster store: every experiment's summary
// (the same one `kernelchaos status` prints), the containers each targeted pod runs, and the
// faults-over-time series.
import type { V1Pod } from '@kubernetes/client-node';
import type { KernelChaos } from '../api/types.js';
import { summarize, type ExperimentSummary } from '../status/summary.js';
import type { Sample } from './history.js';

export interface DashboardExperiment extends ExperimentSummary {
  key: string;
  /** Targeted pod -> the containers the experiment faults in it (containerNames, or all). */
  podContainers: Record<string, string[]>;
}

export interface DashboardState {
  generatedAt: string;
  experiments: DashboardExperiment[];
  history: Record<string, Sample[]>;
}

export function experimentKey(s: { namespace: string; name: string }): string {
  return `${s.namespace}/${s.name}`;
}

export function buildExperiments(experiments: readonly KernelChaos[], pods: readonly V1Pod[]): DashboardExperiment[] {
  const byKey = new Map(pods.map((p) => [`${p.metadata?.namespace ?? 'default'}/${p.metadata?.name ?? ''}`, p]));
  return experiments
    .map((chaos) => {
      const s = summarize(chaos, pods, []);
      const only = chaos.spec.containerNames ?? [];
      const podContainers: Record<string, string[]> = {};
      for (const ref of s.targetedPods) {
        const names = (byKey.get(ref)?.spec?.containers ?? []).map((c) => c.name);
        podContainers[ref] = only.length > 0 ? names.filter((n) => only.includes(n)) : names;
      }
      return { ...s, key: experimentKey(s), podContainers };
    })
    .sort((a, b) => a.key.localeCompare(b.key));
}
