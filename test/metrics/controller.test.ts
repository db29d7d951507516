// `kernelchaos controller --metrics-port` against the fake apiserver, scraped over a real socket:
// leader state, pods selected per experiment, reconcile durations and failed API writes.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/controller.js';
import { FakeApiServer } from '../fakes/apiserver.js';
import { OUR_KERNELCHAOS_CRD } from '../fakes/crds.js';
import { waitFor } from '../fakes/wait.js';
import { freePort, kubeconfigFile } from '../fakes/net.js';
import { KC, clients, experimentBody, podBody } from '../controller/harness.js';
import { scrape, value } from './scrape.js';

let server: FakeApiServer;
let dir: string;

beforeEach(async () => {
  server = await new FakeApiServer().start();
  dir = await mkdtemp(join(tmpdir(), 'kc-ctl-metrics-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('controller /metrics', () => {
  it('exports leader state, selected pods, reconcile durations and API errors', async () => {
    const file = await kubeconfigFile(dir, server.url);
    server.create(OUR_KERNELCHAOS_CRD());
    const c = clients(server.kubeConfig('user'));
    await c.core.createNamespace({ body: { metadata: { name: 'apps', labels: { 'kernelchaos.dev/injection': 'enabled' } } } });
    await c.core.createNamespace({ body: { metadata: { name: 'chaos-system' } } });
    for (const p of ['p-0', 'p-1']) await c.core.createNamespacedPod({ namespace: 'apps', body: podBody(p, { app: 'web' }) });
    await writeFile(join(dir, 'token'), 'scrape-token\n');
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/metrics`;
    const auth = { headers: { Authorization: 'Bearer scrape-token' } };
    // The cluster refuses the label patches of one experiment's pods: a failed API write.
    server.hook((req) => {
      if (req.method === 'PATCH' && req.resource.plural === 'pods' && req.name === 'p-1' && req.user === 'cli') {
        return { status: 403, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'pods "p-1" is forbidden' } };
      }
      return undefined;
    });

    const running = main(['--kubeconfig', file, '--namespace', 'chaos-system', '--identity', 'm', '--log-level', 'error',
      '--metrics-port', String(port), '--metrics-host', '127.0.0.1', '--http-token-file', join(dir, 'token')]);
    await waitFor('metrics served', async () => (await scrape(url, auth)).status === 200);
    expect((await scrape(url)).status).toBe(401);
    await c.custom.createNamespacedCustomObject({ ...KC, namespace: 'apps', body: experimentBody('exp', { mode: 'all', selector: { labelSelectors: { app: 'web' } } }) });

    const s = await waitFor('an API error counted', async () => {
      const r = await scrape(url, auth);
      return (value(r.samples, 'kernelchaos_controller_api_errors_total', { action: 'labelPod' }) ?? 0) > 0 ? r : undefined;
    });
    expect(value(s.samples, 'kernelchaos_controller_leader')).toBe(1);
    expect(value(s.samples, 'kernelchaos_controller_selected_pods', { namespace: 'apps', experiment: 'exp' })).toBe(2);
    expect(value(s.samples, 'kernelchaos_controller_experiments', { decision: 'active' })).toBe(1);
    expect(value(s.samples, 'kernelchaos_controller_reconcile_duration_seconds_count')).toBeGreaterThan(0);
    expect(value(s.samples, 'kernelchaos_controller_actions_total', { action: 'labelPod', outcome: 'done' })).toBeGreaterThanOrEqual(1);
    expect(s.samples.some((x) => x.name === 'process_cpu_seconds_total')).toBe(true);
    expect(s.samples.some((x) => x.name === 'nodejs_heap_size_used_bytes')).toBe(true);

    process.emit('SIGTERM');
    expect(await running).toBe(0);
    await expect(fetch(url, auth)).rejects.toThrow();
  });
});
