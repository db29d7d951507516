// `kernelchaos certs ensure-secrets`: the certificates of an install kept in the cluster itself, so
// `kubectl apply -k` is the whole install: a CA Secret, the webhook's serving Secret, the companion's
// and the controller's mutual-TLS Secrets, and the CA in every webhook entry's caBundle. Each run
// reissues only what is missing, due, from another CA or mismatched; the decision is pure (planSecrets).
import { AdmissionregistrationV1Api, CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { PART_OF_LABEL, PART_OF_VALUE } from '../api/labels.js';
import { createCa, createClientCert, createServingCert, isIssuedBy, keyMatchesCert, needsRenewal, type PemPair } from './certs.js';

export const CA_SECRET = 'kernelchaos-ca';

export type LeafKind = { kind: 'serving'; service: string } | { kind: 'client'; cn: string; serverAuth: boolean };

export interface SecretSpec {
  name: string;
  type: 'kubernetes.io/tls' | 'Opaque';
  leaf: LeafKind;
}

/** The Secrets the manifests mount (manifests/webhook, manifests/companion). */
export const INSTALL_SECRETS: readonly SecretSpec[] = [
  { name: 'kernelchaos-webhook-tls', type: 'kubernetes.io/tls', leaf: { kind: 'serving', service: 'kernelchaos-webhook' } },
  { name: 'kernelchaos-companion-tls', type: 'kubernetes.io/tls', leaf: { kind: 'client', cn: 'kernelchaos-companion', serverAuth: true } },
  { name: 'kernelchaos-controller-client-tls', type: 'kubernetes.io/tls', leaf: { kind: 'client', cn: 'kernelchaos-controller', serverAuth: false } },
];

export type SecretData = Record<string, string>;

export interface PlannedWrite {
  name: string;
  type: SecretSpec['type'] | 'Opaque';
  data: SecretData;
  why: string;
}

export interface Plan {
  ca: PemPair;
  writes: PlannedWrite[];
  kept: string[];
}

function leafProblem(data: SecretData | undefined, ca: PemPair, now: Date): string | undefined {
  const cert = data?.['tls.crt'];
  const key = data?.['tls.key'];
  if (!cert || !key) return 'missing';
  try {
    if (!keyMatchesCert(cert, key)) return 'tls.key does not match tls.crt';
    if (!isIssuedBy(cert, ca.cert)) return 'issued by another CA';
    if (needsRenewal(cert, now)) return 'less than a third of its lifetime left';
  } catch {
    return 'not a certificate';
  }
  if (data?.['ca.crt'] !== ca.cert) return 'ca.crt is not the current CA';
  return undefined;
}

function issue(ca: PemPair, leaf: LeafKind, namespace: string, now: Date): PemPair {
  return leaf.kind === 'serving'
    ? createServingCert(ca, { service: leaf.service, namespace, now })
    : createClientCert(ca, { commonName: leaf.cn, serverAuth: leaf.serverAuth, extraDns: leaf.serverAuth ? [`${leaf.cn}.${namespace}.svc`] : [], now });
}

/** What to write, given the Secrets' current data (decoded; undefined when absent). */
export function planSecrets(existing: ReadonlyMap<string, SecretData>, namespace: string, now: Date, specs: readonly SecretSpec[] = INSTALL_SECRETS): Plan {
  const writes: PlannedWrite[] = [];
  const kept: string[] = [];
  const old = existing.get(CA_SECRET);
  let ca: PemPair;
  let caWhy: string | undefined;
  if (!old?.['ca.crt'] || !old['ca.key']) caWhy = 'missing';
  else if (needsRenewal(old['ca.crt'], now)) caWhy = 'less than a third of its lifetime left';
  else if (!keyMatchesCert(old['ca.crt'], old['ca.key'])) caWhy = 'ca.key does not match ca.crt';
  if (caWhy !== undefined || !old) {
    ca = createCa({ now });
    writes.push({ name: CA_SECRET, type: 'Opaque', data: { 'ca.crt': ca.cert, 'ca.key': ca.key }, why: caWhy ?? 'missing' });
  } else {
    ca = { cert: old['ca.crt'] as string, key: old['ca.key'] as string };
    kept.push(CA_SECRET);
  }
  for (const spec of specs) {
    const why = leafProblem(existing.get(spec.name), ca, now);
    if (why === undefined) {
      kept.push(spec.name);
      continue;
    }
    const pair = issue(ca, spec.leaf, namespace, now);
    writes.push({ name: spec.name, type: spec.type, data: { 'tls.crt': pair.cert, 'tls.key': pair.key, 'ca.crt': ca.cert }, why });
  }
  return { ca, writes, kept };
}

function decode(secret: V1Secret): SecretData {
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

function encode(data: SecretData): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
}

function status(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  return typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
}

export interface EnsureOptions {
  namespace: string;
  /** Names of the Mutating- and ValidatingWebhookConfiguration whose webhooks get the CA. */
  webhookConfiguration: string;
  now?: Date;
  log: (line: string) => void;
}

export async function ensureClusterSecrets(kc: KubeConfig, o: EnsureOptions): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const existing = new Map<string, SecretData>();
  const found = new Set<string>();
  for (const name of [CA_SECRET, ...INSTALL_SECRETS.map((s) => s.name)]) {
    try {
      existing.set(name, decode(await core.readNamespacedSecret({ name, namespace: o.namespace })));
      found.add(name);
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
  }
  const plan = planSecrets(existing, o.namespace, o.now ?? new Date());
  for (const w of plan.writes) {
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: w.name, namespace: o.namespace, labels: { [PART_OF_LABEL]: PART_OF_VALUE } },
      type: w.type,
      data: encode(w.data),
    };
    if (found.has(w.name)) await core.replaceNamespacedSecret({ name: w.name, namespace: o.namespace, body });
    else await core.createNamespacedSecret({ namespace: o.namespace, body });
    o.log(`${found.has(w.name) ? 'renewed' : 'created'} Secret ${o.namespace}/${w.name}: ${w.why}`);
  }
  for (const k of plan.kept) o.log(`kept Secret ${o.namespace}/${k}`);

  const bundle = Buffer.from(plan.ca.cert).toString('base64');
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const name = o.webhookConfiguration;
  const mutating = await admission.readMutatingWebhookConfiguration({ name });
  if ((mutating.webhooks ?? []).some((w) => w.clientConfig.caBundle !== bundle)) {
    for (const w of mutating.webhooks ?? []) w.clientConfig.caBundle = bundle;
    await admission.replaceMutatingWebhookConfiguration({ name, body: mutating });
    o.log(`set caBundle of MutatingWebhookConfiguration ${name}`);
  }
  const validating = await admission.readValidatingWebhookConfiguration({ name });
  if ((validating.webhooks ?? []).some((w) => w.clientConfig.caBundle !== bundle)) {
    for (const w of validating.webhooks ?? []) w.clientConfig.caBundle = bundle;
    await admission.replaceValidatingWebhookConfiguration({ name, body: validating });
    o.log(`set caBundle of ValidatingWebhookConfiguration ${name}`);
  }
}
