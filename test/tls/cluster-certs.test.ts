// `kernelchaos certs ensure-secrets` against an apiserver (the fake, through @kubernetes/client-node):
// what the install profile's Job does. The result is checked the way the apiserver uses it: a TLS
// handshake to a server holding the webhook Secret, trusting only the caBundle of the configuration.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { main } from '../../src/cli/main.js';
import { planSecrets, CA_SECRET, INSTALL_SECRETS } from '../../src/tls/cluster-certs.js';
import { certInfo, isIssuedBy } from '../../src/tls/certs.js';
import { DEFAULT_RESOURCES, FakeApiServer } from '../fakes/apiserver.js';

const repo = resolve(import.meta.dirname, '../..');
const ns = 'kernelchaos-system';
const dir = mkdtempSync(join(tmpdir(), 'kc-cluster-certs-'));
const server = new FakeApiServer({
  resources: [
    ...DEFAULT_RESOURCES,
    { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
    { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false },
    { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false },
  ],
});
let kubeconfig = '';

beforeAll(async () => {
  await server.start();
  server.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const text = readFileSync(join(repo, 'manifests/admission/webhook-configurations.yaml'), 'utf8');
  for (const d of parseAllDocuments(text)) server.create(d.toJS() as Record<string, unknown>);
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, server.kubeConfig().exportConfig());
});

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function ensure(): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (line: string) => lines.push(line);
  try {
    const code = await main(['certs', 'ensure-secrets', '--kubeconfig', kubeconfig, '--namespace', ns]);
    return { code, out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

type Secret = { data: Record<string, string>; metadata: { resourceVersion?: string } };
const secret = (name: string): Secret => server.get('v1', 'Secret', ns, name) as Secret;
const decoded = (s: Secret, key: string): string => Buffer.from(s.data[key] ?? '', 'base64').toString('utf8');

describe('certs ensure-secrets', () => {
  it('creates the Secrets and the caBundle a real TLS client then trusts; a second run changes nothing', async () => {
    const first = await ensure();
    expect(first.code).toBe(0);
    expect(first.out).toContain(`created Secret ${ns}/kernelchaos-webhook-tls: missing`);
    const ca = decoded(secret(CA_SECRET), 'ca.crt');
    const webhook = secret('kernelchaos-webhook-tls');
    expect(isIssuedBy(decoded(webhook, 'tls.crt'), ca)).toBe(true);
    expect(certInfo(decoded(webhook, 'tls.crt')).dnsNames).toContain(`kernelchaos-webhook.${ns}.svc`);
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const config = server.get('admissionregistration.k8s.io/v1', kind, undefined, 'kernelchaos') as { webhooks: { clientConfig: { caBundle?: string } }[] };
      expect(config.webhooks.length).toBeGreaterThan(0);
      for (const w of config.webhooks) expect(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8')).toBe(ca);
    }

    // As the apiserver calls the webhook: trust only the caBundle, check the Service DNS name.
    const https = createServer({ cert: decoded(webhook, 'tls.crt'), key: decoded(webhook, 'tls.key') }, (_req, res) => res.end('ok'));
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    const body = await new Promise<string>((resolveBody, reject) => {
      const req = request(
        { host: '127.0.0.1', port: (https.address() as AddressInfo).port, ca, servername: `kernelchaos-webhook.${ns}.svc`, path: '/' },
        (res) => {
          let t = '';
          res.on('data', (c: Buffer) => (t += c.toString()));
          res.on('end', () => resolveBody(t));
        },
      );
      req.on('error', reject);
      req.end();
    });
    https.close();
    expect(body).toBe('ok');

    const versions = [CA_SECRET, ...INSTALL_SECRETS.map((s) => s.name)].map((n) => secret(n).metadata.resourceVersion);
    const second = await ensure();
    expect(second.code).toBe(0);
    expect(second.out).not.toMatch(/created|renewed|set caBundle/);
    expect([CA_SECRET, ...INSTALL_SECRETS.map((s) => s.name)].map((n) => secret(n).metadata.resourceVersion)).toEqual(versions);
  }, 60_000);

  it('reissues a leaf that is due or from another CA, keeping a CA that is not', () => {
    const now = new Date();
    const start = planSecrets(new Map(), ns, now);
    const existing = new Map(start.writes.map((w) => [w.name, w.data]));
    // 25 of 30 days later: every leaf is due, the CA (1 year) is not.
    const later = planSecrets(existing, ns, new Date(now.getTime() + 25 * 86_400_000));
    expect(later.kept).toEqual([CA_SECRET]);
    expect(later.writes.map((w) => [w.name, w.why])).toEqual(INSTALL_SECRETS.map((s) => [s.name, 'less than a third of its lifetime left']));
    const foreign = planSecrets(new Map([...existing, [CA_SECRET, planSecrets(new Map(), ns, now).writes[0]?.data ?? {}]]), ns, now);
    expect(foreign.writes.map((w) => w.why)).toEqual(INSTALL_SECRETS.map(() => 'issued by another CA'));
  }, 60_000);
});
