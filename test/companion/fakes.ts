// Test doubles for the companion's collaborators. The kernel is never faked in a test called e2e:
// these serve unit tests of the lifecycle only; the VM test uses the real engine.
import type { V1Pod } from '@kubernetes/client-node';
import type { ParsedFailKernRequest } from '../../src/api/predicate/ast.js';
import type { KernelChaos } from '../../src/api/types.js';
import type { ArmedFault, ArmOptions, FaultCounters, FaultEngine } from '../../src/bpf/types.js';
import type { ClusterStore, KindMap, StoreEvent, WatchedKind } from '../../src/kube/store.js';
import type { Clock } from '../../src/companion/lifecycle.js';
import type { ValidationOutcome } from '../../src/companion/model.js';
import type { CompanionEvent, ReportedBudget, StatusSink } from '../../src/companion/sink.js';
import type { ContainerRecord } from '../../src/api/types.js';
import type { CronParser } from '../../src/schedule/phase.js';

export class FakeStore implements ClusterStore {
  synced = true;
  private objects = new Map<string, KindMap[WatchedKind]>();
  private listeners = new Set<(e: StoreEvent) => void>();
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): void {}
  list<K extends WatchedKind>(kind: K, namespace?: string): KindMap[K][] {
    return [...this.objects.entries()]
      .filter(([k]) => k.startsWith(`${kind}|`))
      .map(([, v]) => v as KindMap[K])
      .filter((o) => namespace === undefined || o.metadata?.namespace === namespace);
  }
  get<K extends WatchedKind>(kind: K, namespace: string | undefined, name: string): KindMap[K] | undefined {
    return this.objects.get(`${kind}|${namespace ?? ''}/${name}`) as KindMap[K] | undefined;
  }
  on(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  put<K extends WatchedKind>(kind: K, object: KindMap[K]): void {
    const key = `${kind}|${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
    const type = this.objects.has(key) ? 'MODIFIED' : 'ADDED';
    this.objects.set(key, structuredClone(object));
    for (const l of this.listeners) l({ type, kind, object } as StoreEvent);
  }
  remove<K extends WatchedKind>(kind: K, namespace: string, name: string): void {
    const key = `${kind}|${namespace}/${name}`;
    const object = this.objects.get(key);
    if (!object) return;
    this.objects.delete(key);
    for (const l of this.listeners) l({ type: 'DELETED', kind, object } as StoreEvent);
  }
}

export class FakeArmedFault implements ArmedFault {
  readonly mode = 'trampoline' as const;
  readonly mechanism = 'should_failslab (fmod_ret)';
  disarmed = false;
  targets: bigint[];
  faults = 0n;
  calls = 0n;
  retargets: bigint[][] = [];
  constructor(readonly id: string, readonly request: ParsedFailKernRequest, targets: readonly bigint[], readonly options: ArmOptions = {}) {
    this.targets = [...targets];
  }
  counters(): FaultCounters {
    return { calls: this.calls, faults: this.faults };
  }
  setTargetCgroups(ids: readonly bigint[]): void {
    if (this.disarmed) throw new Error('retargeting a disarmed fault');
    this.targets = [...ids];
    this.retargets.push([...ids]);
  }
  disarm(): void {
    this.disarmed = true;
  }
}

/** Records arms; `failNext` makes the next arms reject the way the engine does. */
export class FakeEngine implements FaultEngine {
  arms: FakeArmedFault[] = [];
  failNext: string[] = [];
  /** When set, arm waits for this promise (a slow compile). */
  gate: Promise<void> | undefined;
  /** arm() calls made, including those still waiting at the gate. */
  calls = 0;
  private n = 0;
  async arm(request: ParsedFailKernRequest, targets: readonly bigint[], options?: ArmOptions): Promise<ArmedFault> {
    this.calls += 1;
    if (this.gate) await this.gate;
    const failure = this.failNext.shift();
    if (failure !== undefined) throw new Error(failure);
    const f = new FakeArmedFault(`fake-${++this.n}`, request, targets, options);
    this.arms.push(f);
    return f;
  }
  live(): FakeArmedFault[] {
    return this.arms.filter((a) => !a.disarmed);
  }
}

export class FakeClock implements Clock {
  private timers = new Map<number, { at: number; fn: () => void }>();
  private seq = 0;
  constructor(private current: number) {}
  now(): Date {
    return new Date(this.current);
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.current + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves the clock to `to`, firing due timers in order (each at its own time). */
  advanceTo(to: Date): void {
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= to.getTime()).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.current = Math.max(this.current, due[1].at);
      due[1].fn();
    }
    this.current = to.getTime();
  }
  pending(): number[] {
    return [...this.timers.values()].map((t) => t.at).sort((a, b) => a - b);
  }
}

export class MemorySink implements StatusSink {
  written = new Map<string, ContainerRecord[]>();
  budgets = new Map<string, ReportedBudget | undefined>();
  writes = 0;
  events: CompanionEvent[] = [];
  records(e: { namespace: string; name: string }, records: ContainerRecord[], budget?: ReportedBudget): void {
    this.writes += 1;
    this.written.set(`${e.namespace}/${e.name}`, records);
    this.budgets.set(`${e.namespace}/${e.name}`, budget);
  }
  event(e: CompanionEvent): void {
    this.events.push(e);
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}

export const silentLog = { info: () => {}, warn: () => {}, error: () => {} };

/** Accepts what the schema would, parses chains trivially (no predicates): enough for lifecycle tests. */
export function fakeValidate(input: unknown): ValidationOutcome {
  const chaos = input as KernelChaos;
  const req = chaos.spec?.failKernRequest;
  if (!req || ![0, 1, 2].includes(req.failtype)) {
    return { valid: false, errors: [{ path: 'spec.failKernRequest.failtype', message: 'must be 0, 1 or 2' }], warnings: [] };
  }
  return {
    valid: true,
    chaos,
    warnings: [],
    parsed: {
      failtype: req.failtype as 0 | 1 | 2,
      callchain: (req.callchain ?? []).map((f) => ({ funcname: f.funcname ?? '', parameters: [], predicate: null })),
      headers: [],
      probability: req.probability ?? 0,
      times: req.times ?? 0,
    },
  };
}

/** `@every Nm` fires every N minutes since the epoch. */
export const everyMinutes: CronParser = (expr) => {
  const m = /^@every (\d+)m$/.exec(expr);
  if (!m) return { ok: false, reason: `unsupported in tests: ${expr}` };
  const period = Number(m[1]) * 60_000;
  return {
    ok: true,
    recurrence: {
      nextAfter: (at) => new Date((Math.floor(at.getTime() / period) + 1) * period),
      previousAtOrBefore: (at) => new Date(Math.floor(at.getTime() / period) * period),
    },
  };
};

export function chaosObject(name: string, over: { uid?: string; generation?: number; spec?: Partial<KernelChaos['spec']>; annotations?: Record<string, string>; created?: string } = {}): KernelChaos {
  return {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: {
      name,
      namespace: 'chaos',
      uid: over.uid ?? `uid-${name}`,
      generation: over.generation ?? 1,
      creationTimestamp: over.created ?? '2026-01-01T10:00:00Z',
      ...(over.annotations ? { annotations: over.annotations } : {}),
    },
    spec: { mode: 'all', selector: { namespaces: ['app'] }, failKernRequest: { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }] }, ...over.spec },
  };
}

/** A pod as a manifest file holds it (JSON is YAML), for the companion's manifest-directory mode. */
export function podManifest(...args: Parameters<typeof podObject>): string {
  return `${JSON.stringify(podObject(...args), null, 2)}\n`;
}

export function podObject(
  name: string,
  opts: {
    node?: string;
    namespace?: string;
    uid?: string;
    experiments: string[];
    containers: Array<{ name: string; id?: string; running?: boolean }>;
    targeted?: boolean;
    optedIn?: boolean;
    qosClass?: 'Guaranteed' | 'Burstable' | 'BestEffort';
  },
): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: opts.namespace ?? 'app',
      uid: opts.uid ?? `pod-uid-${name}`,
      labels: opts.targeted === false ? {} : { 'kernelchaos.dev/target': 'true' },
      annotations: { 'kernelchaos.dev/experiments': opts.experiments.join(','), ...(opts.optedIn === false ? {} : { 'kernelchaos.dev/inject': 'true' }) },
    },
    spec: { nodeName: opts.node ?? 'node-a', containers: opts.containers.map((c) => ({ name: c.name })) },
    status: {
      phase: 'Running',
      qosClass: opts.qosClass ?? 'BestEffort',
      containerStatuses: opts.containers.map((c) => ({
        name: c.name,
        image: 'busybox',
        imageID: 'busybox',
        ready: true,
        restartCount: 0,
        ...(c.running === false
          ? { state: { waiting: { reason: 'ContainerCreating' } } }
          : { containerID: `containerd://${c.id ?? ''}`, state: { running: { startedAt: new Date('2026-01-01T10:00:00Z') } } }),
      })),
    },
  };
}

/** The seed's target pod with two containers on node-1, as the manifest-directory companion tests use it. */
export const WEB_POD = {
  uid: '0f0e0d0c-0b0a-4909-8807-060504030201',
  app: 'ab'.repeat(32),
  side: 'cd'.repeat(32),
} as const;

/** WEB_POD as a manifest file, labelled for the seed experiment. */
export function webPodManifest(): string {
  return podManifest('web', {
    uid: WEB_POD.uid,
    node: 'node-1',
    qosClass: 'Burstable',
    experiments: ['chaos-testing/kernel-chaos-example'],
    containers: [{ name: 'app', id: WEB_POD.app }, { name: 'side', id: WEB_POD.side }],
  });
}
