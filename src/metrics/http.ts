// One small HTTP(S) listener with the access rules shared by /metrics and the controller's
// dashboard: a bind address, an optional bearer token, optional TLS and, with a client CA, mutual
// TLS. Plain HTTP on all interfaces is what Prometheus scrapes by default; the rest is opt-in.
import { timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface HttpAuth {
  /** Requests must carry `Authorization: Bearer <token>`. */
  bearerToken?: string;
  /** Serve HTTPS with this certificate; with `ca`, clients must present a certificate it signed. */
  tls?: { cert: Buffer | string; key: Buffer | string; ca?: Buffer | string };
}

export interface ListenOptions {
  host: string;
  port: number;
  auth: HttpAuth;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface Listening {
  port: number;
  url: string;
  close(): Promise<void>;
}

const COOKIE = 'kernelchaos_token';

function sameToken(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

/**
 * Wraps `handler` with the token check; errors become 500 without taking the server down.
 * Scrapers send the token as a bearer header. A browser cannot, so `GET /?token=T` with the right
 * token sets it as an HttpOnly cookie and redirects to the same path without it.
 */
export function guarded(handler: Handler, auth: HttpAuth): Handler {
  return async (req, res) => {
    const token = auth.bearerToken;
    if (token !== undefined) {
      const url = new URL(req.url ?? '/', 'http://local');
      const fromQuery = url.searchParams.get('token');
      if (req.method === 'GET' && fromQuery !== null && sameToken(fromQuery, token)) {
        const secure = auth.tls ? '; Secure' : '';
        res.writeHead(303, { Location: url.pathname, 'Set-Cookie': `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/${secure}` });
        res.end();
        return;
      }
      const header = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      if (!sameToken(header, token) && !sameToken(cookie(req, COOKIE), token)) {
        res.writeHead(401, { 'Content-Type': 'text/plain', 'WWW-Authenticate': 'Bearer' });
        res.end('unauthorized: send Authorization: Bearer <token> (a browser: open /?token=<token> once)\n');
        return;
      }
    }
    try {
      await handler(req, res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  };
}

export async function listen(handler: Handler, opts: ListenOptions): Promise<Listening> {
  const wrapped = guarded(handler, opts.auth);
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => void wrapped(req, res);
  const tls = opts.auth.tls;
  const server: Server = tls
    ? createHttpsServer({ cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}) }, onRequest)
    : createHttpServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    port,
    url: `${tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
