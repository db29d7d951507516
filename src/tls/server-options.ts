// The TLS settings every HTTPS listener of ours uses, also when its certificate is reloaded
// (setSecureContext replaces the whole context): TLS 1.2 or newer, and on 1.2 only ECDHE key
// exchange with AEAD ciphers, so a recorded session cannot be decrypted with the server key later.
// TLS 1.3 suites are forward-secret by design.
import type { SecureContextOptions } from 'node:tls';

export const FORWARD_SECRET_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const TLS_SERVER_OPTIONS: Readonly<Pick<SecureContextOptions, 'minVersion' | 'ciphers' | 'honorCipherOrder'>> = {
  minVersion: 'TLSv1.2',
  ciphers: FORWARD_SECRET_CIPHERS,
  honorCipherOrder: true,
};
