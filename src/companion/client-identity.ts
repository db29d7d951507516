// Who may call which gRPC service. Mutual TLS proves a client holds a certificate the CA signed;
// this decides what that certificate may do: it must be issued for client authentication
// (extendedKeyUsage clientAuth) and its CN or one of its SANs must be on the service's list.
import type { PeerCertificate } from 'node:tls';

export const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

export interface ClientIdentity {
  cn: string | null;
  /** subjectAltName values without their type (`DNS:a` -> `a`, `URI:spiffe://x` -> `spiffe://x`). */
  sans: string[];
  clientAuth: boolean;
}

/** Clients allowed on one service: `any` certificate the CA signed for clientAuth, or these names. */
export type AllowedClients = { kind: 'any' } | { kind: 'names'; names: readonly string[] };

export function identityOf(cert: PeerCertificate | undefined | null): ClientIdentity | null {
  if (!cert || Object.keys(cert).length === 0) return null;
  const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : null;
  const sans = (cert.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => s.slice(s.indexOf(':') + 1));
  const eku = (cert as PeerCertificate & { ext_key_usage?: string[] }).ext_key_usage;
  return { cn, sans, clientAuth: Array.isArray(eku) && eku.includes(CLIENT_AUTH_OID) };
}

/** Why `identity` may not call `service`, or null when it may. */
export function clientProblem(identity: ClientIdentity | null, allowed: AllowedClients, service: string): string | null {
  if (!identity) return `${service}: no client certificate`;
  const who = identity.cn !== null ? `CN=${identity.cn}` : `SAN ${identity.sans[0] ?? '(none)'}`;
  if (!identity.clientAuth) return `${service}: client certificate ${who} is not issued for client authentication (extendedKeyUsage clientAuth)`;
  if (allowed.kind === 'any') return null;
  const names = [identity.cn, ...identity.sans].filter((n): n is string => n !== null);
  if (names.some((n) => allowed.names.includes(n))) return null;
  return `${service}: client ${who} is not allowed (allowed: ${allowed.names.length === 0 ? 'nobody' : allowed.names.join(', ')})`;
}

/** `--bpfki-clients a,b` -> the list; an empty string allows nobody. */
export function parseAllowedClients(text: string | undefined): AllowedClients {
  if (text === undefined) return { kind: 'any' };
  return { kind: 'names', names: text.split(',').map((s) => s.trim()).filter((s) => s !== '') };
}
