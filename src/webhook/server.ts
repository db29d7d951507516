// The webhook's HTTPS server and its lifecycle: serving -> draining -> stopped.
//
// Keep-alive: the apiserver keeps idle connections to a webhook for 90 s; Node's default 5 s
// keepAliveTimeout closes them first and the apiserver then writes into a closed socket (EOF,
// connection reset, a failed admission). 120 s outlasts it; headersTimeout must stay above
// keepAliveTimeout or Node cuts idle keep-alive connections on the headers timer.
//
// Drain (SIGTERM): readiness fails first so the endpoints controller takes the pod out of the
// Service, the server goes on answering for `drainDelayMs` (requests already routed here), then
// stops accepting, asks keep-alive clients to reconnect elsewhere, finishes in-flight requests and
// resolves. A hard deadline closes whatever is left.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Logger } from 'pino';
import type { KeyMaterial } from '../tls/reloader.js';
import { TLS_SERVER_OPTIONS } from '../tls/server-options.js';

export const KEEP_ALIVE_TIMEOUT_MS = 120_000;
export const HEADERS_TIMEOUT_MS = 121_000;
export const REQUEST_TIMEOUT_MS = 130_000;
export const DEFAULT_DRAIN_DELAY_MS = 3_000;
export const DEFAULT_DRAIN_DEADLINE_MS = 25_000;

export type ServerState = 'starting' | 'serving' | 'draining' | 'stopped';

export interface WebhookServerOptions {
  app: Express;
  tls: KeyMaterial;
  port: number;
  /** Omitted: every address (IPv6 and IPv4). */
  host?: string;
  logger: Logger;
}

export class WebhookServer {
  readonly server: Server;
  private stateValue: ServerState = 'starting';
  private drainPromise: Promise<void> | undefined;

  constructor(private readonly opts: WebhookServerOptions) {
    this.server = createServer({ ...TLS_SERVER_OPTIONS, cert: opts.tls.cert, key: opts.tls.key }, opts.app);
    this.server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    this.server.headersTimeout = HEADERS_TIMEOUT_MS;
    this.server.requestTimeout = REQUEST_TIMEOUT_MS;
    // A client that drops the TLS handshake must not surface as an unhandled error.
    this.server.on('tlsClientError', (err) => opts.logger.debug({ err: err.message }, 'TLS handshake failed'));
  }

  get state(): ServerState {
    return this.stateValue;
  }

  get draining(): boolean {
    return this.stateValue === 'draining' || this.stateValue === 'stopped';
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.stateValue = 'serving';
    return this.server.address() as AddressInfo;
  }

  /** Idempotent: a second SIGTERM waits for the same drain. */
  drain(drainDelayMs = DEFAULT_DRAIN_DELAY_MS, deadlineMs = DEFAULT_DRAIN_DEADLINE_MS): Promise<void> {
    this.drainPromise ??= this.runDrain(drainDelayMs, deadlineMs);
    return this.drainPromise;
  }

  private async runDrain(drainDelayMs: number, deadlineMs: number): Promise<void> {
    const { logger } = this.opts;
    if (this.stateValue === 'starting') {
      this.stateValue = 'stopped';
      return;
    }
    this.stateValue = 'draining';
    logger.info({ drainDelayMs }, 'draining: readiness fails, still answering until the delay ends');
    await new Promise((r) => setTimeout(r, drainDelayMs));
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // close() stops accepting and ends idle keep-alive connections; busy ones end after their
    // response (which carries Connection: close).
    this.server.closeIdleConnections();
    logger.info('stopped accepting connections; finishing in-flight requests');
    const deadline = setTimeout(() => {
      logger.warn('drain deadline reached: closing remaining connections');
      this.server.closeAllConnections();
    }, deadlineMs);
    deadline.unref();
    await closed;
    clearTimeout(deadline);
    this.stateValue = 'stopped';
    logger.info('drained: every in-flight request answered');
  }
}
