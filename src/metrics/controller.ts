// The controller's metrics, fed by its reconcile reports: pass duration, pods selected per
// experiment, failed API writes by action, experiments by decision, and whether this replica leads.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ReconcileReport } from '../controller/controller.js';
import type { ExperimentPlan } from '../controller/status.js';
import { SECONDS_BUCKETS, metricName } from './registry.js';

export interface ControllerView {
  readonly isLeader: boolean;
  onReconcile(fn: (r: ReconcileReport) => void): void;
}

const PLAN_KINDS: readonly ExperimentPlan['kind'][] = ['active', 'denied', 'invalid', 'finished', 'deleting'];

export class ControllerMetrics {
  private readonly duration: Histogram;
  private readonly selected: Gauge<'namespace' | 'experiment'>;
  private readonly experiments: Gauge<'decision'>;
  private readonly apiErrors: Counter<'action'>;
  private readonly actions: Counter<'action' | 'outcome'>;

  constructor(registry: Registry, controller: ControllerView) {
    const registers = [registry];
    this.duration = new Histogram({
      name: metricName('controller', 'reconcile_duration_seconds'),
      help: 'Time of one reconcile pass (decide, then write labels, finalizers, status and Events).',
      buckets: [...SECONDS_BUCKETS],
      registers,
    });
    this.selected = new Gauge({
      name: metricName('controller', 'selected_pods'),
      help: 'Pods the experiment targets after selection, mode and policies, as of the last reconcile.',
      labelNames: ['namespace', 'experiment'] as const,
      registers,
    });
    this.experiments = new Gauge({
      name: metricName('controller', 'experiments'),
      help: 'Experiments by what the last reconcile decided (active, denied, invalid, finished, deleting).',
      labelNames: ['decision'] as const,
      registers,
    });
    this.apiErrors = new Counter({
      name: metricName('controller', 'api_errors_total'),
      help: 'Kubernetes API writes that failed after retries, by action (labelPod, updateStatus, event, addFinalizer, removeFinalizer).',
      labelNames: ['action'] as const,
      registers,
    });
    this.actions = new Counter({
      name: metricName('controller', 'actions_total'),
      help: 'Actions the reconciles executed, by action and outcome (done, unchanged, gone, failed).',
      labelNames: ['action', 'outcome'] as const,
      registers,
    });
    new Gauge({
      name: metricName('controller', 'leader'),
      help: '1 while this replica holds the Lease and acts, 0 on standby.',
      registers,
      collect() {
        this.set(controller.isLeader ? 1 : 0);
      },
    });
    controller.onReconcile((r) => this.observe(r));
  }

  observe(r: ReconcileReport): void {
    this.duration.observe(r.seconds);
    this.selected.reset();
    const decisions = new Map<ExperimentPlan['kind'], number>(PLAN_KINDS.map((k) => [k, 0]));
    for (const [ref, plan] of r.result.plans) {
      const slash = ref.indexOf('/');
      const namespace = ref.slice(0, slash);
      const experiment = ref.slice(slash + 1);
      this.selected.set({ namespace, experiment }, plan.kind === 'active' ? plan.targets.length : 0);
      decisions.set(plan.kind, (decisions.get(plan.kind) ?? 0) + 1);
    }
    for (const [decision, n] of decisions) this.experiments.set({ decision }, n);
    for (const { action, outcome } of r.outcomes) {
      this.actions.inc({ action: action.type, outcome });
      if (outcome === 'failed') this.apiErrors.inc({ action: action.type });
    }
  }
}
