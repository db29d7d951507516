import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { certInfo, createCa, createServingCert, isIssuedBy } from '../../src/tls/certs.js';
import { main } from '../../src/cli/certs.js';

const repo = resolve(import.meta.dirname, '../..');
const cli = `${process.execPath} --import tsx ${join(repo, 'test/tls/run-cli.ts')}`;
let dir: string;

/** Runs `kernelchaos certs ...` in-process, capturing what it prints. */
async function certs(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  const write = process.stdout.write.bind(process.stdout);
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  process.stdout.write = ((chunk: string | Uint8Array) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    process.stdout.write = write;
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kc-certs-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kernelchaos certs', () => {
  it('ca, serve and client write PEM files with a private key mode of 0600', async () => {
    expect((await certs('ca', '--out', join(dir, 'ca'))).code).toBe(0);
    const serve = await certs('serve', '--ca-dir', join(dir, 'ca'), '--service', 'kernelchaos-webhook', '--namespace', 'kernelchaos-system',
      '--out', join(dir, 'webhook'), '--dns', 'hook.example.com', '--ip', '192.0.2.10');
    expect(serve.code).toBe(0);
    const info = certInfo(readFileSync(join(dir, 'webhook/tls.crt'), 'utf8'));
    expect(info.dnsNames).toContain('kernelchaos-webhook.kernelchaos-system.svc');
    expect(info.dnsNames).toContain('hook.example.com');
    expect(info.ipAddresses).toContain('192.0.2.10');
    expect(statSync(join(dir, 'webhook/tls.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'webhook/ca.crt'), 'utf8')).toBe(readFileSync(join(dir, 'ca/ca.crt'), 'utf8'));

    expect((await certs('client', '--ca-dir', join(dir, 'ca'), '--cn', 'kernelchaos-controller', '--out', join(dir, 'client'))).code).toBe(0);
    const client = readFileSync(join(dir, 'client/tls.crt'), 'utf8');
    expect(certInfo(client).subject).toContain('CN=kernelchaos-controller');
    expect(isIssuedBy(client, readFileSync(join(dir, 'ca/ca.crt'), 'utf8'))).toBe(true);
  });

  it('refuses to overwrite a CA without --force, and explains usage mistakes with exit 2', async () => {
    const again = await certs('ca', '--out', join(dir, 'ca'));
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/exists; pass --force/);
    const noCa = await certs('serve', '--ca-dir', join(dir, 'nope'), '--service', 's', '--namespace', 'n', '--out', join(dir, 'x'));
    expect(noCa.code).toBe(2);
    expect(noCa.err).toMatch(/no ca\.crt and ca\.key there; create them with: kernelchaos certs ca --out/);
    expect((await certs('serve', '--ca-dir', join(dir, 'ca'))).code).toBe(2);
  });

  it('renew-if-needed keeps a fresh certificate, reissues one that lacks a SAN or comes from another CA', async () => {
    const ca = join(dir, 'ca');
    const out = join(dir, 'webhook');
    const serial = () => certInfo(readFileSync(join(out, 'tls.crt'), 'utf8')).serial;
    const before = serial();
    const keep = await certs('renew-if-needed', '--ca-dir', ca, '--service', 'kernelchaos-webhook', '--namespace', 'kernelchaos-system', '--out', out, '--dns', 'hook.example.com');
    expect(keep.code).toBe(0);
    expect(keep.out).toMatch(/kept .*tls\.crt/);
    expect(serial()).toBe(before);

    const more = await certs('renew-if-needed', '--ca-dir', ca, '--service', 'kernelchaos-webhook', '--namespace', 'kernelchaos-system', '--out', out, '--dns', 'new.example.com');
    expect(more.out).toMatch(/renewed .*missing SANs new\.example\.com/);
    expect(serial()).not.toBe(before);

    // A leaf from a foreign CA (e.g. after the CA was replaced) is reissued.
    const foreign = createServingCert(createCa(), { service: 'kernelchaos-webhook', namespace: 'kernelchaos-system' });
    writeFileSync(join(out, 'tls.crt'), foreign.cert);
    writeFileSync(join(out, 'tls.key'), foreign.key);
    const fixed = await certs('renew-if-needed', '--ca-dir', ca, '--service', 'kernelchaos-webhook', '--namespace', 'kernelchaos-system', '--out', out);
    expect(fixed.out).toMatch(/issued by another CA/);
    expect(isIssuedBy(readFileSync(join(out, 'tls.crt'), 'utf8'), readFileSync(join(ca, 'ca.crt'), 'utf8'))).toBe(true);
  });

  it('renew-if-needed reissues a certificate in the last third of its life', async () => {
    const ca = { cert: readFileSync(join(dir, 'ca/ca.crt'), 'utf8'), key: readFileSync(join(dir, 'ca/ca.key'), 'utf8') };
    const out = join(dir, 'old');
    const old = createServingCert(ca, { service: 's', namespace: 'n', now: new Date(Date.now() - 25 * 24 * 3600 * 1000) });
    await certs('serve', '--ca-dir', join(dir, 'ca'), '--service', 's', '--namespace', 'n', '--out', out);
    writeFileSync(join(out, 'tls.crt'), old.cert);
    writeFileSync(join(out, 'tls.key'), old.key);
    const r = await certs('renew-if-needed', '--ca-dir', join(dir, 'ca'), '--service', 's', '--namespace', 'n', '--out', out);
    expect(r.out).toMatch(/renewed .*less than a third of its lifetime left/);
  });

  it('inject-ca-bundle writes the CA into every webhook entry of the shipped configurations', async () => {
    const file = join(dir, 'hooks.yaml');
    copyFileSync(join(repo, 'manifests/admission/webhook-configurations.yaml'), file);
    const stdout = await certs('inject-ca-bundle', '--ca', join(dir, 'ca/ca.crt'), '-f', file);
    expect(stdout.code).toBe(0);
    const docs = parseAllDocuments(stdout.out).map((d) => d.toJS() as { webhooks: { clientConfig: { caBundle?: string } }[] });
    const entries = docs.flatMap((d) => d.webhooks);
    expect(entries).toHaveLength(6);
    const pem = readFileSync(join(dir, 'ca/ca.crt'), 'utf8');
    for (const e of entries) expect(Buffer.from(e.clientConfig.caBundle ?? '', 'base64').toString()).toBe(pem.trim() + '\n');
    // stdout mode leaves the file alone; --in-place rewrites it and keeps the comments.
    const untouched = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as { webhooks: { clientConfig: { caBundle?: string } }[] });
    expect(untouched.flatMap((d) => d.webhooks).every((e) => e.clientConfig.caBundle === undefined)).toBe(true);
    expect((await certs('inject-ca-bundle', '--ca', join(dir, 'ca/ca.crt'), '-f', file, '--in-place')).code).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# Admission webhooks of kernelchaos.');
    expect(text.match(/^\s+caBundle: /gm)).toHaveLength(6);

    const leaf = await certs('inject-ca-bundle', '--ca', join(dir, 'webhook/tls.crt'), '-f', file);
    expect(leaf.code).toBe(2);
    expect(leaf.err).toMatch(/not a CA certificate/);
    writeFileSync(join(dir, 'other.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n');
    expect((await certs('inject-ca-bundle', '--ca', join(dir, 'ca/ca.crt'), '-f', join(dir, 'other.yaml'))).err).toMatch(/no MutatingWebhookConfiguration/);
  });
});

describe('certs-scripts/gen-certs.sh', () => {
  it('creates every certificate once, then renews nothing on a second run', () => {
    const out = join(dir, 'gen');
    const env = { ...process.env, KERNELCHAOS: cli };
    const first = execFileSync('bash', [join(repo, 'certs-scripts/gen-certs.sh'), out], { env, cwd: repo, encoding: 'utf8' });
    expect(first).toMatch(/renewed .*ca\.crt/);
    for (const sub of ['webhook', 'companion', 'client-kernelchaos-controller', 'client-kernelchaos-cli']) {
      const pem = readFileSync(join(out, sub, 'tls.crt'), 'utf8');
      expect(isIssuedBy(pem, readFileSync(join(out, 'ca/ca.crt'), 'utf8'))).toBe(true);
    }
    expect(certInfo(readFileSync(join(out, 'companion/tls.crt'), 'utf8')).dnsNames).toContain('kernelchaos-companion.kernelchaos-system.svc');
    const second = spawnSync('bash', [join(repo, 'certs-scripts/gen-certs.sh'), out], { env, cwd: repo, encoding: 'utf8' });
    expect(second.status).toBe(0);
    expect(second.stdout).not.toMatch(/renewed/);
    // The CA once per call (5 calls) and each of the 4 leaves.
    expect(second.stdout.match(/^kept /gm)).toHaveLength(9);
  });

  it('install-secrets.sh applies TLS Secrets and the patched webhook configurations through kubectl', () => {
    const out = join(dir, 'gen');
    // A recording kubectl: `create ... --dry-run=client -o yaml` prints a minimal Secret, `apply -f -` saves stdin.
    const fake = join(dir, 'kubectl');
    writeFileSync(
      fake,
      `#!/usr/bin/env bash\nif [ "$1" = apply ]; then cat >> "${dir}/applied.yaml"; echo '---' >> "${dir}/applied.yaml"; else echo "kind: Recorded"; echo "args: \\"$*\\""; fi\n`,
      { mode: 0o755 },
    );
    const r = spawnSync('bash', [join(repo, 'certs-scripts/install-secrets.sh'), out], {
      env: { ...process.env, KERNELCHAOS: cli, KUBECTL: fake },
      cwd: repo,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const applied = parseAllDocuments(readFileSync(join(dir, 'applied.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, unknown> | null).filter((d) => d !== null);
    const args = applied.filter((d) => d.kind === 'Recorded').map((d) => String(d.args));
    expect(args.some((a) => /create secret tls kernelchaos-webhook-tls .*--dry-run=client -o yaml/.test(a) || /secret tls kernelchaos-webhook-tls/.test(a))).toBe(true);
    expect(args.some((a) => /secret generic kernelchaos-companion-tls --type=kubernetes.io\/tls/.test(a))).toBe(true);
    expect(args.some((a) => /kernelchaos-controller-client-tls/.test(a))).toBe(true);
    const hooks = applied.filter((d) => d.kind === 'MutatingWebhookConfiguration' || d.kind === 'ValidatingWebhookConfiguration');
    expect(hooks).toHaveLength(2);
    expect(JSON.stringify(hooks)).toContain('caBundle');
  });
});
