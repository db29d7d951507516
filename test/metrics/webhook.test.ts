// The webhook's /metrics follows the shared pattern: its own series prefixed, the default process
// and Node.js metrics under their standard names.
import { describe, expect, it } from 'vitest';
import { InMemoryStore } from '../../src/kube/memory.js';
import { startWebhook } from '../../src/webhook/start.js';
import { selfSigned, send } from '../webhook/helpers.js';
import { parseExposition } from './scrape.js';

describe('webhook /metrics', () => {
  it('exports process_* and nodejs_* unprefixed next to kernelchaos_webhook_*', async () => {
    const certs = selfSigned();
    const store = new InMemoryStore();
    await store.start();
    const running = await startWebhook({ store, tls: { kind: 'material', material: certs.serving }, port: 0, host: '127.0.0.1', processMetrics: true });
    try {
      const m = await send({ port: running.port, ca: certs.ca.cert }, 'GET', '/metrics');
      expect(m.status).toBe(200);
      const names = new Set(parseExposition(m.text).map((s) => s.name));
      expect(names.has('process_cpu_seconds_total')).toBe(true);
      expect(names.has('process_resident_memory_bytes')).toBe(true);
      expect(names.has('nodejs_eventloop_lag_seconds')).toBe(true);
      expect([...names].filter((n) => n.startsWith('kernelchaos_webhook_process_') || n.startsWith('kernelchaos_webhook_nodejs_'))).toEqual([]);
      expect(m.text).toContain('# TYPE kernelchaos_webhook_requests_total counter');
    } finally {
      await running.close(0);
    }
  });
});
