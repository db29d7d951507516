// Carries out reconcile actions through @kubernetes/client-node. Writes that depend on the object's
// current state carry its resourceVersion; on 409 Conflict the object is re-read and the write
// recomputed from the same desired state. Transient failures (429, 5xx, no answer) are retried a few
// times here; anything still failing is reported and left to the next reconcile.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import { FINALIZER, MANAGED_BY_ANNOTATION } from '../api/labels.js';
import type { KernelChaos } from '../api/types.js';
import type { ClusterStore } from '../kube/store.js';
import { KIND_INFO } from '../kube/objects.js';
import { allotmentsConfigMap } from '../kube/reports.js';
import { apiClient } from '../kube/client.js';
import type { Permission } from '../kube/permissions.js';
import { errorMessage, type Log } from '../kube/log.js';
import { apiErrorCode, isTransient } from './errors.js';
import { podLabelPatch } from './podLabels.js';
import type { Action, EventAction } from './reconcile.js';
import { statusBody } from './status.js';

/** The calls below (readNamespacedPod, patchNamespacedPod, get/patch of KernelChaos and its status, events, report deletion). */
export const EXECUTOR_PERMISSIONS: readonly Permission[] = [
  { group: '', resource: 'pods', verbs: ['get', 'patch'], scope: 'cluster' },
  { group: KIND_INFO.KernelChaos.group, resource: KIND_INFO.KernelChaos.plural, verbs: ['get', 'patch'], scope: 'cluster' },
  { group: KIND_INFO.KernelChaos.group, resource: `${KIND_INFO.KernelChaos.plural}/status`, verbs: ['patch'], scope: 'cluster' },
  { group: '', resource: 'events', verbs: ['create'], scope: 'cluster' },
  // Node reports are deleted; allotments objects created, replaced and deleted.
  { group: '', resource: 'configmaps', verbs: ['create', 'update', 'delete'], scope: 'release-namespace' },
];

export type ActionOutcome = 'done' | 'unchanged' | 'gone' | 'failed' | 'fenced';

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const KC = { group: KIND_INFO.KernelChaos.group, version: KIND_INFO.KernelChaos.version, plural: KIND_INFO.KernelChaos.plural };

export interface ExecutorOptions {
  log: Log;
  /** Reported as the event source (reportingInstance). */
  identity: string;
  /** Attempts per action for conflicts and transient errors. Default 6. */
  maxAttempts?: number;
  /** First backoff between transient retries; doubles. Default 100 ms. */
  retryDelayMs?: number;
  /** Per-call deadline (default DEFAULT_API_TIMEOUT_MS). */
  timeoutMs?: number;
  /** The current leadership term: once aborted, every call in flight is abandoned and no new one starts. */
  fence?: () => AbortSignal | undefined;
}

/** Thrown for work abandoned because this replica stopped leading. */
export class FencedError extends Error {
  constructor() {
    super('not the leader any more: write abandoned');
  }
}

export class KubeExecutor {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  /**
   * Whether KernelChaos has a status subresource: as the install profile says, or, before one is
   * known, assumed until a /status write answers 404 for an existing object.
   */
  private statusSubresource = true;
  private statusPathKnown = false;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;

  constructor(kubeConfig: KubeConfig, private readonly store: ClusterStore, private readonly options: ExecutorOptions) {
    const clientOptions = { ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}), ...(options.fence ? { signal: options.fence } : {}) };
    this.core = apiClient(kubeConfig, CoreV1Api, clientOptions);
    this.custom = apiClient(kubeConfig, CustomObjectsApi, clientOptions);
    this.maxAttempts = options.maxAttempts ?? 6;
    this.retryDelayMs = options.retryDelayMs ?? 100;
  }

  /** The install profile's answer: status through /status, or with the object (Chaos Mesh's CRD). */
  setStatusSubresource(present: boolean): void {
    this.statusSubresource = present;
    this.statusPathKnown = true;
  }

  /** Backoff before another attempt; a replica that stopped leading meanwhile does not make it. */
  private async pause(attempt: number): Promise<void> {
    await sleep(this.retryDelayMs * 2 ** (attempt - 1));
    this.checkFence();
  }

  private checkFence(): void {
    if (this.options.fence?.()?.aborted) throw new FencedError();
  }

  async execute(action: Action): Promise<ActionOutcome> {
    try {
      this.checkFence();
      switch (action.type) {
        case 'labelPod':
          return await this.labelPod(action.namespace, action.name, action.experiments);
        case 'claim':
          return await this.claim(action.namespace, action.name, action.owner, action.resourceVersion);
        case 'addFinalizer':
          return await this.setFinalizer(action.namespace, action.name, true);
        case 'removeFinalizer':
          return await this.setFinalizer(action.namespace, action.name, false);
        case 'updateStatus':
          return await this.withRetries(async () => {
            const body = statusBody(action.status);
            const target = { ...KC, namespace: action.namespace, name: action.name, body };
            if (this.statusSubresource) {
              try {
                await this.custom.patchNamespacedCustomObjectStatus(target, MERGE);
                return 'done';
              } catch (error) {
                if (apiErrorCode(error) !== 404 || this.statusPathKnown) throw error;
                // Chaos Mesh's KernelChaos CRD has no status subresource: /status is 404 for an object
                // that exists. Status is then part of the main resource, written as Chaos Mesh does.
              }
              await this.custom.patchNamespacedCustomObject(target, MERGE);
              this.statusSubresource = false;
              this.options.log.info({}, 'the KernelChaos CRD has no status subresource (Chaos Mesh\'s): status is written with the object');
              return 'done';
            }
            await this.custom.patchNamespacedCustomObject(target, MERGE);
            return 'done';
          });
        case 'putAllotments':
          return await this.withRetries(async () => {
            // Only the leading controller writes allotments: an unconditional replace, or a create the first time.
            // Replace when the store holds it (404: gone meanwhile, create), else create (409: there after all, replace).
            const body = allotmentsConfigMap(action.namespace, action.allotments);
            const replace = () => this.core.replaceNamespacedConfigMap({ namespace: action.namespace, name: action.name, body });
            const create = () => this.core.createNamespacedConfigMap({ namespace: action.namespace, body });
            const [first, fallback, code] = this.store.get('ConfigMap', action.namespace, action.name) ? [replace, create, 404] : [create, replace, 409];
            try {
              await first();
            } catch (error) {
              if (apiErrorCode(error) !== code) throw error;
              await fallback();
            }
            return 'done';
          });
        case 'deleteReport':
        case 'deleteAllotments':
          return await this.withRetries(async () => {
            await this.core.deleteNamespacedConfigMap({ namespace: action.namespace, name: action.name });
            return 'done';
          });
        case 'event':
          return await this.withRetries(() => this.emit(action));
      }
    } catch (error) {
      if (error instanceof FencedError || this.options.fence?.()?.aborted) return 'fenced';
      this.options.log.warn({ action: describe(action), err: errorMessage(error) }, 'action failed; the next reconcile retries it');
      return 'failed';
    }
  }

  /** Retries transient failures with backoff; 404 means the object is gone (nothing to do). */
  private async withRetries(run: () => Promise<ActionOutcome>): Promise<ActionOutcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        if (apiErrorCode(error) === 404) return 'gone';
        if (!isTransient(error) || attempt >= this.maxAttempts) throw error;
        await this.pause(attempt);
      }
    }
  }

  private async readPod(namespace: string, name: string): Promise<V1Pod> {
    return await this.core.readNamespacedPod({ namespace, name });
  }

  private async labelPod(namespace: string, name: string, experiments: string[]): Promise<ActionOutcome> {
    let pod: V1Pod | undefined = this.store.get('Pod', namespace, name);
    for (let attempt = 1; ; attempt++) {
      if (!pod) {
        try {
          pod = await this.readPod(namespace, name);
        } catch (error) {
          if (apiErrorCode(error) === 404) return 'gone';
          if (!isTransient(error) || attempt >= this.maxAttempts) throw error;
          await this.pause(attempt);
          continue;
        }
      }
      const patch = podLabelPatch(pod, experiments);
      if (!patch) return attempt === 1 ? 'unchanged' : 'done';
      try {
        await this.core.patchNamespacedPod({ namespace, name, body: patch }, MERGE);
        return 'done';
      } catch (error) {
        const code = apiErrorCode(error);
        if (code === 404) return 'gone';
        if (attempt >= this.maxAttempts) throw error;
        if (code === 409) {
          this.options.log.debug({ pod: `${namespace}/${name}`, attempt }, 'pod changed meanwhile; re-reading');
        } else if (isTransient(error)) {
          await this.pause(attempt);
        } else {
          throw error;
        }
        pod = undefined; // re-read and recompute against the latest state
      }
    }
  }

  private async setFinalizer(namespace: string, name: string, present: boolean): Promise<ActionOutcome> {
    let chaos: KernelChaos | undefined = this.store.get('KernelChaos', namespace, name);
    for (let attempt = 1; ; attempt++) {
      if (!chaos) {
        try {
          chaos = (await this.custom.getNamespacedCustomObject({ ...KC, namespace, name })) as KernelChaos;
        } catch (error) {
          if (apiErrorCode(error) === 404) return 'gone';
          if (!isTransient(error) || attempt >= this.maxAttempts) throw error;
          await this.pause(attempt);
          continue;
        }
      }
      const finalizers = chaos.metadata.finalizers ?? [];
      const has = finalizers.includes(FINALIZER);
      if (has === present) return attempt === 1 ? 'unchanged' : 'done';
      // Once deletion has started no finalizer may be added: the deletion path handles it.
      if (present && chaos.metadata.deletionTimestamp) return 'unchanged';
      const next = present ? [...finalizers, FINALIZER] : finalizers.filter((f) => f !== FINALIZER);
      try {
        await this.custom.patchNamespacedCustomObject(
          { ...KC, namespace, name, body: { metadata: { resourceVersion: chaos.metadata.resourceVersion, finalizers: next } } },
          MERGE,
        );
        return 'done';
      } catch (error) {
        const code = apiErrorCode(error);
        if (code === 404) return 'gone';
        if (attempt >= this.maxAttempts) throw error;
        if (code !== 409 && !isTransient(error)) throw error;
        if (code !== 409) await this.pause(attempt);
        chaos = undefined;
      }
    }
  }

  /** Writes the ownership marker if the object is still unmarked; a claim that lost the race is 'unchanged'. */
  private async claim(namespace: string, name: string, owner: string, resourceVersion: string | undefined): Promise<ActionOutcome> {
    let rv = resourceVersion;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.custom.patchNamespacedCustomObject(
          { ...KC, namespace, name, body: { metadata: { ...(rv ? { resourceVersion: rv } : {}), annotations: { [MANAGED_BY_ANNOTATION]: owner } } } },
          MERGE,
        );
        return 'done';
      } catch (error) {
        const code = apiErrorCode(error);
        if (code === 404) return 'gone';
        if (attempt >= this.maxAttempts || (code !== 409 && !isTransient(error))) throw error;
        if (code !== 409) {
          await this.pause(attempt);
          continue;
        }
        // Changed meanwhile: claimed by someone else, or another edit (then claim the new version).
        const current = (await this.custom.getNamespacedCustomObject({ ...KC, namespace, name })) as KernelChaos;
        const marked = current.metadata.annotations?.[MANAGED_BY_ANNOTATION];
        if (marked !== undefined && marked !== '') return marked === owner ? 'done' : 'unchanged';
        rv = current.metadata.resourceVersion;
      }
    }
  }

  private async emit(action: EventAction): Promise<ActionOutcome> {
    const now = new Date();
    const { regarding } = action;
    await this.core.createNamespacedEvent({
      namespace: regarding.namespace,
      body: {
        metadata: { generateName: `${regarding.name}.`, namespace: regarding.namespace },
        involvedObject: {
          apiVersion: regarding.apiVersion,
          kind: regarding.kind,
          name: regarding.name,
          namespace: regarding.namespace,
          ...(regarding.uid ? { uid: regarding.uid } : {}),
        },
        reason: action.reason,
        message: action.message.slice(0, 1024),
        type: action.eventType,
        source: { component: 'kernelchaos-controller' },
        reportingComponent: 'kernelchaos.dev/controller',
        reportingInstance: this.options.identity.slice(0, 128),
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
    return 'done';
  }
}

export function describe(action: Action): string {
  switch (action.type) {
    case 'labelPod':
      return `label pod ${action.namespace}/${action.name} with [${action.experiments.join(', ')}]`;
    case 'claim':
      return `claim ${action.namespace}/${action.name} for ${action.owner}`;
    case 'addFinalizer':
    case 'removeFinalizer':
    case 'deleteReport':
    case 'deleteAllotments':
      return `${action.type} ${action.namespace}/${action.name}`;
    case 'putAllotments':
      return `allotments for node ${action.allotments.node}: ${JSON.stringify(action.allotments.allotments)}`;
    case 'updateStatus':
      return `status ${action.namespace}/${action.name}: ${action.status.desiredPhase} ${action.status.conditions.map((c) => `${c.type}=${c.status}`).join(' ')}`;
    case 'event':
      return `event ${action.eventType} ${action.reason} on ${action.regarding.kind} ${action.regarding.namespace}/${action.regarding.name}: ${action.message}`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
