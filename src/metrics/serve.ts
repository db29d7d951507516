// GET /metrics for one registry, on its own port (the components' other ports speak gRPC or carry
// admission traffic; a scrape needs neither their clients nor their certificates).
import type { Registry } from 'prom-client';
import { listen, type Listening, type ListenOptions } from './http.js';

export function serveMetrics(registry: Registry, opts: ListenOptions): Promise<Listening> {
  return listen(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('method not allowed\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found: metrics are at /metrics\n');
      return;
    }
    const body = await registry.metrics();
    res.writeHead(200, { 'Content-Type': registry.contentType });
    res.end(req.method === 'HEAD' ? undefined : body);
  }, opts);
}
