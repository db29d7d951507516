// Cluster mode reporting: this node's container records go into this node's own report object per
// experiment (src/kube/reports.ts), which only the controller watches and folds into the KernelChaos
// status (the controller is the status's one writer); transitions become Events on the pod and the
// experiment. Writes are queued so the lifecycle never waits on the apiserver; only the latest records
// per experiment are kept, and a failed write is retried with backoff (the latest state wins).
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type CoreV1Event, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { KIND_INFO } from '../kube/objects.js';
import { apiClient } from '../kube/client.js';
import type { Permission } from '../kube/permissions.js';
import { REPORT_LABEL, REPORT_NODE_LABEL, nodeHash, parseReport, reportConfigMap, reportFaults, type NodeReport } from '../kube/reports.js';
import type { ContainerRecord } from '../api/types.js';
import type { ExperimentId } from './model.js';
import type { CompanionEvent, ReportedBudget, SinkLogger, StatusSink } from './sink.js';

/** The apiserver calls the sink needs; errors carry the HTTP status in `code`. */
export interface ReportApi {
  listReports(namespace: string, labelSelector: string): Promise<V1ConfigMap[]>;
  createReport(namespace: string, body: V1ConfigMap): Promise<void>;
  replaceReport(namespace: string, name: string, body: V1ConfigMap): Promise<void>;
  createEvent(namespace: string, event: CoreV1Event): Promise<void>;
}

/** The calls of clientNodeReportApi. */
export const REPORT_PERMISSIONS: readonly Permission[] = [
  { group: '', resource: 'configmaps', verbs: ['list', 'create', 'update'], scope: 'release-namespace' },
  { group: '', resource: 'events', verbs: ['create'], scope: 'cluster' },
];

export function clientNodeReportApi(kc: KubeConfig): ReportApi {
  const core = apiClient(kc, CoreV1Api);
  return {
    listReports: async (namespace, labelSelector) => (await core.listNamespacedConfigMap({ namespace, labelSelector })).items,
    createReport: async (namespace, body) => {
      await core.createNamespacedConfigMap({ namespace, body });
    },
    replaceReport: async (namespace, name, body) => {
      await core.replaceNamespacedConfigMap({ namespace, name, body });
    },
    createEvent: async (namespace, body) => {
      await core.createNamespacedEvent({ namespace, body });
    },
  };
}

function httpCode(err: unknown): number | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'number') return (err as { code: number }).code;
  return undefined;
}

export interface KubeSinkOptions {
  api: ReportApi;
  node: string;
  /** Where the reports live: the release namespace. */
  namespace: string;
  log: SinkLogger;
  /** Component name on Events. */
  component?: string;
  /** First delay after a failed write; doubles up to 30 s. Default 500 ms. */
  retryDelayMs?: number;
}

export class KubeStatusSink implements StatusSink {
  private readonly pending = new Map<string, { id: ExperimentId; records: ContainerRecord[]; budget: ReportedBudget | undefined }>();
  private readonly events: CompanionEvent[] = [];
  /** Report objects known to exist (so a write is one PUT, not a create that conflicts). */
  private readonly existing = new Set<string>();
  private worker: Promise<void> | undefined;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: KubeSinkOptions) {}

  /** This node's earlier reports (after a restart), by experiment uid: the counts continue from them. */
  async loadSeeds(): Promise<Map<string, ContainerRecord[]>> {
    const seeds = new Map<string, ContainerRecord[]>();
    const list = await this.opts.api.listReports(this.opts.namespace, `${REPORT_LABEL}=true,${REPORT_NODE_LABEL}=${nodeHash(this.opts.node)}`);
    for (const cm of list) {
      const report = parseReport(cm);
      if (!report || report.node !== this.opts.node) continue;
      seeds.set(report.experiment.uid, report.records);
      if (cm.metadata?.name) this.existing.add(cm.metadata.name);
    }
    return seeds;
  }

  records(experiment: ExperimentId, records: ContainerRecord[], budget?: ReportedBudget): void {
    this.pending.set(experiment.uid, { id: experiment, records, budget });
    this.kick();
  }

  event(event: CompanionEvent): void {
    // Bounded: a storm of transitions must not grow memory without end while the apiserver is away.
    if (this.events.length < 1000) this.events.push(event);
    this.kick();
  }

  async flush(): Promise<void> {
    while (this.worker) await this.worker;
  }

  private kick(): void {
    if (this.worker || this.retryTimer) return;
    this.worker = this.drain().finally(() => {
      this.worker = undefined;
      if (this.retryTimer) return;
      if (this.pending.size > 0 || this.events.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.size > 0 || this.events.length > 0) {
      const first = this.pending.entries().next();
      if (!first.done) {
        const [uid, item] = first.value;
        this.pending.delete(uid);
        if (!(await this.writeReport(item.id, item.records, item.budget))) {
          // Keep it unless newer records arrived meanwhile; try again after a backoff.
          if (!this.pending.has(uid)) this.pending.set(uid, item);
          this.backoff();
          return;
        }
        this.failures = 0;
      }
      const event = this.events.shift();
      if (event) await this.writeEvent(event);
    }
  }

  private backoff(): void {
    this.failures += 1;
    const delay = Math.min(30_000, (this.opts.retryDelayMs ?? 500) * 2 ** Math.min(this.failures - 1, 10));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, delay);
    this.retryTimer.unref();
  }

  /** True when written (or when there is nothing to write to: a gone namespace is not retried). */
  private async writeReport(id: ExperimentId, records: ContainerRecord[], budget: ReportedBudget | undefined): Promise<boolean> {
    // Experiments known only by namespace/name (no uid) have nowhere unambiguous to report.
    if (id.uid.includes('/')) return true;
    const report: NodeReport = {
      node: this.opts.node,
      experiment: { namespace: id.namespace, name: id.name, uid: id.uid },
      faultsInjected: reportFaults(records),
      records,
      ...(budget ? { budget } : {}),
    };
    const body = reportConfigMap(this.opts.namespace, report);
    const name = body.metadata?.name ?? '';
    try {
      if (this.existing.has(name)) {
        try {
          // Unconditional: this node's companion is the only writer of this object.
          await this.opts.api.replaceReport(this.opts.namespace, name, body);
          return true;
        } catch (err) {
          if (httpCode(err) !== 404) throw err;
          this.existing.delete(name);
        }
      }
      try {
        await this.opts.api.createReport(this.opts.namespace, body);
      } catch (err) {
        if (httpCode(err) !== 409) throw err;
        await this.opts.api.replaceReport(this.opts.namespace, name, body);
      }
      this.existing.add(name);
      return true;
    } catch (err) {
      this.opts.log.warn({ experiment: `${id.namespace}/${id.name}`, err: String(err) }, 'writing the node report failed; retrying with backoff');
      return false;
    }
  }

  private async writeEvent(e: CompanionEvent): Promise<void> {
    const now = new Date();
    const body: CoreV1Event = {
      metadata: { name: `${e.involved.name}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`, namespace: e.involved.namespace },
      involvedObject: {
        kind: e.involved.kind,
        namespace: e.involved.namespace,
        name: e.involved.name,
        ...(e.involved.uid ? { uid: e.involved.uid } : {}),
        apiVersion: e.involved.kind === 'Pod' ? 'v1' : KIND_INFO.KernelChaos.apiVersion,
      },
      reason: e.reason,
      message: e.message.slice(0, 1024),
      type: e.type,
      source: { component: this.opts.component ?? 'kernelchaos-companion', host: this.opts.node },
      reportingComponent: this.opts.component ?? 'kernelchaos-companion',
      reportingInstance: this.opts.node,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.opts.api.createEvent(e.involved.namespace, body);
    } catch (err) {
      this.opts.log.warn({ reason: e.reason, err: String(err) }, 'creating an Event failed');
    }
  }
}
