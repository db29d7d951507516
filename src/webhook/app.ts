// HTTP plumbing of the webhook: routes, body limits, error answers. The admission decisions live in
// the pure handlers; this file only turns bytes into a request and a decision into bytes.
import express, { type ErrorRequestHandler, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import { readJsonBody } from './body.js';
import { ConcurrencyLimiter } from './limiter.js';
import { clipText } from '../api/validation/paths.js';
import { parseAdmissionReview, type AdmissionRequest, type AdmissionReviewResponse } from './admission.js';
import type { WebhookContext } from './context.js';
import { mutateKernelChaos, reviewKernelChaos } from './kernelchaos.js';
import type { Endpoint, WebhookMetrics } from './metrics.js';
import { mutatePod } from './pods.js';
import { reviewKernelChaosPolicy } from './policies.js';
import { reviewSchedule, reviewWorkflow } from './chaos-mesh-kinds.js';

/** The apiserver caps request bodies at 3 MiB; anything larger is not an AdmissionReview. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/**
 * Body limit per endpoint, from what the apiserver sends there: a KernelChaos or policy review is
 * the object and, on UPDATE, its old version, each far below 512 KiB (annotations are capped at
 * 256 KiB, specs by validation), and so is a Schedule (one embedded KernelChaos); a pod review can carry
 * a large pod spec and a Workflow many templates, so they keep the full 3 MiB.
 */
export const BODY_LIMITS: Readonly<Record<Endpoint, number>> = {
  '/validate-kernelchaos': 1024 * 1024,
  '/mutate-kernelchaos': 1024 * 1024,
  '/validate-kernelchaospolicy': 1024 * 1024,
  '/validate-schedule': 1024 * 1024,
  '/validate-workflow': MAX_BODY_BYTES,
  '/mutate-pods': MAX_BODY_BYTES,
};

/** A slot holder must finish sending its body within this; the apiserver sends it at once. */
export const BODY_READ_TIMEOUT_MS = 10_000;

export type Handler = (request: AdmissionRequest, ctx: WebhookContext) => AdmissionReviewResponse;

export const HANDLERS: Readonly<Record<Endpoint, Handler>> = {
  '/validate-kernelchaos': reviewKernelChaos,
  '/mutate-kernelchaos': mutateKernelChaos,
  '/mutate-pods': mutatePod,
  '/validate-kernelchaospolicy': reviewKernelChaosPolicy,
  '/validate-schedule': reviewSchedule,
  '/validate-workflow': reviewWorkflow,
};

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface AppOptions {
  ctx: WebhookContext;
  metrics: WebhookMetrics;
  logger: Logger;
  readiness: () => Readiness;
  /** True once SIGTERM arrived: answers then ask clients to reconnect (to another replica). */
  draining?: () => boolean;
  /** How many reviews run at once (default: DEFAULT_LIMITS). */
  limiter?: ConcurrencyLimiter;
  /** The install profile in one line, for GET /healthz (undefined while unknown). */
  profile?: () => string | undefined;
}

function sendError(res: Response, status: number, message: string): void {
  res.status(status).json({ error: message, status });
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

export function createWebhookApp(opts: AppOptions): express.Express {
  const { ctx, metrics, logger } = opts;
  const limiter = opts.limiter ?? new ConcurrencyLimiter();
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  // While draining, every answer asks the client to reconnect (to a replica that is not stopping).
  const closeIfDraining = (res: Response): void => {
    if (opts.draining?.()) res.setHeader('Connection', 'close');
  };

  const answerReview = (path: Endpoint, handler: Handler, body: unknown, res: Response): void => {
    const started = process.hrtime.bigint();
    const parsed = parseAdmissionReview(body);
    if (!parsed.ok) {
      metrics.error(path);
      sendError(res, 400, parsed.message);
      return;
    }
    let answer: AdmissionReviewResponse;
    try {
      answer = handler(parsed.request, ctx);
    } catch (err) {
      // A bug, not the user's fault: a 500 lets the apiserver apply the failurePolicy (Fail for
      // KernelChaos, Ignore for pods) instead of a misleading denial.
      logger.error({ err, endpoint: path, uid: parsed.request.uid }, 'admission handler failed');
      metrics.error(path);
      sendError(res, 500, 'internal error while reviewing the request; see the webhook logs');
      return;
    }
    // Written directly rather than through res.json: express's send machinery (mime lookup,
    // freshness, ETag checks) is measurable on this path and none of it applies to a POST answer.
    const payload = JSON.stringify(answer);
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(payload) });
    res.end(payload);
    metrics.observe(path, answer, Number(process.hrtime.bigint() - started) / 1e9);
    if (!answer.response.allowed) {
      // Names are not validated before admission: every user string is clipped before it is logged.
      const clip = (text: string | undefined): string | undefined => (text === undefined ? undefined : clipText(String(text)));
      logger.info(
        { endpoint: path, uid: clip(parsed.request.uid), name: clip(parsed.request.name), namespace: clip(parsed.request.namespace), reason: clip(answer.response.status?.message) },
        'denied',
      );
    } else if (logger.isLevelEnabled('debug')) {
      logger.debug({ endpoint: path, uid: parsed.request.uid, patched: answer.response.patch !== undefined }, 'allowed');
    }
  };

  for (const [path, handler] of Object.entries(HANDLERS) as [Endpoint, Handler][]) {
    // One route handler (content type, body, review) rather than a middleware chain: this is the hot path.
    const route: RequestHandler = (req, res) => {
      closeIfDraining(res);
      const type = req.headers['content-type'];
      if (type === undefined || !JSON_TYPE.test(type)) {
        metrics.error(path);
        sendError(res, 415, `Content-Type must be application/json, got ${type === undefined ? 'none' : JSON.stringify(type)}`);
        return;
      }
      const limit = BODY_LIMITS[path];
      const declared = req.headers['content-length'];
      const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
      if (length !== undefined && length > limit) {
        metrics.error(path);
        res.setHeader('Connection', 'close');
        sendError(res, 413, `request body of ${length} bytes exceeds ${limit} bytes, the most ${path} accepts`);
        return;
      }
      limiter.acquire(length, (slot) => {
        if (slot.kind === 'refused') {
          metrics.error(path);
          // The body was never read: close rather than drain it from a keep-alive connection.
          res.setHeader('Connection', 'close');
          res.setHeader('Retry-After', '1');
          sendError(res, slot.status, slot.message);
          return;
        }
        res.once('close', slot.release);
        if (req.destroyed || res.destroyed) {
          slot.release();
          return;
        }
        const slow = setTimeout(() => {
          metrics.error(path);
          res.setHeader('Connection', 'close');
          sendError(res, 408, `the request body did not arrive within ${BODY_READ_TIMEOUT_MS} ms`);
          req.destroy();
        }, BODY_READ_TIMEOUT_MS);
        res.once('close', () => clearTimeout(slow));
        readJsonBody(req, limit, (body) => {
          clearTimeout(slow);
          if (res.headersSent) return;
          if (body.ok) {
            answerReview(path, handler, body.value, res);
            return;
          }
          metrics.error(path);
          // Unread bytes would otherwise be drained from a keep-alive connection: close it instead.
          if (body.abandoned) res.setHeader('Connection', 'close');
          sendError(res, body.status, body.message);
        });
      });
    };
    app.post(path, route);
  }

  app.get('/healthz', (_req, res) => {
    closeIfDraining(res);
    const profile = opts.profile?.();
    res.json({ status: 'ok', ...(profile !== undefined ? { profile } : {}) });
  });
  app.get('/readyz', (_req, res) => {
    closeIfDraining(res);
    const r = opts.readiness();
    if (r.ready) res.json({ status: 'ready' });
    else res.status(503).json({ status: 'not ready', reason: r.reason });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.use((req, res) => {
    sendError(res, 404, `no route ${req.method} ${req.path}; POST /validate-kernelchaos, /mutate-kernelchaos, /mutate-pods, /validate-kernelchaospolicy, /validate-schedule, /validate-workflow`);
  });

  // Errors from express itself (e.g. a malformed URL): a JSON answer, never a stack trace.
  const onError: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    const e = (typeof err === 'object' && err !== null ? err : {}) as { status?: number; message?: string };
    metrics.error(req.path);
    if (res.headersSent) return;
    if (e.status !== undefined && e.status >= 400 && e.status < 500) {
      sendError(res, e.status, e.message ?? 'bad request');
      return;
    }
    logger.error({ err }, 'request failed');
    sendError(res, 500, 'internal error');
  };
  app.use(onError);
  return app;
}
