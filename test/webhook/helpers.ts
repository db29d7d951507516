// Test plumbing: a webhook on 127.0.0.1:0 with a self-signed certificate, and a client that speaks
// AdmissionReview over real TLS.
import { request as httpsRequest, Agent } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { InMemoryStore } from '../../src/kube/memory.js';
import { createSelfSigned, type PemPair } from '../../src/tls/certs.js';
import { startWebhook, type RunningWebhook } from '../../src/webhook/start.js';
import type { AdmissionRequest, AdmissionReviewResponse } from '../../src/webhook/admission.js';

let tlsCache: { ca: PemPair; serving: PemPair } | undefined;
export function selfSigned(): { ca: PemPair; serving: PemPair } {
  tlsCache ??= createSelfSigned();
  return tlsCache;
}

export interface TestWebhook {
  port: number;
  ca: string;
  store: InMemoryStore;
  running: RunningWebhook;
  close(): Promise<void>;
}

export async function startTestWebhook(opts: { now?: () => Date; ownNamespace?: string } = {}): Promise<TestWebhook> {
  const store = new InMemoryStore();
  await store.start();
  const { ca, serving } = selfSigned();
  const running = await startWebhook({
    store,
    tls: { kind: 'material', material: serving },
    port: 0,
    host: '127.0.0.1',
    now: opts.now,
    ownNamespace: opts.ownNamespace,
  });
  return { port: running.port, ca: ca.cert, store, running, close: () => running.close(0) };
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

export function send(
  hook: { port: number; ca: string },
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = { 'content-type': 'application/json' },
  agent?: Agent,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port: hook.port, method, path, ca: hook.ca, servername: 'localhost', headers, agent: agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

let uidCounter = 0;
export function admissionReview(request: Partial<AdmissionRequest>): { apiVersion: string; kind: string; request: AdmissionRequest } {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: `uid-${++uidCounter}-${Date.now()}`, operation: 'CREATE', ...request },
  };
}

export function kernelChaosRequest(object: unknown, extra: Partial<AdmissionRequest> = {}): Partial<AdmissionRequest> {
  const ns = (object as { metadata?: { namespace?: string } })?.metadata?.namespace;
  return {
    kind: { group: 'chaos-mesh.org', version: 'v1alpha1', kind: 'KernelChaos' },
    resource: { group: 'chaos-mesh.org', version: 'v1alpha1', resource: 'kernelchaos' },
    namespace: ns,
    name: (object as { metadata?: { name?: string } })?.metadata?.name,
    object,
    ...extra,
  };
}

export function podRequest(object: unknown, namespace: string, extra: Partial<AdmissionRequest> = {}): Partial<AdmissionRequest> {
  return {
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace,
    object,
    ...extra,
  };
}

/** POSTs a review and checks the envelope every apiserver checks; returns the response part. */
export async function review(
  hook: { port: number; ca: string },
  path: string,
  request: Partial<AdmissionRequest>,
): Promise<AdmissionReviewResponse['response']> {
  const body = admissionReview(request);
  const res = await send(hook, 'POST', path, JSON.stringify(body));
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.text}`);
  const answer = res.json as AdmissionReviewResponse;
  if (answer.apiVersion !== 'admission.k8s.io/v1' || answer.kind !== 'AdmissionReview') throw new Error(`bad envelope ${res.text}`);
  if (answer.response.uid !== body.request.uid) throw new Error(`uid ${answer.response.uid} != ${body.request.uid}`);
  if ((answer.response.patch === undefined) !== (answer.response.patchType === undefined)) throw new Error('patch without patchType');
  for (const w of answer.response.warnings ?? []) if (w.length > 120) throw new Error(`warning over 120 characters: ${w}`);
  return answer.response;
}

export function decodePatch(response: AdmissionReviewResponse['response']): { op: string; path: string; value?: unknown }[] {
  if (response.patch === undefined) return [];
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as { op: string; path: string; value?: unknown }[];
}
