// Prometheus metrics of one webhook server (the shared pattern of src/metrics/registry.ts).
import { Counter, Histogram } from 'prom-client';
import { addProcessMetrics, componentRegistry, metricName } from '../metrics/registry.js';
import type { AdmissionReviewResponse } from './admission.js';
import { AUDIT_SKIP_REASON } from './pods.js';

export type Endpoint =
  | '/validate-kernelchaos'
  | '/mutate-kernelchaos'
  | '/mutate-pods'
  | '/validate-kernelchaospolicy'
  | '/validate-schedule'
  | '/validate-workflow';

const ENDPOINTS: ReadonlySet<string> = new Set([
  '/validate-kernelchaos',
  '/mutate-kernelchaos',
  '/mutate-pods',
  '/validate-kernelchaospolicy',
  '/validate-schedule',
  '/validate-workflow',
]);

/** allowed/denied: an AdmissionReview was answered; error: HTTP 4xx/5xx without a review. */
export type RequestResult = 'allowed' | 'denied' | 'error';

interface HotChildren {
  allowed: Counter.Internal;
  denied: Counter.Internal;
  latency: Histogram.Internal<'endpoint'>;
}

export class WebhookMetrics {
  readonly registry = componentRegistry({ processMetrics: false });
  private readonly requests = new Counter({
    name: metricName('webhook', 'requests_total'),
    help: 'Admission requests by endpoint and result (allowed, denied, error).',
    labelNames: ['endpoint', 'result'] as const,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: metricName('webhook', 'request_duration_seconds'),
    help: 'Time from the parsed body to the written answer, by endpoint.',
    labelNames: ['endpoint'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  private readonly denials = new Counter({
    name: metricName('webhook', 'denials_total'),
    help: 'Denied admission requests by endpoint and reason (BadRequest, Forbidden, Invalid).',
    labelNames: ['endpoint', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly skips = new Counter({
    name: metricName('webhook', 'injector_skips_total'),
    help: 'Pods the injector did not label, by reason (see the kernelchaos.dev/skip-reason annotation).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly certReloads = new Counter({
    name: metricName('webhook', 'certificate_reloads_total'),
    help: 'Serving certificate reload attempts by outcome (reloaded, rejected).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });


  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics) addProcessMetrics(this.registry);
  }

  // Label children resolved once per endpoint: prom-client otherwise hashes the label set per call.
  private readonly hot = new Map<Endpoint, HotChildren>();

  private children(endpoint: Endpoint): HotChildren {
    let c = this.hot.get(endpoint);
    if (!c) {
      c = {
        allowed: this.requests.labels({ endpoint, result: 'allowed' }),
        denied: this.requests.labels({ endpoint, result: 'denied' }),
        latency: this.latency.labels({ endpoint }),
      };
      this.hot.set(endpoint, c);
    }
    return c;
  }

  observe(endpoint: Endpoint, answer: AdmissionReviewResponse, seconds: number): void {
    const { response } = answer;
    const c = this.children(endpoint);
    (response.allowed ? c.allowed : c.denied).inc();
    c.latency.observe(seconds);
    if (!response.allowed) this.denials.inc({ endpoint, reason: response.status?.reason ?? 'Unknown' });
    const skip = response.auditAnnotations?.[AUDIT_SKIP_REASON];
    if (skip !== undefined) this.skips.inc({ reason: skip });
  }

  /** Any path may arrive here; unknown ones share one label value to bound cardinality. */
  error(path: string): void {
    this.requests.inc({ endpoint: ENDPOINTS.has(path) ? path : 'other', result: 'error' });
  }
}
