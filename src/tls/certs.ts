// Certificate tooling for the webhook (serving certificate) and the companion's gRPC (mutual TLS).
// node-forge builds and signs X.509 certificates (Node's crypto cannot issue them); RSA keys come
// from Node's native generator because forge's pure-JS key generation takes seconds per key.
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

const { pki, md } = forge;

export interface PemPair {
  /** PEM certificate. */
  cert: string;
  /** PEM private key (PKCS#8). */
  key: string;
}

export const CA_LIFETIME_DAYS = 365;
export const LEAF_LIFETIME_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Backdating absorbs clock skew between the issuing machine and the apiserver. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface CaOptions {
  commonName?: string;
  days?: number;
  now?: Date;
}

export interface ServingOptions {
  /** Service name, e.g. kernelchaos-webhook. */
  service: string;
  namespace: string;
  extraDns?: string[];
  extraIps?: string[];
  days?: number;
  now?: Date;
}

export interface ClientOptions {
  commonName: string;
  days?: number;
  now?: Date;
  /** Also allow the certificate to serve (serverAuth), for peers that are both (a companion). */
  serverAuth?: boolean;
  extraDns?: string[];
}

/**
 * A random, positive, 128-bit serial (RFC 5280: at most 20 octets, positive). The leading byte is
 * masked so the DER integer is never read as negative.
 */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f | 0x10;
  return bytes.toString('hex');
}

function newRsaKey(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const forgeKey = pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  const publicKey = pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
  return { privateKey: forgeKey, publicKey, pem };
}

function validity(cert: forge.pki.Certificate, now: Date, days: number): void {
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
}

/** A self-signed CA: basicConstraints CA (critical), keyCertSign + cRLSign only. */
export function createCa(opts: CaOptions = {}): PemPair {
  const now = opts.now ?? new Date();
  const key = newRsaKey();
  const cert = pki.createCertificate();
  cert.publicKey = key.publicKey;
  cert.serialNumber = randomSerial();
  validity(cert, now, opts.days ?? CA_LIFETIME_DAYS);
  const subject = [{ name: 'commonName', value: opts.commonName ?? 'kernelchaos-ca' }, { name: 'organizationName', value: 'kernelchaos' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key.privateKey, md.sha256.create());
  return { cert: pki.certificateToPem(cert), key: key.pem };
}

/** The DNS names a Service is reached by from the apiserver and from inside the cluster. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

type AltName = { type: 2; value: string } | { type: 7; ip: string };

function altNames(dns: string[], ips: string[]): AltName[] {
  const names: AltName[] = [...new Set(dns)].map((value) => ({ type: 2, value }));
  for (const ip of new Set(ips)) {
    if (isIP(ip) === 0) throw new Error(`not an IP address: '${ip}'`);
    names.push({ type: 7, ip });
  }
  return names;
}

function issue(
  ca: PemPair,
  commonName: string,
  sans: AltName[],
  usage: { serverAuth: boolean; clientAuth: boolean },
  now: Date,
  days: number,
): PemPair {
  const caCert = pki.certificateFromPem(ca.cert);
  const caKey = pki.privateKeyFromPem(ca.key);
  const key = newRsaKey();
  const cert = pki.createCertificate();
  cert.publicKey = key.publicKey;
  cert.serialNumber = randomSerial();
  validity(cert, now, days);
  // A leaf must not outlive its CA: clients would reject it at the CA's expiry anyway.
  if (cert.validity.notAfter > caCert.validity.notAfter) cert.validity.notAfter = caCert.validity.notAfter;
  cert.setSubject([{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'kernelchaos' }]);
  cert.setIssuer(caCert.subject.attributes);
  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: usage.serverAuth, clientAuth: usage.clientAuth },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ];
  if (sans.length > 0) extensions.push({ name: 'subjectAltName', altNames: sans });
  cert.setExtensions(extensions);
  cert.sign(caKey, md.sha256.create());
  return { cert: pki.certificateToPem(cert), key: key.pem };
}

/** A serving certificate for a Service: SANs for every in-cluster DNS form plus extras. */
export function createServingCert(ca: PemPair, opts: ServingOptions): PemPair {
  const dns = [...serviceDnsNames(opts.service, opts.namespace), ...(opts.extraDns ?? [])];
  return issue(
    ca,
    `${opts.service}.${opts.namespace}.svc`,
    altNames(dns, opts.extraIps ?? []),
    { serverAuth: true, clientAuth: false },
    opts.now ?? new Date(),
    opts.days ?? LEAF_LIFETIME_DAYS,
  );
}

/** A client certificate for mutual TLS (clientAuth); the CN names the peer. */
export function createClientCert(ca: PemPair, opts: ClientOptions): PemPair {
  const dns = opts.serverAuth ? [opts.commonName, ...(opts.extraDns ?? [])] : (opts.extraDns ?? []);
  return issue(
    ca,
    opts.commonName,
    altNames(dns, []),
    { serverAuth: opts.serverAuth ?? false, clientAuth: true },
    opts.now ?? new Date(),
    opts.days ?? LEAF_LIFETIME_DAYS,
  );
}

/** A throwaway CA and a serving certificate for localhost, 127.0.0.1 and ::1 (`--self-signed`). */
export function createSelfSigned(extraDns: string[] = []): { ca: PemPair; serving: PemPair } {
  const ca = createCa({ commonName: 'kernelchaos-self-signed-ca' });
  const serving = issue(
    ca,
    'localhost',
    altNames(['localhost', ...extraDns], ['127.0.0.1', '::1']),
    { serverAuth: true, clientAuth: false },
    new Date(),
    LEAF_LIFETIME_DAYS,
  );
  return { ca, serving };
}

export interface CertInfo {
  subject: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
  isCa: boolean;
}

/** Reads the facts of a PEM certificate that renewal decisions need. Throws on a non-certificate. */
export function certInfo(pem: string): CertInfo {
  const x = new X509Certificate(pem);
  const sans = (x.subjectAltName ?? '').split(/,\s*/).filter((s) => s.length > 0);
  return {
    subject: x.subject,
    serial: x.serialNumber,
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    dnsNames: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    ipAddresses: sans.filter((s) => s.startsWith('IP Address:')).map((s) => s.slice(11).toLowerCase()),
    isCa: x.ca,
  };
}

/**
 * True when the certificate should be replaced: less than a third of its lifetime is left, it is
 * not yet valid, or it has expired. A third of 30 days leaves 10 days to notice a failed renewal.
 */
export function needsRenewal(certPem: string, now: Date = new Date()): boolean {
  const { notBefore, notAfter } = certInfo(certPem);
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const left = notAfter.getTime() - now.getTime();
  if (now < notBefore || left <= 0) return true;
  return left < lifetime / 3;
}

/** Whether `certPem` was signed by the CA in `caPem` (the private key matches the cert is not checked here). */
export function isIssuedBy(certPem: string, caPem: string): boolean {
  try {
    return new X509Certificate(certPem).verify(new X509Certificate(caPem).publicKey);
  } catch {
    return false;
  }
}

/** Whether a PEM key is the private half of a PEM certificate. */
export function keyMatchesCert(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey({ key: keyPem, format: 'pem' }));
  } catch {
    return false;
  }
}
