// The companion's metrics. Fault and call counters are read from the kernel's per-program maps at
// scrape time (plus what programs removed since counted before they went), so a scrape sees the
// kernel's numbers, not a copy that lags by a polling interval. Labels stay bounded: experiment and
// namespace (a bpfki request counts under experiment="bpfki", whatever its pid); per-container
// series only when asked for (`podLabels`).
import type { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { EngineError, type ArmedFault, type ArmOptions, type FaultEngine } from '../bpf/types.js';
import type { ParsedFailKernRequest } from '../api/predicate/ast.js';
import type { InjectionChange, InjectionView } from '../companion/lifecycle.js';
import { SECONDS_BUCKETS, metricName } from './registry.js';

/** Companion and BpfkiInjector both are one of these. */
export interface InjectionSource extends Pick<EventEmitter<{ change: [InjectionChange] }>, 'on' | 'off'> {
  injections(): InjectionView[];
}

type SeriesLabels = { source: InjectionView['source']; namespace: string; experiment: string };

function seriesOf(v: InjectionView): SeriesLabels {
  return v.source === 'bpfki'
    ? { source: 'bpfki', namespace: '', experiment: 'bpfki' }
    : { source: v.source, namespace: v.experiment.namespace, experiment: v.experiment.name };
}

const keyOf = (l: SeriesLabels): string => `${l.source}\u0000${l.namespace}\u0000${l.experiment}`;

/** Why an arm failed, as a bounded label value. */
export type AttachFailureReason = EngineError['reason'] | 'other';

export interface CompanionMetricsOptions {
  /** Adds kernelchaos_companion_armed_container_info with pod and container labels. */
  podLabels?: boolean;
}

export class CompanionMetrics {
  private readonly sources: InjectionSource[] = [];
  private readonly listeners = new Map<InjectionSource, (c: InjectionChange) => void>();
  /** Totals of programs already removed, by series. */
  private readonly retired = new Map<string, { labels: SeriesLabels; calls: bigint; faults: bigint }>();
  /** What each counter last exported, to add only the difference. */
  private readonly exported = new Map<string, { calls: bigint; faults: bigint }>();

  private readonly faults: Counter<'source' | 'namespace' | 'experiment'>;
  private readonly calls: Counter<'source' | 'namespace' | 'experiment'>;
  readonly armLatency: Histogram<'mode'>;
  readonly cacheLookups: Counter<'result'>;
  readonly attachFailures: Counter<'reason'>;

  constructor(registry: Registry, opts: CompanionMetricsOptions = {}) {
    const registers = [registry];
    // Either counter's collect brings both up to date (the second finds nothing new).
    const sync = (): void => this.syncCounters();
    const views = (): InjectionView[] => this.views();
    this.faults = new Counter({
      name: metricName('companion', 'faults_injected_total'),
      help: 'Faults the kernel injected (site calls made to fail), by experiment.',
      labelNames: ['source', 'namespace', 'experiment'] as const,
      registers,
      collect: sync,
    });
    this.calls = new Counter({
      name: metricName('companion', 'site_calls_total'),
      help: 'Calls of the injection site seen in target containers (with a call chain: while the chain was complete), by experiment.',
      labelNames: ['source', 'namespace', 'experiment'] as const,
      registers,
      collect: sync,
    });
    new Gauge({
      name: metricName('companion', 'armed_programs'),
      help: 'Fault programs attached to the kernel now, by attach mode (trampoline, or the kprobe fallback).',
      labelNames: ['mode'] as const,
      registers,
      collect() {
        this.reset();
        for (const mode of ['trampoline', 'kprobe'] as const) this.set({ mode }, 0);
        for (const v of views()) this.inc({ mode: v.mode });
      },
    });
    new Gauge({
      name: metricName('companion', 'armed_containers'),
      help: 'Containers on this node an attached program targets now, by experiment.',
      labelNames: ['namespace', 'experiment'] as const,
      registers,
      collect() {
        this.reset();
        for (const v of views()) if (v.source === 'kernelchaos') this.inc({ namespace: v.experiment.namespace, experiment: v.experiment.name }, v.containers.length);
      },
    });
    if (opts.podLabels) {
      new Gauge({
        name: metricName('companion', 'armed_container_info'),
        help: 'One series per targeted container with an attached program (1); pod-level labels, enabled by --metrics-pod-labels.',
        labelNames: ['namespace', 'experiment', 'pod_namespace', 'pod', 'container'] as const,
        registers,
        collect() {
          this.reset();
          for (const v of views()) {
            for (const id of v.containers) {
              const [podNamespace = '', pod = '', container = ''] = id.split('/');
              this.set({ namespace: v.experiment.namespace, experiment: v.experiment.name, pod_namespace: podNamespace, pod, container }, 1);
            }
          }
        },
      });
    }
    this.armLatency = new Histogram({
      name: metricName('companion', 'arm_duration_seconds'),
      help: 'Time to arm a fault: generate, compile (or take from the cache), load and attach, by attach mode.',
      labelNames: ['mode'] as const,
      buckets: [...SECONDS_BUCKETS],
      registers,
    });
    this.cacheLookups = new Counter({
      name: metricName('companion', 'compile_cache_lookups_total'),
      help: 'Compiled-program cache lookups when arming, by result (hit, miss).',
      labelNames: ['result'] as const,
      registers,
    });
    this.attachFailures = new Counter({
      name: metricName('companion', 'attach_failures_total'),
      help: 'Faults that could not be armed, by reason (missing-symbol, verifier-rejected, compile-failed, ...).',
      labelNames: ['reason'] as const,
      registers,
    });
  }

  /** Counts the injections of `source` (a Companion, a BpfkiInjector). */
  watch(source: InjectionSource): void {
    const listener = (c: InjectionChange): void => {
      if (c.kind !== 'disarmed') return;
      // The program is gone: keep its final numbers so the series never goes down.
      const labels = seriesOf(c.injection);
      const k = keyOf(labels);
      const r = this.retired.get(k) ?? { labels, calls: 0n, faults: 0n };
      r.calls += c.injection.calls;
      r.faults += c.injection.faults;
      this.retired.set(k, r);
    };
    source.on('change', listener);
    this.listeners.set(source, listener);
    this.sources.push(source);
  }

  close(): void {
    for (const [source, listener] of this.listeners) source.off('change', listener);
    this.listeners.clear();
  }

  /** Wraps an engine so arming is timed and its cache use and failures are counted. */
  instrument(engine: FaultEngine): FaultEngine {
    return {
      arm: async (request: ParsedFailKernRequest, cgroups: readonly bigint[], options?: ArmOptions): Promise<ArmedFault> => {
        const started = performance.now();
        let fault: ArmedFault;
        try {
          fault = await engine.arm(request, cgroups, options);
        } catch (err) {
          this.attachFailures.inc({ reason: err instanceof EngineError ? err.reason : 'other' });
          throw err;
        }
        this.armLatency.observe({ mode: fault.mode }, (performance.now() - started) / 1000);
        const cached = fromCache(fault);
        if (cached !== undefined) this.cacheLookups.inc({ result: cached ? 'hit' : 'miss' });
        return fault;
      },
    };
  }

  private views(): InjectionView[] {
    return this.sources.flatMap((s) => s.injections());
  }

  private syncCounters(): void {
    const totals = new Map<string, { labels: SeriesLabels; calls: bigint; faults: bigint }>();
    for (const r of this.retired.values()) totals.set(keyOf(r.labels), { ...r });
    for (const v of this.views()) {
      const labels = seriesOf(v);
      const k = keyOf(labels);
      const t = totals.get(k) ?? { labels, calls: 0n, faults: 0n };
      t.calls += v.calls;
      t.faults += v.faults;
      totals.set(k, t);
    }
    for (const [k, t] of totals) {
      const before = this.exported.get(k) ?? { calls: 0n, faults: 0n };
      // A program that lost its maps reads as zero for a moment; never count backwards.
      const dCalls = t.calls > before.calls ? t.calls - before.calls : 0n;
      const dFaults = t.faults > before.faults ? t.faults - before.faults : 0n;
      // Touch the series even at zero so an armed experiment shows up before its first fault.
      this.calls.inc(t.labels, Number(dCalls));
      this.faults.inc(t.labels, Number(dFaults));
      this.exported.set(k, { calls: before.calls + dCalls, faults: before.faults + dFaults });
    }
  }
}

/** The real engine says whether the object came from the compile cache; others do not. */
function fromCache(fault: ArmedFault): boolean | undefined {
  const details: unknown = (fault as { details?: unknown }).details;
  if (typeof details !== 'object' || details === null || !('cached' in details)) return undefined;
  return typeof details.cached === 'boolean' ? details.cached : undefined;
}
