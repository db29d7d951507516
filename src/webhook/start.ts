// Wires one running webhook: store + handlers + metrics + TLS (fixed or reloaded from files) + server.
// Used by `kernelchaos webhook`, the tests and the benchmark alike.
import pino, { type Logger } from 'pino';
import type { ClusterStore } from '../kube/store.js';
import { describeProfile, type ProfileState } from '../kube/install-profile.js';
import { CertReloader, type KeyMaterial } from '../tls/reloader.js';
import { createWebhookApp, type Readiness } from './app.js';
import { DEFAULT_NAMESPACE } from './context.js';
import { WebhookMetrics } from './metrics.js';
import { WebhookServer } from './server.js';

export type TlsSource =
  | { kind: 'files'; certFile: string; keyFile: string; pollIntervalMs?: number }
  | { kind: 'material'; material: KeyMaterial };

export interface StartWebhookOptions {
  store: ClusterStore;
  tls: TlsSource;
  port?: number;
  host?: string;
  ownNamespace?: string;
  logger?: Logger;
  now?: () => Date;
  processMetrics?: boolean;
  /** The install profile (detected by the caller): not ready until it is known. Absent: none needed (offline). */
  profile?: ProfileState;
}

export interface RunningWebhook {
  port: number;
  server: WebhookServer;
  metrics: WebhookMetrics;
  reloader: CertReloader | undefined;
  /** Drains (readiness fails, in-flight requests finish) and stops the reloader; the store is the caller's. */
  close(drainDelayMs?: number): Promise<void>;
}

export async function startWebhook(opts: StartWebhookOptions): Promise<RunningWebhook> {
  const logger = opts.logger ?? pino({ level: 'silent' });
  const metrics = new WebhookMetrics({ processMetrics: opts.processMetrics ?? false });
  let reloader: CertReloader | undefined;
  let material: KeyMaterial;
  if (opts.tls.kind === 'files') {
    reloader = new CertReloader({
      certFile: opts.tls.certFile,
      keyFile: opts.tls.keyFile,
      pollIntervalMs: opts.tls.pollIntervalMs,
      onOutcome: (o) => {
        if (o.kind === 'reloaded') {
          metrics.certReloads.inc({ outcome: 'reloaded' });
          logger.info('serving certificate reloaded');
        } else if (o.kind === 'rejected') {
          metrics.certReloads.inc({ outcome: 'rejected' });
          logger.warn({ reason: o.reason }, 'serving certificate not reloaded; keeping the current one');
        }
      },
    });
    material = reloader.material;
  } else {
    material = opts.tls.material;
  }

  // The app needs the server's state and the server needs the app: a holder breaks the cycle.
  const holder: { server?: WebhookServer } = {};
  const readiness = (): Readiness => {
    const server = holder.server;
    if (!server || server.state !== 'serving') return { ready: false, reason: server?.state ?? 'starting' };
    if (!opts.store.synced) return { ready: false, reason: 'cluster state not synced yet' };
    if (opts.profile && !opts.profile.current) return { ready: false, reason: `install profile unknown: ${opts.profile.waiting}` };
    return { ready: true };
  };
  const app = createWebhookApp({
    ctx: {
      store: opts.store,
      now: opts.now ?? (() => new Date()),
      ownNamespace: opts.ownNamespace ?? DEFAULT_NAMESPACE,
      ...(opts.profile ? { profile: () => opts.profile?.current } : {}),
    },
    ...(opts.profile ? { profile: () => (opts.profile?.current ? describeProfile(opts.profile.current) : undefined) } : {}),
    metrics,
    logger,
    readiness,
    draining: () => holder.server?.draining ?? false,
  });
  const server = new WebhookServer({ app, tls: material, port: opts.port ?? 8443, host: opts.host, logger });
  holder.server = server;
  const address = await server.listen();
  if (reloader) {
    reloader.attach(server.server);
    reloader.start();
  }
  return {
    port: address.port,
    server,
    metrics,
    reloader,
    async close(drainDelayMs = 0) {
      reloader?.stop();
      await server.drain(drainDelayMs);
    },
  };
}
