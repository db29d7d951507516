// Chaos Mesh's bpfki contract, served by the companion: FailMMOrBIO(pid, fault) faults the pid's
// whole cgroup v2 (so children and threads fail too, unlike bpfki's first-pid filter), and only
// when that cgroup is a container of a pod on this node;
// RecoverMMOrBIO detaches. The request goes through the same validation as a KernelChaos, so its
// call chain and predicates are parsed, never pasted into the program.
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import type { KernelChaos } from '../api/types.js';
import type { ArmedFault, ArmOptions, FaultEngine } from '../bpf/types.js';
import type { CgroupResolver } from './cgroup-resolver.js';
import type { InjectionChange, InjectionView } from './lifecycle.js';
import { canonicalJson, type ExperimentId, type Validate } from './model.js';

/** FailKernRequest as @grpc/proto-loader decodes it (keepCase, enums as numbers, defaults on). */
export interface BpfkiFailKernRequest {
  pid: number;
  tid?: number;
  ftype: number | string;
  headers?: string[];
  callchain?: Array<{ funcname?: string; parameters?: string; predicate?: string }>;
  probability?: number;
  times?: number;
}

export type BpfkiOutcome =
  | { ok: true; message: string }
  | { ok: false; code: 'invalid-argument' | 'not-found' | 'failed-precondition' | 'permission-denied' | 'internal'; message: string };

interface Entry {
  key: string;
  pid: number;
  fault: ArmedFault;
  cgroupId: bigint;
  cgroupPath: string;
  armedAt: Date;
}

const FTYPES: Readonly<Record<string, 0 | 1 | 2>> = { SLAB: 0, PAGE: 1, BIO: 2 };

/** The KernelChaos equivalent of a bpfki request, or why there is none. */
export function bpfkiToKernelChaos(req: BpfkiFailKernRequest): { ok: true; chaos: KernelChaos } | { ok: false; message: string } {
  const failtype = typeof req.ftype === 'string' ? FTYPES[req.ftype] : req.ftype;
  if (failtype === undefined || ![0, 1, 2].includes(failtype)) {
    return { ok: false, message: `ftype: must be SLAB (0), PAGE (1) or BIO (2), got ${JSON.stringify(req.ftype)}` };
  }
  const p = req.probability ?? 0;
  if (!Number.isFinite(p) || p < 0 || p > 1) {
    return { ok: false, message: `probability: bpfki takes a fraction 0..1 (Chaos Mesh sends percent / 100), got ${p}` };
  }
  // proto3 strings default to "": an empty field means "not given", as in a manifest.
  const callchain = (req.callchain ?? []).map((f) => ({
    ...(f.funcname ? { funcname: f.funcname } : {}),
    ...(f.parameters ? { parameters: f.parameters } : {}),
    ...(f.predicate ? { predicate: f.predicate } : {}),
  }));
  return {
    ok: true,
    chaos: {
      apiVersion: 'chaos-mesh.org/v1alpha1',
      kind: 'KernelChaos',
      metadata: { name: `pid-${req.pid}`, namespace: 'bpfki' },
      spec: {
        mode: 'all',
        selector: {},
        failKernRequest: {
          failtype: failtype as 0 | 1 | 2,
          ...(req.headers && req.headers.length > 0 ? { headers: req.headers } : {}),
          ...(callchain.length > 0 ? { callchain } : {}),
          // float32 on the wire: 0.1 arrives as 0.10000000149; round to the percent it meant.
          probability: Math.round(p * 100),
          times: req.times ?? 0,
        },
      },
    },
  };
}

export interface BpfkiInjectorOptions {
  /** Only processes in containers of this node's pods can be targeted (never the root cgroup or a host process). */
  resolver: Pick<CgroupResolver, 'resolvePodContainerPid'>;
  engine: FaultEngine;
  validate: Validate;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  armOptions?: ArmOptions;
  now?: () => Date;
}

export class BpfkiInjector extends EventEmitter<{ change: [InjectionChange] }> {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => Date;

  constructor(private readonly opts: BpfkiInjectorOptions) {
    super();
    this.now = opts.now ?? (() => new Date());
  }

  async fail(req: BpfkiFailKernRequest): Promise<BpfkiOutcome> {
    const converted = bpfkiToKernelChaos(req);
    if (!converted.ok) return { ok: false, code: 'invalid-argument', message: converted.message };
    const verdict = this.opts.validate(converted.chaos);
    if (!verdict.valid) {
      const message = verdict.errors.map((e) => `${e.path.replace(/^spec\.failKernRequest\./, '')}: ${e.message}`).join('; ');
      return { ok: false, code: 'invalid-argument', message };
    }
    const key = requestKey(req.pid, converted.chaos);
    if (this.entries.has(key)) return { ok: true, message: `already injected into pid ${req.pid}` };
    const cgroup = await this.opts.resolver.resolvePodContainerPid(req.pid);
    if (cgroup.kind === 'unsupported') return { ok: false, code: 'failed-precondition', message: cgroup.reason };
    if (cgroup.kind === 'not-found') return { ok: false, code: 'not-found', message: cgroup.reason };
    if (cgroup.kind === 'refused') {
      this.opts.log.warn({ targetPid: req.pid }, `bpfki request refused: ${cgroup.reason}`);
      return { ok: false, code: 'permission-denied', message: cgroup.reason };
    }
    let fault: ArmedFault;
    try {
      fault = await this.opts.engine.arm(verdict.parsed, [cgroup.cgroupId], this.opts.armOptions);
    } catch (err) {
      return { ok: false, code: 'failed-precondition', message: `arming failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (this.entries.has(key)) {
      // Two identical calls raced: keep the first program.
      fault.disarm();
      return { ok: true, message: `already injected into pid ${req.pid}` };
    }
    const entry: Entry = { key, pid: req.pid, fault, cgroupId: cgroup.cgroupId, cgroupPath: cgroup.path, armedAt: this.now() };
    this.entries.set(key, entry);
    this.opts.log.info({ targetPid: req.pid, cgroup: cgroup.path, mode: fault.mode }, 'bpfki fault armed');
    this.emit('change', { kind: 'armed', injection: this.view(entry), reason: 'FailMMOrBIO', at: this.now() });
    return { ok: true, message: `injected into cgroup ${cgroup.path} of pid ${req.pid}` };
  }

  /** Detaches the matching fault of `pid`, or every fault of `pid` when none matches exactly. Idempotent. */
  recover(req: BpfkiFailKernRequest): BpfkiOutcome {
    const converted = bpfkiToKernelChaos(req);
    const exact = converted.ok ? this.entries.get(requestKey(req.pid, converted.chaos)) : undefined;
    const victims = exact ? [exact] : [...this.entries.values()].filter((e) => e.pid === req.pid);
    for (const e of victims) this.remove(e, 'RecoverMMOrBIO');
    return { ok: true, message: victims.length === 0 ? `nothing injected for pid ${req.pid}` : `recovered ${victims.length} fault(s) of pid ${req.pid}` };
  }

  injections(): InjectionView[] {
    return [...this.entries.values()].map((e) => this.view(e));
  }

  stopAll(reason: string): void {
    for (const e of [...this.entries.values()]) this.remove(e, reason);
  }

  private remove(e: Entry, reason: string): void {
    this.entries.delete(e.key);
    const view = this.view(e);
    try {
      e.fault.disarm();
    } catch (err) {
      this.opts.log.warn({ targetPid: e.pid, err: String(err) }, 'bpfki disarm failed');
    }
    this.opts.log.info({ targetPid: e.pid, faults: String(view.faults) }, `bpfki fault disarmed: ${reason}`);
    this.emit('change', { kind: 'disarmed', injection: view, reason, at: this.now() });
  }

  private view(e: Entry): InjectionView {
    let calls = 0n;
    let faults = 0n;
    try {
      ({ calls, faults } = e.fault.counters());
    } catch {
      // maps already freed
    }
    const experiment: ExperimentId = { namespace: 'bpfki', name: `pid-${e.pid}`, uid: `bpfki/pid-${e.pid}` };
    return {
      key: e.key,
      experiment,
      source: 'bpfki',
      cgroupIds: [e.cgroupId],
      containers: [],
      mode: e.fault.mode,
      armedAt: e.armedAt,
      closesAt: null,
      calls,
      faults,
    };
  }
}

function requestKey(pid: number, chaos: KernelChaos): string {
  return `bpfki/${pid}#${createHash('sha256').update(canonicalJson(chaos.spec.failKernRequest)).digest('hex').slice(0, 16)}`;
}
