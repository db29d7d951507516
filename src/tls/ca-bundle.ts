// Puts a CA bundle into every webhook entry of Mutating/ValidatingWebhookConfiguration documents,
// keeping the rest of the YAML (comments, order, other documents) as written.
import { X509Certificate } from 'node:crypto';
import { parseAllDocuments, isMap, isSeq } from 'yaml';

const WEBHOOK_KINDS = new Set(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);

export interface InjectResult {
  text: string;
  /** `Kind/name[index]` of every entry that got the bundle. */
  updated: string[];
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * The certificates of every PEM text (each may hold several), each once, without the expired ones:
 * during a CA rotation the bundle holds the old CA (kubelets may still mount Secrets it signed) and
 * the new one, and the old one leaves once it has expired, so repeated rotations do not grow it.
 */
export function bundleCertificates(pems: readonly string[], now: Date = new Date()): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const block of pems.flatMap((p) => p.match(PEM_BLOCK) ?? [])) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      continue;
    }
    if (seen.has(cert.fingerprint256) || new Date(cert.validTo).getTime() <= now.getTime()) continue;
    seen.add(cert.fingerprint256);
    out.push(block);
  }
  return out;
}

/** `caPems` are concatenated into one bundle (several CAs during a CA rotation), each certificate once, expired ones dropped. */
export function injectCaBundle(yamlText: string, caPems: readonly string[], now: Date = new Date()): InjectResult {
  const bundle = Buffer.from(bundleCertificates(caPems, now).map((p) => p + '\n').join('')).toString('base64');
  const docs = parseAllDocuments(yamlText);
  const updated: string[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`not valid YAML: ${doc.errors[0]?.message ?? 'parse error'}`);
    const kind = doc.get('kind');
    if (typeof kind !== 'string' || !WEBHOOK_KINDS.has(kind)) continue;
    const webhooks = doc.get('webhooks');
    if (!isSeq(webhooks)) continue;
    webhooks.items.forEach((item, i) => {
      if (!isMap(item)) return;
      doc.setIn(['webhooks', i, 'clientConfig', 'caBundle'], bundle);
      updated.push(`${kind}/${String(doc.getIn(['metadata', 'name']) ?? '?')}[${i}]`);
    });
  }
  // Documents render with their own leading `---` markers when they had them.
  const text = docs.map((d) => d.toString()).join('');
  return { text, updated };
}
