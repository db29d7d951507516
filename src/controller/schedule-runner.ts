// Carries out planSchedule (schedule.ts) against the API: lists Schedules and their children,
// creates and deletes children, and writes the Schedule's status the way Chaos Mesh's CRD allows
// (no status subresource: an update of the whole object, retried on conflict). Runs inside the
// controller's reconcile, so only the lease holder acts. Every call has a deadline (apiClient).
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { apiClient } from '../kube/client.js';
import type { Permission } from '../kube/permissions.js';
import { PAUSE_ANNOTATION } from '../api/labels.js';
import type { KernelChaos } from '../api/types.js';
import { errorMessage, type Log } from '../kube/log.js';
import { MANAGED_BY_LABEL, planSchedule, type ScheduleAction, type ScheduleObject } from './schedule.js';
import { apiErrorCode } from './errors.js';
import { KIND_INFO } from '../kube/objects.js';

const { group: GROUP, version: VERSION } = KIND_INFO.KernelChaos;

/** The calls below: Schedules listed, read and updated (status); children listed, created, read, updated (pause), deleted. */
export const SCHEDULE_RUNNER_PERMISSIONS: readonly Permission[] = [
  { group: GROUP, resource: 'schedules', verbs: ['list', 'get', 'update'], scope: 'cluster' },
  { group: GROUP, resource: 'kernelchaos', verbs: ['list', 'create', 'get', 'update', 'delete'], scope: 'cluster' },
];

export interface ScheduleRunnerOptions {
  log: Log;
  /** Deadline of each API call. Default DEFAULT_API_TIMEOUT_MS. */
  callTimeoutMs?: number;
  /** Look for new or changed Schedules at least this often. Default 5 s. */
  pollMs?: number;
}

export class ScheduleRunner {
  private readonly custom: CustomObjectsApi;
  private disabled: string | undefined;

  constructor(kubeConfig: KubeConfig, private readonly options: ScheduleRunnerOptions) {
    this.custom = apiClient(kubeConfig, CustomObjectsApi, options.callTimeoutMs !== undefined ? { timeoutMs: options.callTimeoutMs } : {});
  }

  /** One pass over every Schedule; returns when to come back. */
  async pass(now: Date): Promise<Date | undefined> {
    if (this.disabled !== undefined) return undefined;
    let schedules: ScheduleObject[];
    try {
      const list = (await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'schedules' })) as { items?: ScheduleObject[] };
      schedules = list.items ?? [];
    } catch (error) {
      if (apiErrorCode(error) === 404) {
        this.disabled = 'the Schedule CRD (schedules.chaos-mesh.org) is not installed';
        this.options.log.info({ reason: this.disabled }, 'Schedules not run');
        return undefined;
      }
      throw error;
    }
    const kernel = schedules.filter((s) => s.spec?.type === 'KernelChaos');
    const poll = new Date(now.getTime() + (this.options.pollMs ?? 5_000));
    if (kernel.length === 0) return poll;
    const children = (
      (await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'kernelchaos', labelSelector: MANAGED_BY_LABEL })) as { items?: KernelChaos[] }
    ).items ?? [];
    let wake: Date = poll;
    for (const schedule of kernel) {
      const plan = planSchedule(schedule, children, now);
      try {
        await this.execute(schedule, plan.actions);
      } catch (error) {
        this.options.log.warn({ schedule: `${schedule.metadata.namespace ?? ''}/${schedule.metadata.name ?? ''}`, err: errorMessage(error) }, 'schedule step failed; retried next pass');
      }
      if (plan.nextWakeAt && plan.nextWakeAt < wake) wake = plan.nextWakeAt;
    }
    return wake;
  }

  private async execute(schedule: ScheduleObject, actions: readonly ScheduleAction[]): Promise<void> {
    const namespace = schedule.metadata.namespace ?? 'default';
    const name = schedule.metadata.name ?? '';
    const who = `${namespace}/${name}`;
    const status: { time?: string; active?: unknown } = {};
    for (const a of actions) {
      switch (a.type) {
        case 'createChild':
          try {
            await this.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'kernelchaos', namespace, body: a.body });
          } catch (error) {
            // The same fire time gives the same name: it was made before a crash or by another pass.
            if (apiErrorCode(error) !== 409) throw error;
          }
          break;
        case 'setLastScheduleTime':
          status.time = new Date(Math.floor(a.time.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
          break;
        case 'setActive':
          status.active = a.active;
          break;
        case 'deleteChild':
          try {
            await this.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'kernelchaos', namespace, name: a.name });
          } catch (error) {
            if (apiErrorCode(error) !== 404) throw error;
          }
          break;
        case 'setChildPause':
          await this.updateWithRetry('kernelchaos', namespace, a.name, (o) => {
            const meta = o.metadata as { annotations?: Record<string, string> };
            meta.annotations = { ...(meta.annotations ?? {}), [PAUSE_ANNOTATION]: String(a.paused) };
          });
          break;
        case 'event':
          this.options.log[a.eventType === 'Warning' ? 'warn' : 'info']({ schedule: who, reason: a.reason }, a.message);
          break;
      }
    }
    if (status.time !== undefined || status.active !== undefined) {
      await this.updateWithRetry('schedules', namespace, name, (o) => {
        const current = (o.status ?? {}) as Record<string, unknown>;
        o.status = { ...current, ...status };
      });
    }
  }

  /** Get, change, replace; re-read and retry on a conflict (as Chaos Mesh's RetryOnConflict). */
  private async updateWithRetry(plural: string, namespace: string, name: string, change: (o: Record<string, unknown> & { metadata: object }) => void): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      const o = (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace, name })) as Record<string, unknown> & { metadata: object };
      change(o);
      try {
        await this.custom.replaceNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace, name, body: o });
        return;
      } catch (error) {
        if (apiErrorCode(error) !== 409 || attempt >= 4) throw error;
      }
    }
  }
}
