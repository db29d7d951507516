// The controller process: a ClusterStore (informers) feeds a pure reconcile; only the lease holder
// executes the actions. Reconciles are serialised and coalesced: any store change, a timer for the
// next duration end, a periodic resync, and a retry after failed actions all ask for one.
import { performance } from 'node:perf_hooks';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterStore, StoreEvent, WatchedKind } from '../kube/store.js';
import type { InformerStoreOptions, KindScope } from '../kube/informer.js';
import { CONTROLLER_PROJECTIONS } from '../kube/projection.js';
import { CONTROLLER_CHANNEL_SELECTOR } from '../kube/reports.js';
import { errorMessage, type Log } from '../kube/log.js';
import { KubeExecutor, describe, type ActionOutcome } from './executor.js';
import { LeaderElector } from './leader.js';
import { reconcile, type Action, type ReconcileResult } from './reconcile.js';
import { PodIndex } from './podIndex.js';
import type { ScheduleRunner } from './schedule-runner.js';
import { controllerInstance } from './ownership.js';
import type { ProfileChoice } from '../kube/crd-profile.js';
import { ProfileState, detectInstallProfile, scheduleRunnerDecision, type DetectOptions } from '../kube/install-profile.js';

/** What the controller watches: the node reports and allotments only in its own namespace, by label. */
export const CONTROLLER_KINDS: readonly WatchedKind[] = ['KernelChaos', 'KernelChaosPolicy', 'Namespace', 'Pod', 'Node', 'ConfigMap'];

export function controllerScopes(namespace: string): Partial<Record<WatchedKind, KindScope>> {
  return { ConfigMap: { namespace, labelSelector: CONTROLLER_CHANNEL_SELECTOR } };
}

/** The controller's informers: its kinds, the reports' scope, and pods and nodes cut to the fields it reads. */
export function controllerStoreOptions(namespace: string): Pick<InformerStoreOptions, 'kinds' | 'scopes' | 'projections'> {
  return { kinds: CONTROLLER_KINDS, scopes: controllerScopes(namespace), projections: CONTROLLER_PROJECTIONS };
}

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  store: ClusterStore;
  /** The namespace kernelchaos runs in: holds the Lease; its pods are never targeted. */
  namespace: string;
  leaseName: string;
  identity: string;
  log: Log;
  /** Full reconcile at least this often. Default 60 s. */
  resyncMs?: number;
  /** Retry after failed actions. Default 2 s. */
  retryMs?: number;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Wait this long after a change before reconciling, so a burst of pod events costs one pass. Default 50 ms. */
  debounceMs?: number;
  /** A status change that only moves counters/records waits this long after the last write. Default 10 s. */
  statusIntervalMs?: number;
  /** Per API call. Default DEFAULT_API_TIMEOUT_MS. */
  apiTimeoutMs?: number;
  /** Clock (tests). */
  now?: () => Date;
  /** Runs Chaos Mesh Schedules of KernelChaos (where Chaos Mesh's own schedule controller is absent). */
  schedules?: ScheduleRunner;
  /**
   * --schedules: with a detected profile, `auto` runs `schedules` only where the Schedule CRD is
   * kernelchaos's (never beside Chaos Mesh's schedule controller). Default auto.
   */
  schedulesMode?: 'auto' | 'on' | 'off';
  /**
   * Read the install profile from the CRDs before anything else (start() waits for it, retrying while
   * the CRD is missing, and rejects with a ProfileError on a CRD of neither profile or of another
   * than the one insisted on). Undefined: no detection (status path found by trying /status).
   */
  crdProfile?: ProfileChoice;
  /** Backoff of the profile detection (tests). */
  profileRetry?: Pick<DetectOptions, 'initialDelayMs' | 'maxDelayMs'>;
}

export interface ReconcileReport {
  /** Wall time of the pass: decide and execute. */
  seconds: number;
  result: ReconcileResult;
  /** Time of the pure decision (reconcile()), and of the whole pass including the API writes. */
  computeMs: number;
  /** CPU time of the decision (wall time includes waiting for a busy machine's CPU). */
  computeCpuMs: number;
  passMs: number;
  outcomes: Array<{ action: Action; outcome: ActionOutcome }>;
}

export class Controller {
  private readonly elector: LeaderElector;
  private readonly executor: KubeExecutor;
  private readonly log: Log;
  private readonly now: () => Date;
  private unsubscribe: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  /** Last message per (object, reason): the same event is not repeated while the store catches up. */
  private readonly lastEvents = new Map<string, string>();
  private readonly reports: Array<(r: ReconcileReport) => void> = [];
  /** When this replica last wrote each experiment's status (ms), for the records throttle. */
  private readonly statusWrittenAt = new Map<string, number>();
  /** The ownership marker this controller writes and honours: one per install, shared by its replicas. */
  readonly owner: string;
  readonly profile = new ProfileState();
  private runSchedules: boolean;
  private readonly stopDetecting = new AbortController();
  /** The store's pods, indexed as reconcile reads them; kept current by store events. */
  private podIndex = new PodIndex();
  /** false while start() lists the store: those pods are indexed at once afterwards, not one event at a time. */
  private podIndexBuilt = false;

  constructor(private readonly options: ControllerOptions) {
    this.log = options.log;
    this.now = options.now ?? (() => new Date());
    this.owner = controllerInstance(options.namespace, options.leaseName);
    this.runSchedules = options.schedules !== undefined && options.schedulesMode !== 'off';
    this.executor = new KubeExecutor(options.kubeConfig, options.store, {
      log: options.log,
      identity: options.identity,
      // Every write carries the leadership term: when it ends, writes in flight are abandoned.
      fence: () => this.elector.signal,
      ...(options.apiTimeoutMs !== undefined ? { timeoutMs: options.apiTimeoutMs } : {}),
    });
    this.elector = new LeaderElector(options.kubeConfig, {
      namespace: options.namespace,
      name: options.leaseName,
      identity: options.identity,
      log: options.log,
      ...(options.leaseDurationMs !== undefined ? { leaseDurationMs: options.leaseDurationMs } : {}),
      ...(options.renewDeadlineMs !== undefined ? { renewDeadlineMs: options.renewDeadlineMs } : {}),
      ...(options.retryPeriodMs !== undefined ? { retryPeriodMs: options.retryPeriodMs } : {}),
      onStartedLeading: () => this.trigger(),
      onStoppedLeading: () => {
        // The work queue pauses: nothing is retried or woken until this replica leads again.
        this.again = false;
        this.clearTimers();
      },
    });
  }

  get isLeader(): boolean {
    return this.elector.isLeader;
  }

  get ready(): boolean {
    return this.options.store.synced;
  }

  /** Calls `fn` after every reconcile this replica executes (tests, metrics). */
  onReconcile(fn: (r: ReconcileReport) => void): void {
    this.reports.push(fn);
  }

  /** Reads the install profile (if asked to), starts the store (resolves once it has synced) and campaigns for the lease. */
  async start(): Promise<void> {
    this.stopped = false;
    if (this.options.crdProfile !== undefined) {
      let profile;
      try {
        profile = await detectInstallProfile(this.options.kubeConfig, this.options.crdProfile, {
          log: this.log,
          state: this.profile,
          signal: this.stopDetecting.signal,
          ...(this.options.apiTimeoutMs !== undefined ? { timeoutMs: this.options.apiTimeoutMs } : {}),
          ...this.options.profileRetry,
        });
      } catch (error) {
        if (this.stopped) return;
        throw error;
      }
      this.executor.setStatusSubresource(profile.kernelChaos.statusSubresource);
      if (this.options.schedules) {
        const decision = scheduleRunnerDecision(this.options.schedulesMode ?? 'auto', profile);
        this.runSchedules = decision.run;
        this.log.info({ run: decision.run }, `Schedules of KernelChaos ${decision.run ? 'run here' : 'not run here'}: ${decision.reason}`);
      }
      if (this.stopped) return;
    }
    this.unsubscribe = this.options.store.on((event) => {
      this.index(event);
      this.trigger();
    });
    await this.options.store.start();
    // Built once from what start() listed (a store filled before start() sent no events for it);
    // events index one pod at a time from here on.
    this.podIndex = PodIndex.from(this.options.store.list('Pod'));
    this.podIndexBuilt = true;
    this.elector.start();
    const resync = this.options.resyncMs ?? 60_000;
    this.resyncTimer = setInterval(() => this.trigger(), resync);
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopDetecting.abort();
    this.unsubscribe?.();
    this.clearTimers();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.running;
    await this.elector.stop();
    this.options.store.stop();
  }

  private index(event: StoreEvent): void {
    if (event.kind !== 'Pod' || !this.podIndexBuilt) return;
    if (event.type === 'DELETED') this.podIndex.remove(event.object);
    else this.podIndex.put(event.object);
  }

  /** Asks for a reconcile (coalesced; only the leader runs it). */
  trigger(): void {
    if (this.stopped || !this.elector.isLeader || !this.options.store.synced) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      // Let a burst of store events land first.
      await new Promise((resolve) => setTimeout(resolve, this.options.debounceMs ?? 50));
      if (this.stopped || !this.elector.isLeader) return;
      try {
        await this.reconcileOnce();
      } catch (error) {
        this.log.error({ err: errorMessage(error) }, 'reconcile failed');
        this.scheduleRetry();
      }
    } while (this.again && !this.stopped);
  }

  private async reconcileOnce(): Promise<void> {
    const store = this.options.store;
    const started = performance.now();
    const cpu = process.cpuUsage();
    const result = reconcile({
      experiments: store.list('KernelChaos'),
      pods: [],
      podIndex: this.podIndex,
      namespaces: store.list('Namespace'),
      nodes: store.list('Node'),
      policies: store.list('KernelChaosPolicy'),
      reports: store.list('ConfigMap', this.options.namespace),
      now: this.now(),
      webhookNamespace: this.options.namespace,
      statusWrittenAt: this.statusWrittenAt,
      owner: this.owner,
      ...(this.profile.current ? { statusSchema: this.profile.current.kernelChaos.schema } : {}),
      ...(this.options.statusIntervalMs !== undefined ? { statusIntervalMs: this.options.statusIntervalMs } : {}),
    });
    const computeMs = performance.now() - started;
    const cpuUsed = process.cpuUsage(cpu);
    const computeCpuMs = (cpuUsed.user + cpuUsed.system) / 1000;
    const outcomes: ReconcileReport['outcomes'] = [];
    let failed = false;
    for (const action of result.actions) {
      if (this.stopped || !this.elector.isLeader) break;
      if (action.type === 'event') {
        const key = `${action.regarding.kind}/${action.regarding.namespace}/${action.regarding.name}/${action.reason}`;
        if (this.lastEvents.get(key) === action.message) continue;
        // Bounded: forgetting old entries at worst repeats one event.
        if (this.lastEvents.size > 10_000) this.lastEvents.clear();
        this.lastEvents.set(key, action.message);
      }
      const outcome = await this.executor.execute(action);
      outcomes.push({ action, outcome });
      if (outcome === 'fenced') break;
      if (outcome === 'done' && action.type === 'updateStatus') this.statusWrittenAt.set(`${action.namespace}/${action.name}`, this.now().getTime());
      if (outcome === 'failed') failed = true;
      else if (outcome === 'done') this.log.info({ action: describe(action) }, 'applied');
    }
    let wake = result.nextWakeAt;
    if (this.options.schedules && this.runSchedules && !this.stopped && this.elector.isLeader) {
      try {
        const at = await this.options.schedules.pass(this.now());
        if (at && (wake === undefined || at < wake)) wake = at;
      } catch (error) {
        this.log.warn({ err: errorMessage(error) }, 'schedule pass failed');
        failed = true;
      }
    }
    for (const ref of [...this.statusWrittenAt.keys()]) if (!result.plans.has(ref)) this.statusWrittenAt.delete(ref);
    if (failed) this.scheduleRetry();
    this.scheduleWake(wake);
    const passMs = performance.now() - started;
    for (const fn of this.reports) fn({ seconds: passMs / 1000, result, outcomes, computeMs, computeCpuMs, passMs });
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.trigger();
    }, this.options.retryMs ?? 2_000);
    this.retryTimer.unref();
  }

  private scheduleWake(at: Date | undefined): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (!at) return;
    // setTimeout's limit is ~24.8 days; a resync comes long before that anyway.
    const delay = Math.min(Math.max(0, at.getTime() - this.now().getTime()) + 10, 2 ** 31 - 1);
    this.wakeTimer = setTimeout(() => this.trigger(), delay);
    this.wakeTimer.unref();
  }

  private clearTimers(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeTimer = undefined;
    this.retryTimer = undefined;
  }
}
