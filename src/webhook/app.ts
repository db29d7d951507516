// HTTP plumbing of the webhook: routes, body limits, error answers. The admission decisions live in
// the pure handlers; this file only turns bytes into a request and a decision into bytes.
import express, { type ErrorRequestHandler, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import { readJsonBody } from './body.js';
import { clipText } from '../api/validation/paths.js';
import { parseAdmissionReview, type AdmissionRequest, type AdmissionReviewResponse } from './admission.js';
import type { WebhookContext } from './context.js';
import { mutateKernelChaos, reviewKernelChaos } from './kernelchaos.js';
import type { Endpoint, WebhookMetrics } from './metrics.js';
import { mutatePod } from './pods.js';
import { reviewKernelChaosPolicy } from './policies.js';

/** The apiserver caps request bodies at 3 MiB; anything larger is not an AdmissionReview. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export type Handler = (request: AdmissionRequest, ctx: WebhookContext) => AdmissionReviewResponse;

export const HANDLERS: Readonly<Record<Endpoint, Handler>> = {
  '/validate-kernelchaos': reviewKernelChaos,
  '/mutate-kernelchaos': mutateKernelChaos,
  '/mutate-pods': mutatePod,
  '/validate-kernelchaospolicy': reviewKernelChaosPolicy,
};

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface AppOptions {
  ctx: WebhookContext;
  metrics: WebhookMetrics;
  logger: Logger;
  readiness: () => Readiness;
  /** True once SIGTERM arrived: answers then ask clients to reconnect (to another replica). */
  draining?: () => boolean;
}

function sendError(res: Response, status: number, message: string): void {
  res.status(status).json({ error: message, status });
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

export function createWebhookApp(opts: AppOptions): express.Express {
  const { ctx, metrics, logger } = opts;
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
      readJsonBody(req, MAX_BODY_BYTES, (body) => {
        if (body.ok) {
          answerReview(path, handler, body.value, res);
          return;
        }
        metrics.error(path);
        // Unread bytes would otherwise be drained from a keep-alive connection: close it instead.
        if (body.abandoned) res.setHeader('Connection', 'close');
        sendError(res, body.status, body.message);
      });
    };
    app.post(path, route);
  }

  app.get('/healthz', (_req, res) => {
    closeIfDraining(res);
    res.json({ status: 'ok' });
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
    sendError(res, 404, `no route ${req.method} ${req.path}; POST /validate-kernelchaos, /mutate-kernelchaos, /mutate-pods, /validate-kernelchaospolicy`);
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
