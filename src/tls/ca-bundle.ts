// Puts a CA bundle into every webhook entry of Mutating/ValidatingWebhookConfiguration documents,
// keeping the rest of the YAML (comments, order, other documents) as written.
import { parseAllDocuments, isMap, isSeq } from 'yaml';

const WEBHOOK_KINDS = new Set(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);

export interface InjectResult {
  text: string;
  /** `Kind/name[index]` of every entry that got the bundle. */
  updated: string[];
}

/** `caPems` are concatenated into one bundle (several CAs during a CA rotation). */
export function injectCaBundle(yamlText: string, caPems: readonly string[]): InjectResult {
  const bundle = Buffer.from(caPems.map((p) => p.trim() + '\n').join('')).toString('base64');
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
