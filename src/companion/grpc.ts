// The companion's gRPC servers: kernelchaos.v1.Companion (what is attached here) and, only when
// asked for, bpfki.BPFKIService (Chaos Mesh's kernel backend contract). Both require mutual TLS:
// a client must present a certificate signed by the configured CA, or the handshake fails.
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import type { BpfkiFailKernRequest, BpfkiInjector, BpfkiOutcome } from './bpfki.js';
import type { InjectionChange, InjectionView } from './lifecycle.js';
import type { ExperimentId } from './model.js';
import type { Plan } from './plan.js';
import type { LiveRecord } from './records.js';
import { nextBoundary } from '../schedule/phase.js';
import { clientProblem, identityOf, type AllowedClients } from './client-identity.js';

/** proto/ sits two levels above this file both in src/companion and in dist/companion. */
export const PROTO_DIR = resolve(import.meta.dirname, '..', '..', 'proto');
export const COMPANION_PROTO = resolve(PROTO_DIR, 'kernelchaos', 'v1', 'companion.proto');
export const BPFKI_PROTO = resolve(PROTO_DIR, 'bpfki', 'bpfki.proto');

const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** The Companion service's definitions, also what server reflection describes. */
export function companionPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(COMPANION_PROTO, LOADER_OPTIONS);
}

export function loadCompanionService(): grpc.ServiceClientConstructor {
  const pkg = grpc.loadPackageDefinition(companionPackageDefinition());
  return ((pkg.kernelchaos as grpc.GrpcObject).v1 as grpc.GrpcObject).Companion as grpc.ServiceClientConstructor;
}

export function loadBpfkiService(): grpc.ServiceClientConstructor {
  // Enums as numbers: Chaos Mesh sends ftype as the integer failtype.
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(BPFKI_PROTO, { ...LOADER_OPTIONS, enums: Number }));
  return (pkg.bpfki as grpc.GrpcObject).BPFKIService as grpc.ServiceClientConstructor;
}

/** PEM contents, not paths. */
export interface MtlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export function serverCredentials(tls: MtlsMaterial): grpc.ServerCredentials {
  // checkClientCertificate = true: no certificate, or one the CA did not sign, fails the handshake.
  return grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true);
}

/** Paths of the PEM files (a mounted Secret: tls.crt, tls.key, ca.crt). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface WatchedCredentials {
  credentials: grpc.ServerCredentials;
  /** Stops re-reading the files (after the servers using them have stopped). */
  close(): void;
}

/**
 * Like serverCredentials, but re-reads the files every `refreshIntervalMs`, so a rotated Secret
 * (certificates last 30 days) is served without a restart. Client certificates stay required.
 * Resolves once the files have been read, so no handshake meets a server without a certificate.
 */
export async function watchedServerCredentials(files: TlsFiles, refreshIntervalMs = 60_000): Promise<WatchedCredentials> {
  const provider = new grpc.experimental.FileWatcherCertificateProvider({
    certificateFile: files.certFile,
    privateKeyFile: files.keyFile,
    caCertificateFile: files.caFile,
    refreshIntervalMs,
  });
  // Our own listener keeps the provider reading (and its latest update cached) for the servers.
  let loaded: () => void = () => {};
  const first = new Promise<void>((resolve) => (loaded = resolve));
  const listener = (update: unknown): void => {
    if (update) loaded();
  };
  provider.addIdentityCertificateListener(listener);
  const timer = setTimeout(() => loaded(), 10_000);
  await first;
  clearTimeout(timer);
  return {
    credentials: grpc.experimental.createCertificateProviderServerCredentials(provider, provider, true),
    close: () => provider.removeIdentityCertificateListener(listener),
  };
}

export function clientCredentials(tls: MtlsMaterial): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
}

// ---- wire shapes (proto-loader objects, keepCase)

interface WireExperimentRef {
  namespace: string;
  name: string;
  uid: string;
}
export interface WireInjection {
  key: string;
  experiment: WireExperimentRef;
  source: string;
  cgroup_ids: string[];
  containers: string[];
  attach_mode: string;
  armed_at: string;
  closes_at: string;
  calls: string;
  faults: string;
}
export interface WireContainerRecord {
  id: string;
  phase: string;
  reason: string;
  injected_count: number;
  recovered_count: number;
  faults_injected: string;
  node: string;
  events: Array<{ type: string; operation: string; message: string; timestamp: string }>;
}
export interface WireExperimentStatus {
  experiment: WireExperimentRef;
  node: string;
  schedule_phase: string;
  next_boundary: string;
  records: WireContainerRecord[];
  injection: WireInjection | null;
}
export interface WireInjectionChange {
  kind: 'ARMED' | 'DISARMED' | 'RETARGETED' | 'FAILED' | 'COUNTERS';
  injection: WireInjection | null;
  experiment: WireExperimentRef;
  reason: string;
  at: string;
}

function ref(id: ExperimentId): WireExperimentRef {
  return { namespace: id.namespace, name: id.name, uid: id.uid };
}

export function toWireInjection(v: InjectionView): WireInjection {
  return {
    key: v.key,
    experiment: ref(v.experiment),
    source: v.source,
    cgroup_ids: v.cgroupIds.map(String),
    containers: v.containers,
    attach_mode: v.mode,
    armed_at: v.armedAt.toISOString(),
    closes_at: v.closesAt ? v.closesAt.toISOString() : '',
    calls: v.calls.toString(),
    faults: v.faults.toString(),
  };
}

function toWireRecord(r: LiveRecord, node: string): WireContainerRecord {
  return {
    id: `${r.container.namespace}/${r.container.pod}/${r.container.container}`,
    phase: r.phase,
    reason: r.reason ?? '',
    injected_count: r.injectedCount,
    recovered_count: r.recoveredCount,
    faults_injected: String(r.faultsInjected),
    node,
    events: r.events.map((e) => ({ type: e.type, operation: e.operation, message: e.message ?? '', timestamp: e.timestamp })),
  };
}

export function toWireChange(c: InjectionChange): WireInjectionChange {
  if (c.kind === 'failed') {
    return { kind: 'FAILED', injection: null, experiment: ref(c.experiment), reason: c.reason, at: c.at.toISOString() };
  }
  const injection = toWireInjection(c.injection);
  return { kind: c.kind.toUpperCase() as WireInjectionChange['kind'], injection, experiment: injection.experiment, reason: c.reason, at: c.at.toISOString() };
}

/** What the Companion service reads: the lifecycle (and the bpfki injector, when enabled). */
export interface CompanionView {
  node: string;
  injections(): InjectionView[];
  currentPlan(): Plan;
  recordsOf(namespace: string, name: string): LiveRecord[];
  on(event: 'change', listener: (c: InjectionChange) => void): unknown;
  off(event: 'change', listener: (c: InjectionChange) => void): unknown;
}

export function companionHandlers(view: CompanionView, bpfki?: Pick<BpfkiInjector, 'injections' | 'on' | 'off'>): grpc.UntypedServiceImplementation {
  const all = (): InjectionView[] => [...view.injections(), ...(bpfki?.injections() ?? [])];
  const ListInjections: grpc.handleUnaryCall<Record<string, never>, { node: string; injections: WireInjection[] }> = (_call, cb) => {
    cb(null, { node: view.node, injections: all().map(toWireInjection) });
  };
  const GetExperimentStatus: grpc.handleUnaryCall<{ namespace: string; name: string }, WireExperimentStatus> = (call, cb) => {
    const { namespace, name } = call.request;
    if (!namespace || !name) {
      cb({ code: grpc.status.INVALID_ARGUMENT, details: 'namespace and name are both required' });
      return;
    }
    const plan = view.currentPlan().experiments.find((e) => e.id.namespace === namespace && e.id.name === name);
    const records = view.recordsOf(namespace, name);
    if (!plan && records.length === 0) {
      cb({ code: grpc.status.NOT_FOUND, details: `no KernelChaos ${namespace}/${name} targets a pod on node ${view.node}` });
      return;
    }
    const id = plan?.id ?? records[0]?.experiment ?? { namespace, name, uid: '' };
    const injection = view.injections().find((i) => i.experiment.uid === id.uid);
    const boundary = plan ? nextBoundary(plan.schedule) : null;
    cb(null, {
      experiment: ref(id),
      node: view.node,
      schedule_phase: plan?.schedule.phase ?? 'unknown',
      next_boundary: boundary ? boundary.toISOString() : '',
      records: records.map((r) => toWireRecord(r, view.node)),
      injection: injection ? toWireInjection(injection) : null,
    });
  };
  const WatchInjections: grpc.handleServerStreamingCall<{ include_current: boolean }, WireInjectionChange> = (call) => {
    const send = (c: InjectionChange): void => {
      if (!call.cancelled) call.write(toWireChange(c));
    };
    if (call.request.include_current) {
      const at = new Date();
      for (const injection of all()) send({ kind: 'armed', injection, reason: 'current', at });
    }
    view.on('change', send);
    bpfki?.on('change', send);
    const done = (): void => {
      view.off('change', send);
      bpfki?.off('change', send);
    };
    call.on('cancelled', done);
    call.on('close', done);
    call.on('error', done);
  };
  return { ListInjections, GetExperimentStatus, WatchInjections } as grpc.UntypedServiceImplementation;
}

const BPFKI_STATUS: Record<Exclude<BpfkiOutcome, { ok: true }>['code'], grpc.status> = {
  'invalid-argument': grpc.status.INVALID_ARGUMENT,
  'not-found': grpc.status.NOT_FOUND,
  'failed-precondition': grpc.status.FAILED_PRECONDITION,
  'permission-denied': grpc.status.PERMISSION_DENIED,
  internal: grpc.status.INTERNAL,
};

export function bpfkiHandlers(injector: Pick<BpfkiInjector, 'fail' | 'recover'>): grpc.UntypedServiceImplementation {
  const answer = (outcome: BpfkiOutcome, cb: grpc.sendUnaryData<{ ret: number; msg: string }>): void => {
    // Chaos Mesh's controller checks only the gRPC error, so failures are gRPC errors with the reason.
    if (outcome.ok) cb(null, { ret: 0, msg: outcome.message });
    else cb({ code: BPFKI_STATUS[outcome.code], details: outcome.message });
  };
  const FailMMOrBIO: grpc.handleUnaryCall<BpfkiFailKernRequest, { ret: number; msg: string }> = (call, cb) => {
    injector.fail(call.request).then(
      (o) => answer(o, cb),
      (err: unknown) => answer({ ok: false, code: 'internal', message: String(err) }, cb),
    );
  };
  const RecoverMMOrBIO: grpc.handleUnaryCall<BpfkiFailKernRequest, { ret: number; msg: string }> = (call, cb) => {
    answer(injector.recover(call.request), cb);
  };
  const unimplemented = (method: string): grpc.handleUnaryCall<unknown, unknown> => (_call, cb) =>
    cb({ code: grpc.status.UNIMPLEMENTED, details: `${method}: the kernelchaos companion implements only FailMMOrBIO and RecoverMMOrBIO` });
  const impl: Record<string, grpc.handleUnaryCall<never, unknown>> = { FailMMOrBIO, RecoverMMOrBIO };
  for (const m of ['SetTimeVal', 'RecoverTimeVal', 'SetTimeSpec', 'RecoverTimeSpec', 'FailSyscall', 'RecoverSyscall']) impl[m] = unimplemented(m);
  return impl as grpc.UntypedServiceImplementation;
}

/**
 * Wraps every method of a service so it first checks the caller's certificate against `allowed`
 * (client-identity.ts): refused callers get UNAUTHENTICATED / PERMISSION_DENIED and the handler never runs.
 */
export function guardService(
  implementation: grpc.UntypedServiceImplementation,
  allowed: AllowedClients,
  service: string,
  onRefused: (reason: string) => void = () => {},
): grpc.UntypedServiceImplementation {
  const out: Record<string, unknown> = {};
  for (const [method, handler] of Object.entries(implementation)) {
    type AnyCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'> & { emit(event: 'error', err: Partial<grpc.StatusObject>): boolean };
    const fn = handler as (call: AnyCall, cb?: grpc.sendUnaryData<unknown>) => void;
    out[method] = (call: AnyCall, cb?: grpc.sendUnaryData<unknown>): void => {
      const identity = identityOf(call.getAuthContext()?.sslPeerCertificate);
      const problem = clientProblem(identity, allowed, service);
      if (problem === null) {
        fn(call, cb);
        return;
      }
      onRefused(`${method}: ${problem}`);
      const error = { code: identity ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED, details: problem };
      // Unary handlers answer through the callback; streaming ones end the call with an error event.
      if (fn.length >= 2 && cb) cb(error);
      else call.emit('error', error);
    };
  }
  return out as grpc.UntypedServiceImplementation;
}

export interface RunningServer {
  port: number;
  /** Stops accepting, ends streams, and resolves when closed. */
  stop(): Promise<void>;
}

/** Binds one service on host:port (port 0 picks a free one). */
export function serve(
  service: grpc.ServiceClientConstructor,
  implementation: grpc.UntypedServiceImplementation,
  options: { host: string; port: number; credentials: grpc.ServerCredentials; reflection?: protoLoader.PackageDefinition },
): Promise<RunningServer> {
  const server = new grpc.Server();
  server.addService(service.service, implementation);
  // grpc.reflection.v1(alpha): grpcurl and friends list and describe the services (same mTLS).
  if (options.reflection) new ReflectionService(options.reflection).addToServer(server);
  return new Promise((resolvePromise, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, options.credentials, (err, port) => {
      if (err) {
        reject(new Error(`cannot listen on ${options.host}:${options.port}: ${err.message}`));
        return;
      }
      resolvePromise({
        port,
        stop: () =>
          new Promise<void>((done) => {
            // Streams (WatchInjections) never end by themselves: give them a moment, then force.
            const force = setTimeout(() => server.forceShutdown(), 2000);
            server.tryShutdown(() => {
              clearTimeout(force);
              done();
            });
          }),
      });
    });
  });
}
