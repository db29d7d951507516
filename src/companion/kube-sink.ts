// Cluster mode reporting: this node's container records merged into the KernelChaos status
// subresource (other nodes' records untouched; optimistic concurrency with retry on 409), and
// Kubernetes Events on the pod and the experiment. Writes are queued so the lifecycle never waits
// on the apiserver; only the latest records per experiment are kept.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { ContainerRecord, KernelChaos } from '../api/types.js';
import type { ExperimentId } from './model.js';
import type { CompanionEvent, SinkLogger, StatusSink } from './sink.js';

/** The three apiserver calls the sink needs; a conflict must throw an error with `code: 409`. */
export interface StatusApi {
  getKernelChaos(namespace: string, name: string): Promise<KernelChaos>;
  replaceKernelChaosStatus(namespace: string, name: string, body: KernelChaos): Promise<void>;
  createEvent(namespace: string, event: CoreV1Event): Promise<void>;
}

const GROUP = 'chaos-mesh.org';
const VERSION = 'v1alpha1';
const PLURAL = 'kernelchaos';

export function clientNodeStatusApi(kc: KubeConfig): StatusApi {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  return {
    getKernelChaos: async (namespace, name) =>
      (await custom.getNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })) as KernelChaos,
    replaceKernelChaosStatus: async (namespace, name, body) => {
      await custom.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body });
    },
    createEvent: async (namespace, body) => {
      await core.createNamespacedEvent({ namespace, body });
    },
  };
}

/** Replaces `node`'s records in `existing` with `mine`, keeping every other node's. */
export function mergeRecords(existing: readonly ContainerRecord[], mine: readonly ContainerRecord[], node: string): ContainerRecord[] {
  const myIds = new Set(mine.map((r) => r.id));
  const others = existing.filter((r) => (r.node === undefined ? !myIds.has(r.id) : r.node !== node));
  return [...others, ...mine].sort((a, b) => (a.id === b.id ? (a.node ?? '').localeCompare(b.node ?? '') : a.id.localeCompare(b.id)));
}

function httpCode(err: unknown): number | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'number') return (err as { code: number }).code;
  return undefined;
}

export interface KubeSinkOptions {
  api: StatusApi;
  node: string;
  log: SinkLogger;
  /** Component name on Events. */
  component?: string;
  maxConflictRetries?: number;
}

export class KubeStatusSink implements StatusSink {
  private readonly pending = new Map<string, { id: ExperimentId; records: ContainerRecord[] }>();
  private readonly events: CompanionEvent[] = [];
  private worker: Promise<void> | undefined;

  constructor(private readonly opts: KubeSinkOptions) {}

  records(experiment: ExperimentId, records: ContainerRecord[]): void {
    this.pending.set(experiment.uid, { id: experiment, records });
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
    if (this.worker) return;
    this.worker = this.drain().finally(() => {
      this.worker = undefined;
      if (this.pending.size > 0 || this.events.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.size > 0 || this.events.length > 0) {
      const first = this.pending.entries().next();
      if (!first.done) {
        const [uid, item] = first.value;
        this.pending.delete(uid);
        await this.writeStatus(item.id, item.records);
      }
      const event = this.events.shift();
      if (event) await this.writeEvent(event);
    }
  }

  private async writeStatus(id: ExperimentId, mine: ContainerRecord[]): Promise<void> {
    const retries = this.opts.maxConflictRetries ?? 5;
    for (let attempt = 0; attempt <= retries; attempt += 1) {
      let current: KernelChaos;
      try {
        current = await this.opts.api.getKernelChaos(id.namespace, id.name);
      } catch (err) {
        if (httpCode(err) !== 404) this.opts.log.warn({ experiment: `${id.namespace}/${id.name}`, err: String(err) }, 'reading KernelChaos status failed');
        return;
      }
      // A new object with the same name is another experiment: never write our records into it.
      if (!id.uid.includes('/') && current.metadata.uid && current.metadata.uid !== id.uid) return;
      const existing = current.status?.experiment?.containerRecords ?? [];
      const body: KernelChaos = {
        ...current,
        status: {
          ...current.status,
          experiment: { ...current.status?.experiment, containerRecords: mergeRecords(existing, mine, this.opts.node) },
        },
      };
      try {
        await this.opts.api.replaceKernelChaosStatus(id.namespace, id.name, body);
        return;
      } catch (err) {
        const code = httpCode(err);
        if (code === 409) continue; // someone else wrote first: re-read and merge again
        if (code !== 404) this.opts.log.warn({ experiment: `${id.namespace}/${id.name}`, err: String(err) }, 'writing KernelChaos status failed');
        return;
      }
    }
    this.opts.log.warn({ experiment: `${id.namespace}/${id.name}` }, `status not written: still conflicting after ${retries} retries`);
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
        apiVersion: e.involved.kind === 'Pod' ? 'v1' : `${GROUP}/${VERSION}`,
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
