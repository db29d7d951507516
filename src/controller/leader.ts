// Leader election over a coordination.k8s.io/v1 Lease, following client-go's leaderelection:
// a candidate takes the lease when it is free or its holder has not renewed it for
// leaseDuration *as observed locally* (so clock skew between replicas does not matter), the
// leader renews every retryPeriod and steps down when it could not renew within renewDeadline,
// and a leader that stops releases the lease so another replica takes over at once.
// Fencing: leadership is a term that ends, by a timer, renewDeadline after the start of the last
// successful renewal, whether or not the renewal round itself returns (a hung request must not keep
// a replica leading); the term's AbortSignal abandons every write still in flight. Because the
// renewal counts from when its request was sent, and another replica waits a full leaseDuration
// (> renewDeadline) from when it first saw that renewal, the old term is over before a new one starts.
// Hand-written: @kubernetes/client-node has no leader election.
import { CoordinationV1Api, PatchStrategy, V1MicroTime, setHeaderOptions, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { apiClient, DEFAULT_API_TIMEOUT_MS } from '../kube/client.js';
import type { Permission } from '../kube/permissions.js';
import { errorMessage, type Log } from '../kube/log.js';
import { apiErrorCode } from './errors.js';

/** readNamespacedLease, createNamespacedLease, patchNamespacedLease: in the release namespace only. */
export const LEADER_PERMISSIONS: readonly Permission[] = [{ group: 'coordination.k8s.io', resource: 'leases', verbs: ['get', 'create', 'patch'], scope: 'release-namespace' }];

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Deadline per Lease request. Default min(10 s, renewDeadline / 2). */
  requestTimeoutMs?: number;
  log: Log;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

export type LeaderState = { leading: false } | { leading: true; since: Date };

type Attempt = 'acquired' | 'held-by-other' | 'failed';

function ended(): AbortController {
  const c = new AbortController();
  c.abort(new Error('not leading'));
  return c;
}

function toMs(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string') {
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private current: LeaderState = { leading: false };
  private lastRenewMs = 0;
  /** The holder/renewTime/transitions last seen, and when (local clock) it was first seen. */
  private observed: { record: string; atMs: number } | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  private fenceTimer: NodeJS.Timeout | undefined;
  private term: AbortController = ended();

  constructor(kubeConfig: KubeConfig, private readonly options: LeaderElectionOptions) {
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.api = apiClient(kubeConfig, CoordinationV1Api, { timeoutMs: options.requestTimeoutMs ?? Math.min(DEFAULT_API_TIMEOUT_MS, Math.floor(this.renewDeadlineMs / 2)) });
    if (!(this.leaseDurationMs > this.renewDeadlineMs && this.renewDeadlineMs > this.retryPeriodMs && this.retryPeriodMs > 0)) {
      throw new Error('leader election needs leaseDuration > renewDeadline > retryPeriod > 0');
    }
  }

  get state(): LeaderState {
    return this.current;
  }

  /** Leading, and the last renewal is still within its deadline (even if the fence timer is late). */
  get isLeader(): boolean {
    return this.current.leading && Date.now() - this.lastRenewMs < this.renewDeadlineMs;
  }

  /** Aborted when the current term ends (already aborted while not leading). */
  get signal(): AbortSignal {
    return this.term.signal;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  /** Stops campaigning; a leader steps down and releases the lease. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    if (this.current.leading) {
      this.stepDown('stopping');
      await this.release();
    }
  }

  private tick(): void {
    if (!this.running) return;
    this.inFlight = this.round().catch((error: unknown) => {
      this.options.log.error({ err: errorMessage(error) }, 'leader election round failed');
    });
    void this.inFlight.then(() => {
      if (!this.running) return;
      // Jitter (as client-go) so candidates do not retry in lockstep.
      const delay = this.current.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + Math.random() * 0.2);
      this.timer = setTimeout(() => this.tick(), delay);
      this.timer.unref();
    });
  }

  private async round(): Promise<void> {
    const sentMs = Date.now();
    let outcome = await this.tryAcquireOrRenew();
    if (!this.running) return;
    const now = Date.now();
    // An answer that took longer than the deadline is too late: the term may already have been given up.
    if (outcome === 'acquired' && now - sentMs >= this.renewDeadlineMs) outcome = 'failed';
    if (outcome === 'acquired') {
      this.lastRenewMs = sentMs;
      this.armFence();
      if (!this.current.leading) {
        this.current = { leading: true, since: new Date(now) };
        this.term = new AbortController();
        this.options.log.info({ lease: this.leaseRef(), identity: this.options.identity }, 'became leader');
        this.options.onStartedLeading();
      }
      return;
    }
    if (this.current.leading && (outcome === 'held-by-other' || now - this.lastRenewMs > this.renewDeadlineMs)) {
      this.stepDown(outcome === 'held-by-other' ? 'another replica holds the lease' : 'could not renew within the renew deadline');
    }
  }

  /** Ends the term renewDeadline after the last renewal was sent, unless a later one lands first. */
  private armFence(): void {
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    const remaining = this.lastRenewMs + this.renewDeadlineMs - Date.now();
    this.fenceTimer = setTimeout(() => {
      this.fenceTimer = undefined;
      if (Date.now() - this.lastRenewMs >= this.renewDeadlineMs) this.stepDown('the renew deadline passed without a renewal');
      else this.armFence();
    }, Math.max(0, remaining));
    this.fenceTimer.unref();
  }

  private stepDown(why: string): void {
    if (!this.current.leading) return;
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    this.fenceTimer = undefined;
    this.current = { leading: false };
    this.term.abort(new Error(`stopped leading: ${why}`));
    this.options.log.warn({ lease: this.leaseRef(), identity: this.options.identity, why }, 'stopped leading');
    this.options.onStoppedLeading();
  }

  private leaseRef(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    const { namespace, name, identity } = this.options;
    let now = Date.now();
    const durationSeconds = Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ namespace, name });
    } catch (error) {
      if (apiErrorCode(error) !== 404) {
        this.options.log.warn({ lease: this.leaseRef(), err: errorMessage(error) }, 'reading the lease failed');
        return 'failed';
      }
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: new V1MicroTime(now), renewTime: new V1MicroTime(now), leaseTransitions: 0 },
          },
        });
        this.observed = { record: `${identity}|${now}|0`, atMs: now };
        return 'acquired';
      } catch (createError) {
        if (apiErrorCode(createError) === 409) return 'held-by-other';
        this.options.log.warn({ lease: this.leaseRef(), err: errorMessage(createError) }, 'creating the lease failed');
        return 'failed';
      }
    }
    // Observed when the answer arrived, not when it was asked for: a later instant only makes this
    // replica wait longer before it takes an expired lease.
    now = Date.now();
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewMs = toMs(spec.renewTime);
    const transitions = spec.leaseTransitions ?? 0;
    const record = `${holder}|${renewMs ?? ''}|${transitions}`;
    if (this.observed?.record !== record) this.observed = { record, atMs: now };
    const heldMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== '' && holder !== identity && this.observed.atMs + heldMs > now) return 'held-by-other';

    const mine = holder === identity;
    const body = {
      metadata: { resourceVersion: lease.metadata?.resourceVersion },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        renewTime: new V1MicroTime(now),
        acquireTime: mine && spec.acquireTime ? new V1MicroTime(toMs(spec.acquireTime) ?? now) : new V1MicroTime(now),
        leaseTransitions: mine ? transitions : transitions + 1,
      },
    };
    try {
      // A merge patch carrying the resourceVersion: a concurrent candidate makes it fail with 409.
      await this.api.patchNamespacedLease({ namespace, name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      this.observed = { record: `${identity}|${now}|${body.spec.leaseTransitions}`, atMs: now };
      return 'acquired';
    } catch (error) {
      if (apiErrorCode(error) === 409) return 'held-by-other';
      this.options.log.warn({ lease: this.leaseRef(), err: errorMessage(error) }, 'updating the lease failed');
      return 'failed';
    }
  }

  /** Gives the lease up (empty holder), so a standby replica need not wait for it to expire. */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    try {
      const lease = await this.api.readNamespacedLease({ namespace, name });
      if (lease.spec?.holderIdentity !== identity) return;
      await this.api.patchNamespacedLease(
        {
          namespace,
          name,
          body: { metadata: { resourceVersion: lease.metadata?.resourceVersion }, spec: { holderIdentity: null, leaseDurationSeconds: 1, renewTime: new V1MicroTime(Date.now()) } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      this.options.log.info({ lease: this.leaseRef(), identity }, 'released the lease');
    } catch (error) {
      this.options.log.warn({ lease: this.leaseRef(), err: errorMessage(error) }, 'releasing the lease failed; it expires by itself');
    }
  }
}
