// Small helpers for tests that run a CLI against the fake apiserver: a free local port, a kubeconfig file.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A kubeconfig file pointing at `url` with bearer token `token` (the fake apiserver records it as the user). */
export async function kubeconfigFile(dir: string, url: string, token = 'cli'): Promise<string> {
  const file = join(dir, 'kubeconfig');
  await writeFile(file, [
    'apiVersion: v1',
    'kind: Config',
    `clusters: [{name: fake, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]`,
    `users: [{name: u, user: {token: ${token}}}]`,
    'contexts: [{name: fake, context: {cluster: fake, user: u, namespace: default}}]',
    'current-context: fake',
    '',
  ].join('\n'));
  return file;
}
