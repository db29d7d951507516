// A CA rotation keeps the old CA in caBundle next to the new one (kubelets may still mount Secrets
// signed by the old one) and drops it only once it has expired; repeated rotations do not grow it.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { createCa } from '../../src/tls/certs.js';
import { bundleCertificates, injectCaBundle } from '../../src/tls/ca-bundle.js';

const repo = resolve(import.meta.dirname, '../..');

describe('CA bundle through a rotation', () => {
  it('keeps old and new CA, each once, and drops an expired one', () => {
    const now = new Date();
    const old = createCa({ commonName: 'old', days: 30, now: new Date(now.getTime() - 10 * 86_400_000) });
    const fresh = createCa({ commonName: 'new', days: 365, now });
    const expired = createCa({ commonName: 'expired', days: 1, now: new Date(now.getTime() - 5 * 86_400_000) });
    // The live bundle (old + expired, as one PEM text) and the new CA, the new one given twice.
    const live = `${old.cert}\n${expired.cert}`;
    expect(bundleCertificates([live, fresh.cert, fresh.cert], now)).toEqual([old.cert.trim(), fresh.cert.trim()]);
    const yaml = readFileSync(join(repo, 'manifests/admission/webhook-configurations.yaml'), 'utf8');
    const out = injectCaBundle(yaml, [live, fresh.cert], now);
    const bundles = parseAllDocuments(out.text).flatMap((d) => (d.toJS() as { webhooks: { clientConfig: { caBundle: string } }[] }).webhooks.map((w) => Buffer.from(w.clientConfig.caBundle, 'base64').toString()));
    expect(bundles).toHaveLength(6);
    for (const b of bundles) expect(b).toBe(`${old.cert.trim()}\n${fresh.cert.trim()}\n`);
    // Once the old CA has expired, the next rotation carries only the new one.
    const later = new Date(now.getTime() + 40 * 86_400_000);
    expect(bundleCertificates([bundles[0] ?? '', fresh.cert], later)).toEqual([fresh.cert.trim()]);
  });
});
