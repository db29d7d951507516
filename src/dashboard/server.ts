// The controller's read-only web dashboard: GET / (the page), /api/state (JSON), /api/stream
// (server-sent events, one state per change). State comes from the controller's own cluster store,
// so the dashboard costs the API server nothing extra; it writes nothing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClusterStore } from '../kube/store.js';
import { listen, type HttpAuth, type Listening } from '../metrics/http.js';
import { FaultHistory } from './history.js';
import { PAGE_HTML } from './page.js';
import { buildExperiments, type DashboardState } from './state.js';

export interface DashboardOptions {
  store: Pick<ClusterStore, 'list' | 'on'>;
  host: string;
  port: number;
  auth: HttpAuth;
  /** A sample for the plot at least this often (default 5 s). */
  tickMs?: number;
  /** Store bursts coalesce into one update after this long (default 250 ms). */
  coalesceMs?: number;
}

export interface RunningDashboard extends Listening {
  state(): DashboardState;
}

export async function startDashboard(opts: DashboardOptions): Promise<RunningDashboard> {
  const history = new FaultHistory();
  const clients = new Set<ServerResponse>();
  let current: DashboardState = { generatedAt: new Date().toISOString(), experiments: [], history: {} };

  const refresh = (): void => {
    const now = new Date();
    const experiments = buildExperiments(opts.store.list('KernelChaos'), opts.store.list('Pod'));
    history.record(now.getTime(), new Map(experiments.map((e) => [e.key, e.faults])));
    current = { generatedAt: now.toISOString(), experiments, history: history.snapshot() };
    const frame = `data: ${JSON.stringify(current)}\n\n`;
    for (const c of clients) c.write(frame);
  };

  let pending: NodeJS.Timeout | undefined;
  const unsubscribe = opts.store.on((e) => {
    if (e.kind !== 'KernelChaos' && e.kind !== 'Pod') return;
    pending ??= setTimeout(() => {
      pending = undefined;
      refresh();
    }, opts.coalesceMs ?? 250);
  });
  const tick = setInterval(refresh, opts.tickMs ?? 5000);
  tick.unref();
  refresh();

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('read-only: GET only\n');
      return;
    }
    const common = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };
    if (path === '/') {
      res.writeHead(200, {
        ...common,
        'Content-Type': 'text/html; charset=utf-8',
        // Everything is inline and same-origin; nothing else may load or frame the page.
        'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
      });
      res.end(PAGE_HTML);
    } else if (path === '/api/state') {
      res.writeHead(200, { ...common, 'Content-Type': 'application/json' });
      res.end(JSON.stringify(current));
    } else if (path === '/api/stream') {
      res.writeHead(200, { ...common, 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
      res.write(`retry: 3000\ndata: ${JSON.stringify(current)}\n\n`);
      clients.add(res);
      // A comment now and then keeps proxies (and kubectl port-forward) from closing an idle stream.
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      req.on('close', () => {
        clearInterval(keepAlive);
        clients.delete(res);
      });
    } else {
      res.writeHead(404, { ...common, 'Content-Type': 'text/plain' });
      res.end('not found\n');
    }
  };

  const server = await listen(handler, { host: opts.host, port: opts.port, auth: opts.auth });
  return {
    ...server,
    state: () => current,
    close: async () => {
      unsubscribe();
      clearInterval(tick);
      if (pending) clearTimeout(pending);
      for (const c of clients) c.end();
      clients.clear();
      await server.close();
    },
  };
}
