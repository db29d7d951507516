// The effectful half of the companion: keeps the kernel in line with plan(). One ArmedFault per
// experiment (one program for all its containers on this node), retargeted as containers come and
// go, disarmed when its window closes, its spec changes, it is deleted, or its pods stop being
// targeted. Reconciles are serialized; a timer wakes at the next schedule boundary, never polls.
import { EventEmitter } from 'node:events';
import type { V1Pod } from '@kubernetes/client-node';
import type { ContainerRecord, KernelChaos } from '../api/types.js';
import { companionBudget, describeBudget, type AllotmentEntry, type BudgetSource } from '../api/budget.js';
import { parseAllotments } from '../kube/reports.js';
import { EXPERIMENTS_ANNOTATION, experimentLabelKey, parseExperimentsAnnotation } from '../api/labels.js';
import type { ArmedFault, ArmOptions, FaultEngine } from '../bpf/types.js';
import type { ClusterStore, StoreEvent } from '../kube/store.js';
import type { CronParser } from '../schedule/phase.js';
import type { CgroupResolver } from './cgroup-resolver.js';
import { ResolutionCache } from './resolution-cache.js';
import { containerRecordId, type ExperimentId, type ValidationOutcome, type Validate } from './model.js';
import { DEFAULT_RELEASE_NAMESPACE } from '../admission/gate.js';
import { containersToResolve, isTargetedPodOnNode, plan, type DesiredInjection, type Plan } from './plan.js';
import { advance, newRecord, toContainerRecord, type Desired, type LiveRecord, type Transition } from './records.js';
import type { ReportedBudget, StatusSink } from './sink.js';

export interface Clock {
  now(): Date;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => new Date(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface CompanionLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CompanionOptions {
  node: string;
  store: ClusterStore;
  engine: FaultEngine;
  resolver: Pick<CgroupResolver, 'resolve'>;
  validate: Validate;
  parseCron: CronParser;
  sink: StatusSink;
  log: CompanionLogger;
  clock?: Clock;
  armOptions?: ArmOptions;
  /** How often to read the counters of armed programs into the records (default 5 s; only while something is armed). */
  countersIntervalMs?: number;
  /** Coalesces bursts of store events into one reconcile (default 20 ms). */
  debounceMs?: number;
  /** kernelchaos's own namespace (never faulted); default kernelchaos-system. */
  releaseNamespace?: string;
  /** This node's records from its earlier run, by experiment uid (its node reports); preferred over the status. */
  seedRecords?: ReadonlyMap<string, readonly ContainerRecord[]>;
}

/** One attached program, as gRPC and status report it. */
export interface InjectionView {
  key: string;
  experiment: ExperimentId;
  source: 'kernelchaos' | 'bpfki';
  cgroupIds: bigint[];
  containers: string[];
  mode: ArmedFault['mode'];
  armedAt: Date;
  closesAt: Date | null;
  calls: bigint;
  faults: bigint;
}

export type InjectionChange =
  | { kind: 'armed' | 'disarmed' | 'retargeted' | 'counters'; injection: InjectionView; reason: string; at: Date }
  | { kind: 'failed'; experiment: ExperimentId; reason: string; at: Date };

interface Armed {
  key: string;
  experiment: ExperimentId;
  fault: ArmedFault;
  cgroupIds: bigint[];
  containers: string[];
  armedAt: Date;
  closesAt: Date | null;
  lastFaults: bigint;
  /** spec.failKernRequest.times, and the budget the program obeys under it (undefined without `times`). */
  times: number;
  budget: BudgetSource | undefined;
}

interface ArmFailure {
  reason: string;
  attempts: number;
  retryAt: Date;
  cgroupIds: string;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export class Companion extends EventEmitter<{ change: [InjectionChange] }> {
  private readonly clock: Clock;
  private readonly armed = new Map<string, Armed>(); // by experiment uid
  private readonly armFailures = new Map<string, ArmFailure>(); // by injection key
  private readonly records = new Map<string, LiveRecord>(); // by `${uid}|ns/pod/container`
  private readonly faultBase = new Map<string, bigint>(); // faults of earlier programs, by uid
  private readonly firstSeen = new Map<string, Date>();
  private readonly resolutions: ResolutionCache;
  private readonly validations = new Map<string, ValidationOutcome>();
  private readonly published = new Map<string, string>();
  private lastPlan: Plan = { experiments: [], injections: [], nextWake: null };
  private unsubscribe: (() => void) | undefined;
  private wakeTimer: unknown;
  private debounceTimer: unknown;
  private countersTimer: unknown;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly opts: CompanionOptions) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.resolutions = new ResolutionCache(opts.resolver);
  }

  get node(): string {
    return this.opts.node;
  }

  /** Subscribes to the store (which the caller has started) and reconciles once. */
  async start(): Promise<void> {
    this.unsubscribe = this.opts.store.on((e) => this.onStoreEvent(e));
    await this.reconcile();
  }

  /** Detaches everything and records why (SIGTERM). Idempotent. */
  async stop(reason = 'companion stopped'): Promise<void> {
    if (this.stopped) return this.running;
    this.stopped = true;
    this.unsubscribe?.();
    for (const t of [this.wakeTimer, this.debounceTimer, this.countersTimer]) if (t !== undefined) this.clock.clearTimeout(t);
    await this.running?.catch(() => undefined);
    const now = this.clock.now();
    for (const uid of [...this.armed.keys()]) this.disarm(uid, reason, now);
    for (const r of this.records.values()) this.note(advance(r, { phase: 'Not Injected', reason }, now));
    this.publish();
    this.opts.log.info({ node: this.opts.node }, `all faults detached: ${reason}`);
    await this.opts.sink.flush();
  }

  /** Runs a reconcile now (or right after the one in progress) and resolves when it is done. */
  reconcile(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.reconcileOnce();
        } while (this.again && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Resolves when no reconcile is running. */
  async whenIdle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  /** When the companion will next wake by itself (schedule boundary or retry), for tests and status. */
  nextWakeAt(): Date | null {
    return this.computeWake(this.clock.now());
  }

  injections(): InjectionView[] {
    return [...this.armed.values()].map((a) => this.view(a));
  }

  currentPlan(): Plan {
    return this.lastPlan;
  }

  recordsOf(namespace: string, name: string): LiveRecord[] {
    return [...this.records.values()].filter((r) => r.experiment.namespace === namespace && r.experiment.name === name);
  }

  private onStoreEvent(e: StoreEvent): void {
    if (e.kind === 'Node') return;
    if (e.kind === 'Pod' && !this.podMatters(e.object)) return;
    if (this.debounceTimer !== undefined) return;
    this.debounceTimer = this.clock.setTimeout(() => {
      this.debounceTimer = undefined;
      void this.reconcile().catch((err: unknown) => this.opts.log.error({ err: String(err) }, 'reconcile failed'));
    }, this.opts.debounceMs ?? 20);
  }

  /** A pod event matters if the pod is on this node (a pod leaving the target set must still be seen). */
  private podMatters(pod: V1Pod): boolean {
    return pod.spec?.nodeName === this.opts.node;
  }

  private async reconcileOnce(): Promise<void> {
    const now = this.clock.now();
    const { store, node } = this.opts;
    const pods = store.list('Pod').filter((p) => isTargetedPodOnNode(p, node));
    const experiments = store.list('KernelChaos');
    this.trackFirstSeen(experiments, now);
    const validate = this.memoValidate(experiments);
    const base = {
      node,
      now,
      pods,
      experiments,
      firstSeen: (uid: string) => this.firstSeen.get(uid),
      validate,
      parseCron: this.opts.parseCron,
      gate: {
        namespace: (name: string) => store.get('Namespace', undefined, name),
        policies: store.list('KernelChaosPolicy'),
        releaseNamespace: this.opts.releaseNamespace ?? DEFAULT_RELEASE_NAMESPACE,
      },
    };
    await this.resolutions.update(containersToResolve(base), pods, now);
    const next = plan({ ...base, resolutions: this.resolutions.resolutions() });
    this.lastPlan = next;
    if (this.stopped) return;
    await this.apply(next, now);
    this.updateRecords(next, experiments, now);
    this.publish();
    this.scheduleWake();
  }

  private trackFirstSeen(experiments: readonly KernelChaos[], now: Date): void {
    const live = new Set<string>();
    for (const chaos of experiments) {
      const uid = chaos.metadata.uid ?? `${chaos.metadata.namespace ?? 'default'}/${chaos.metadata.name ?? ''}`;
      live.add(uid);
      if (!this.firstSeen.has(uid)) this.firstSeen.set(uid, now);
    }
    for (const uid of this.firstSeen.keys()) if (!live.has(uid)) this.firstSeen.delete(uid);
  }

  private memoValidate(experiments: readonly KernelChaos[]): Validate {
    // Validation parses predicates; do it once per spec, not on every reconcile.
    const seen = new Set<string>();
    const validate = this.opts.validate;
    const memo = this.validations;
    const keyOf = (c: KernelChaos): string => `${c.metadata.uid ?? ''}|${JSON.stringify(c.spec)}|${c.metadata.generation ?? 0}`;
    for (const c of experiments) seen.add(keyOf(c));
    for (const k of memo.keys()) if (!seen.has(k)) memo.delete(k);
    return (input: unknown) => {
      const c = input as KernelChaos;
      const k = keyOf(c);
      let v = memo.get(k);
      if (!v) memo.set(k, (v = validate(c)));
      return v;
    };
  }

  private async apply(next: Plan, now: Date): Promise<void> {
    const desiredByUid = new Map(next.injections.map((d) => [d.experiment.uid, d]));
    for (const [uid, a] of [...this.armed]) {
      const d = desiredByUid.get(uid);
      if (!d) this.disarm(uid, this.whyGone(uid, next), now);
      else if (d.key !== a.key) this.disarm(uid, 'the KernelChaos changed; re-arming with the new spec', now);
    }
    const livekeys = new Set(next.injections.map((d) => d.key));
    for (const k of this.armFailures.keys()) if (!livekeys.has(k)) this.armFailures.delete(k);

    const toArm: DesiredInjection[] = [];
    for (const d of next.injections) {
      const armed = this.armed.get(d.experiment.uid);
      const allotment = d.parsed.times > 0 ? this.allotmentFor(d.experiment.uid)?.allotment : undefined;
      if (armed && allotment !== undefined && (armed.budget?.kind !== 'allotment' || armed.budget.allotment !== allotment)) {
        // The program's counter was set for another budget: re-arm under the controller's allotment.
        this.disarm(d.experiment.uid, `the times allotment for this node is now ${allotment}; re-arming under it`, now);
      }
      const a = this.armed.get(d.experiment.uid);
      if (a) {
        if (!sameIds(a.cgroupIds, d.cgroupIds)) this.retarget(a, d, now);
        a.closesAt = d.closesAt;
        continue;
      }
      const failure = this.armFailures.get(d.key);
      if (failure && failure.retryAt > now && failure.cgroupIds === idsKey(d.cgroupIds)) continue;
      toArm.push(d);
    }
    await Promise.all(toArm.map((d) => this.arm(d, next, now)));
  }

  private whyGone(uid: string, next: Plan): string {
    const exp = next.experiments.find((e) => e.id.uid === uid);
    if (!exp) return 'the KernelChaos was deleted or no pod on this node is targeted any more';
    const s = exp.schedule;
    if (s.phase === 'active') return 'no targeted container is running';
    if (s.phase === 'paused') return 'paused';
    if (s.phase === 'waiting') return `the run ended; the next opens at ${s.nextOpen.toISOString()}`;
    if (s.phase === 'finished' || s.phase === 'held') return s.reason;
    return s.phase;
  }

  private async arm(d: DesiredInjection, next: Plan, now: Date): Promise<void> {
    let fault: ArmedFault;
    let budget: { source: BudgetSource; claimed: number } | undefined;
    try {
      budget = this.budgetFor(d);
      const claimed = budget?.claimed ?? 0;
      fault = await this.opts.engine.arm(d.parsed, d.cgroupIds, { ...this.opts.armOptions, ...(claimed > 0 ? { claimed } : {}) });
    } catch (err) {
      const reason = `arming failed: ${err instanceof Error ? err.message : String(err)}`;
      const previous = this.armFailures.get(d.key);
      const attempts = (previous?.attempts ?? 0) + 1;
      // Kernel refusals rarely fix themselves: back off from 5 s to 5 min.
      const retryAt = new Date(now.getTime() + Math.min(300_000, 5000 * 2 ** (attempts - 1)));
      this.armFailures.set(d.key, { reason, attempts, retryAt, cgroupIds: idsKey(d.cgroupIds) });
      this.opts.log.warn({ experiment: `${d.experiment.namespace}/${d.experiment.name}`, attempts }, reason);
      this.emit('change', { kind: 'failed', experiment: d.experiment, reason, at: now });
      return;
    }
    if (this.stopped || this.armed.has(d.experiment.uid)) {
      // Stopped (or raced) while the kernel was loading: never leave it attached.
      safeDisarm(fault, this.opts.log);
      return;
    }
    this.armFailures.delete(d.key);
    // Compiling can take seconds: the fault is armed now, not when this reconcile began.
    const armedAt = this.clock.now();
    const a: Armed = {
      key: d.key,
      experiment: d.experiment,
      fault,
      cgroupIds: [...d.cgroupIds],
      containers: containersOf(next, d),
      armedAt,
      closesAt: d.closesAt,
      lastFaults: 0n,
      times: d.parsed.times,
      budget: budget?.source,
    };
    this.armed.set(d.experiment.uid, a);
    const budgetText = budget ? describeBudget(d.parsed.times, budget.source) : undefined;
    this.opts.log.info(
      { experiment: `${d.experiment.namespace}/${d.experiment.name}`, cgroups: d.cgroupIds.map(String), mode: fault.mode, mechanism: fault.mechanism, ...(budgetText ? { budget: budgetText } : {}) },
      'fault armed',
    );
    this.emit('change', { kind: 'armed', injection: this.view(a), reason: `window open; ${mechanismOf(a)}`, at: armedAt });
  }

  /**
   * The new program's `times` budget and where its counter starts (src/api/budget.ts): the
   * controller's allotment for this node, or while there is none the even share over the nodes with
   * target pods and what the other nodes' status records leave; minus this node's earlier programs
   * (or its records after a restart).
   */
  private budgetFor(d: DesiredInjection): { source: BudgetSource; claimed: number } | undefined {
    if (d.parsed.times <= 0) return undefined;
    const { namespace, name, uid } = d.experiment;
    const chaos = this.opts.store.list('KernelChaos').find((c) => (c.metadata.uid ?? `${c.metadata.namespace ?? 'default'}/${c.metadata.name ?? ''}`) === uid);
    const records = chaos?.status?.experiment?.containerRecords ?? [];
    const ref = `${namespace}/${name}`;
    const labelKey = experimentLabelKey(namespace, name);
    const nodes = this.opts.store
      .list('Pod')
      .filter((p) => p.metadata?.labels?.[labelKey] !== undefined || parseExperimentsAnnotation(p.metadata?.annotations?.[EXPERIMENTS_ANNOTATION]).includes(ref))
      .map((p) => p.spec?.nodeName)
      .filter((n): n is string => typeof n === 'string' && n !== '');
    const usedHere = Number(this.faultBase.get(uid) ?? 0n);
    return companionBudget({ times: d.parsed.times, node: this.opts.node, usedHere, records, nodes, allotment: this.allotmentFor(uid)?.allotment });
  }

  /** The controller's entry for this node and experiment (its allotments object), if written. */
  private allotmentFor(uid: string): AllotmentEntry | undefined {
    for (const cm of this.opts.store.list('ConfigMap')) {
      const a = parseAllotments(cm);
      if (a?.node === this.opts.node) return a.allotments[uid];
    }
    return undefined;
  }

  /**
   * What this node's report says it obeys: the armed program's budget, else the entry it would arm
   * with; the entry's version only when that is what it obeys (the controller returns unused budget
   * to the pool only once a node echoes the entry that took it back).
   */
  private reportedBudget(uid: string): ReportedBudget | undefined {
    const armed = this.armed.get(uid)?.budget;
    const entry = this.allotmentFor(uid);
    if (armed && (armed.kind !== 'allotment' || entry?.allotment !== armed.allotment)) return { allotment: armed.allotment, source: armed.kind };
    return entry ? { allotment: entry.allotment, source: 'allotment', version: entry.version } : undefined;
  }

  private retarget(a: Armed, d: DesiredInjection, now: Date): void {
    try {
      a.fault.setTargetCgroups(d.cgroupIds);
      a.cgroupIds = [...d.cgroupIds];
      a.containers = containersOf(this.lastPlan, d);
      this.emit('change', { kind: 'retargeted', injection: this.view(a), reason: 'targeted containers changed', at: now });
    } catch (err) {
      const reason = `retargeting failed: ${err instanceof Error ? err.message : String(err)}`;
      this.disarm(a.experiment.uid, reason, now);
      this.armFailures.set(d.key, { reason, attempts: 1, retryAt: new Date(now.getTime() + 5000), cgroupIds: idsKey(d.cgroupIds) });
    }
  }

  private disarm(uid: string, reason: string, now: Date): void {
    const a = this.armed.get(uid);
    if (!a) return;
    this.armed.delete(uid);
    const view = this.view(a);
    this.faultBase.set(uid, (this.faultBase.get(uid) ?? 0n) + view.faults);
    safeDisarm(a.fault, this.opts.log);
    this.opts.log.info({ experiment: `${a.experiment.namespace}/${a.experiment.name}`, faults: String(view.faults) }, `fault disarmed: ${reason}`);
    this.emit('change', { kind: 'disarmed', injection: view, reason, at: now });
  }

  private updateRecords(next: Plan, experiments: readonly KernelChaos[], now: Date): void {
    const seen = new Set<string>();
    const byUid = new Map(experiments.map((c) => [c.metadata.uid ?? `${c.metadata.namespace ?? 'default'}/${c.metadata.name ?? ''}`, c]));
    for (const exp of next.experiments) {
      const a = this.armed.get(exp.id.uid);
      const failure = this.armFailures.get(exp.key);
      for (const c of exp.containers) {
        const recordKey = `${exp.id.uid}|${containerRecordId(c.container)}`;
        seen.add(recordKey);
        let r = this.records.get(recordKey);
        if (!r) {
          const seed = (this.opts.seedRecords?.get(exp.id.uid) ?? byUid.get(exp.id.uid)?.status?.experiment?.containerRecords)?.find(
            (x) => x.id === containerRecordId(c.container) && (x.node === undefined || x.node === this.opts.node),
          );
          r = newRecord(exp.id, c.container, seed);
          this.records.set(recordKey, r);
          if (seed?.faultsInjected && !this.faultBase.has(exp.id.uid)) this.faultBase.set(exp.id.uid, BigInt(seed.faultsInjected));
        }
        let desired: Desired;
        if (c.want === 'inject') {
          if (a && a.cgroupIds.includes(c.cgroupId)) desired = { phase: 'Injected', containerId: c.containerId, cgroupId: c.cgroupId, mechanism: mechanismOf(a) };
          else desired = { phase: 'Failed', reason: failure?.reason ?? 'not armed yet', containerId: c.containerId };
        } else if (c.want === 'idle') {
          desired = { phase: 'Not Injected', reason: c.reason, ...(c.containerId ? { containerId: c.containerId } : {}) };
        } else {
          desired = { phase: 'Failed', reason: c.reason, ...(c.containerId ? { containerId: c.containerId } : {}) };
        }
        this.note(advance(r, desired, now));
      }
    }
    // Records whose container is no longer targeted (pod gone, label removed, experiment deleted).
    const liveUids = new Set(experiments.map((c) => c.metadata.uid ?? `${c.metadata.namespace ?? 'default'}/${c.metadata.name ?? ''}`));
    for (const [key, r] of [...this.records]) {
      if (seen.has(key)) continue;
      if (!liveUids.has(r.experiment.uid)) {
        this.note(advance(r, { phase: 'Not Injected', reason: 'the KernelChaos was deleted' }, now));
        this.records.delete(key);
        this.faultBase.delete(r.experiment.uid);
        this.published.delete(r.experiment.uid);
      } else {
        this.note(advance(r, { phase: 'Not Injected', reason: 'the pod is gone or no longer targeted' }, now));
      }
    }
    this.refreshCounters();
  }

  /** Copies program counters into records; true when any changed. */
  private refreshCounters(): boolean {
    let changed = false;
    for (const r of this.records.values()) {
      const a = this.armed.get(r.experiment.uid);
      const faults = Number((this.faultBase.get(r.experiment.uid) ?? 0n) + (a ? this.view(a).faults : 0n));
      if (faults !== r.faultsInjected) {
        r.faultsInjected = faults;
        changed = true;
      }
    }
    return changed;
  }

  private note(t: Transition | null): void {
    if (!t) return;
    const { record } = t;
    const type = t.kind === 'failed' ? 'Warning' : 'Normal';
    const reason = { injected: 'FaultInjected', recovered: 'FaultRecovered', failed: 'FaultFailed', reattached: 'FaultReattached' }[t.kind];
    const c = record.container;
    this.opts.sink.event({ involved: { kind: 'Pod', namespace: c.namespace, name: c.pod }, type, reason, message: `${record.experiment.namespace}/${record.experiment.name}: container ${c.container}: ${t.message}` });
    this.opts.sink.event({
      involved: { kind: 'KernelChaos', namespace: record.experiment.namespace, name: record.experiment.name, ...(record.experiment.uid.includes('/') ? {} : { uid: record.experiment.uid }) },
      type,
      reason,
      message: `${containerRecordId(c)} on ${this.opts.node}: ${t.message}`,
    });
  }

  /** Hands each experiment's records to the sink when they changed since the last time. */
  private publish(): void {
    const byExperiment = new Map<string, { id: ExperimentId; records: LiveRecord[] }>();
    for (const r of this.records.values()) {
      let e = byExperiment.get(r.experiment.uid);
      if (!e) byExperiment.set(r.experiment.uid, (e = { id: r.experiment, records: [] }));
      e.records.push(r);
    }
    for (const [uid, { id, records }] of byExperiment) {
      const out = records.map((r) => toContainerRecord(r, this.opts.node)).sort((a, b) => a.id.localeCompare(b.id));
      const budget = this.reportedBudget(uid);
      const text = JSON.stringify([out, budget]);
      if (this.published.get(uid) === text) continue;
      this.published.set(uid, text);
      this.opts.sink.records(id, out, budget);
    }
  }

  private computeWake(now: Date): Date | null {
    let wake = this.lastPlan.nextWake;
    const consider = (d: Date | null): void => {
      if (d !== null && (wake === null || d < wake)) wake = d;
    };
    for (const f of this.armFailures.values()) consider(f.retryAt);
    consider(this.resolutions.nextRetry());
    if (wake !== null && wake < now) return now;
    return wake;
  }

  private scheduleWake(): void {
    if (this.stopped) return;
    if (this.wakeTimer !== undefined) this.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    const now = this.clock.now();
    const wake = this.computeWake(now);
    if (wake !== null) {
      const ms = Math.min(MAX_TIMER_MS, Math.max(0, wake.getTime() - now.getTime()));
      this.wakeTimer = this.clock.setTimeout(() => {
        this.wakeTimer = undefined;
        void this.reconcile().catch((err: unknown) => this.opts.log.error({ err: String(err) }, 'reconcile failed'));
      }, ms);
    }
    // Counters move only while something is armed; read them then, and only then.
    if (this.armed.size === 0 && this.countersTimer !== undefined) {
      this.clock.clearTimeout(this.countersTimer);
      this.countersTimer = undefined;
    }
    if (this.armed.size > 0 && this.countersTimer === undefined) {
      this.countersTimer = this.clock.setTimeout(() => this.pollCounters(), this.opts.countersIntervalMs ?? 5000);
    }
  }

  private pollCounters(): void {
    this.countersTimer = undefined;
    if (this.stopped) return;
    const now = this.clock.now();
    for (const a of this.armed.values()) {
      const v = this.view(a);
      if (v.faults !== a.lastFaults) {
        a.lastFaults = v.faults;
        this.emit('change', { kind: 'counters', injection: v, reason: 'counters moved', at: now });
      }
    }
    if (this.refreshCounters()) this.publish();
    if (this.armed.size > 0) this.countersTimer = this.clock.setTimeout(() => this.pollCounters(), this.opts.countersIntervalMs ?? 5000);
  }

  private view(a: Armed): InjectionView {
    let calls = 0n;
    let faults = 0n;
    try {
      ({ calls, faults } = a.fault.counters());
    } catch {
      // A program whose maps are gone reads as zero rather than failing a status call.
    }
    return {
      key: a.key,
      experiment: a.experiment,
      source: 'kernelchaos',
      cgroupIds: [...a.cgroupIds],
      containers: [...a.containers],
      mode: a.fault.mode,
      armedAt: a.armedAt,
      closesAt: a.closesAt,
      calls,
      faults,
    };
  }
}

/** How the program injects and, with `times`, which budget it obeys (records, Events and run output say it). */
function mechanismOf(a: Armed): string {
  return a.budget ? `${a.fault.mechanism}; ${describeBudget(a.times, a.budget)}` : a.fault.mechanism;
}

function containersOf(p: Plan, d: DesiredInjection): string[] {
  const exp = p.experiments.find((e) => e.key === d.key);
  return (exp?.containers ?? []).filter((c) => c.want === 'inject').map((c) => containerRecordId(c.container));
}

function safeDisarm(fault: ArmedFault, log: CompanionLogger): void {
  try {
    fault.disarm();
  } catch (err) {
    log.error({ fault: fault.id, err: String(err) }, 'disarm failed');
  }
}

function idsKey(ids: readonly bigint[]): string {
  return ids.map(String).join(',');
}

function sameIds(a: readonly bigint[], b: readonly bigint[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
