// The controller's web dashboard in a real browser: `kernelchaos controller --dashboard-port`
// against the fake apiserver, Debian's chromium driven headless by playwright-core. A companion's
// fault counts (written into the KernelChaos status, as companions do) must show up on the page
// live, in the table and the plot. Leaves a screenshot in test-output/dashboard/.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import type { ContainerRecord, KernelChaos } from '../../src/api/types.js';
import { main } from '../../src/cli/controller.js';
import { FakeApiServer } from '../fakes/apiserver.js';
import { OUR_KERNELCHAOS_CRD } from '../fakes/crds.js';
import { freePort, kubeconfigFile } from '../fakes/net.js';
import { waitFor } from '../fakes/wait.js';
import { KC, clients, experimentBody, podBody } from '../controller/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`[dashboard.browser] skipped: ${CHROMIUM} is absent (apt-get install chromium)`);
const OUT = resolve(import.meta.dirname, '..', '..', 'test-output', 'dashboard');
const TOKEN = 'dash-token';

let server: FakeApiServer;
let dir: string;
let running: Promise<number>;
let base: string;

function setFaults(name: string, faults: number): void {
  server.mutate('chaos-mesh.org/v1alpha1', 'KernelChaos', 'apps', name, (o) => {
    const chaos = o as unknown as KernelChaos;
    const records: ContainerRecord[] = ['p-0', 'p-1'].map((pod) => ({
      id: `apps/${pod}/app`,
      selectorKey: '.',
      phase: 'Injected',
      injectedCount: 1,
      recoveredCount: 0,
      faultsInjected: faults,
      node: `node-${pod}`,
    }));
    chaos.status = { ...(chaos.status ?? {}), experiment: { ...(chaos.status?.experiment ?? {}), containerRecords: records } };
  });
}

beforeAll(async () => {
  server = await new FakeApiServer().start();
  server.create(OUR_KERNELCHAOS_CRD());
  dir = mkdtempSync(join(tmpdir(), 'kc-dashboard-'));
  const c = clients(server.kubeConfig('user'));
  await c.core.createNamespace({ body: { metadata: { name: 'apps', labels: { 'kernelchaos.dev/injection': 'enabled' } } } });
  await c.core.createNamespace({ body: { metadata: { name: 'kernelchaos-system' } } });
  for (const p of ['p-0', 'p-1']) await c.core.createNamespacedPod({ namespace: 'apps', body: podBody(p, { app: 'web' }) });
  writeFileSync(join(dir, 'token'), TOKEN);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  running = main(['--kubeconfig', await kubeconfigFile(dir, server.url), '--namespace', 'kernelchaos-system', '--identity', 'dash', '--log-level', 'error',
    '--dashboard-port', String(port), '--http-token-file', join(dir, 'token')]);
  await c.custom.createNamespacedCustomObject({ ...KC, namespace: 'apps', body: experimentBody('mounts', { mode: 'all', duration: '5m', scheduler: { cron: '@every 10m' }, selector: { labelSelectors: { app: 'web' } } }) });
  await c.custom.createNamespacedCustomObject({ ...KC, namespace: 'apps', body: experimentBody('writes', { mode: 'one', selector: { labelSelectors: { app: 'web' } } }) });
  await waitFor('the controller labelled the pods', async () => {
    const pod = await c.core.readNamespacedPod({ namespace: 'apps', name: 'p-0' });
    return (pod.metadata?.annotations?.['kernelchaos.dev/experiments'] ?? '').includes('apps/mounts');
  });
  // The controller's first status write comes after the labels (same pass): the counts go in after it.
  await waitFor('the controller wrote the status', () => server.get<KernelChaos>('chaos-mesh.org/v1alpha1', 'KernelChaos', 'apps', 'mounts')?.status?.experiment?.desiredPhase !== undefined);
  setFaults('mounts', 3);
});

afterAll(async () => {
  process.emit('SIGTERM');
  await running;
  vi.restoreAllMocks();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('controller dashboard over HTTP', () => {
  it('is read-only and behind the token', async () => {
    expect((await fetch(`${base}/api/state`)).status).toBe(401);
    const auth = { headers: { Authorization: `Bearer ${TOKEN}` } };
    expect((await fetch(`${base}/api/state`, { ...auth, method: 'POST' })).status).toBe(405);
    type State = { experiments: Array<{ key: string; faults: number; targetedPods: string[]; podContainers: Record<string, string[]> }> };
    // The controller's informers see the labels and counts a moment after the API has them.
    const mounts = await waitFor('the dashboard state has the targets and counts', async () => {
      const state = (await (await fetch(`${base}/api/state`, auth)).json()) as State;
      const m = state.experiments.find((e) => e.key === 'apps/mounts');
      return m && m.targetedPods.length === 2 && m.faults > 0 ? m : undefined;
    });
    // Two nodes, 3 each: each node's program counts once.
    expect(mounts.faults).toBe(6);
    expect(mounts.targetedPods).toEqual(['apps/p-0', 'apps/p-1']);
    expect(mounts.podContainers).toEqual({ 'apps/p-0': ['app'], 'apps/p-1': ['app'] });
  });
});

describe.skipIf(!haveChromium)(`controller dashboard in chromium${haveChromium ? '' : ` (skipped: ${CHROMIUM} absent)`}`, () => {
  let context: BrowserContext | undefined;
  afterAll(async () => context?.close());

  it('shows experiments with phase, schedule and targets, and new fault counts live in the table and the plot', async () => {
    const profile = mkdtempSync(join(tmpdir(), 'kc-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1100, height: 720 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    // A browser cannot send a bearer header: ?token= once sets the cookie and drops it from the URL.
    await page.goto(`${base}/?token=${TOKEN}`);
    expect(new URL(page.url()).search).toBe('');
    const row = page.locator('tr[data-experiment="apps/mounts"]');
    await row.locator('td.faults', { hasText: /^6$/ }).waitFor({ timeout: 20_000 });
    await expect(row.locator('.phase').textContent()).resolves.toMatch(/\w/);
    expect(await row.locator('td').nth(2).textContent()).toBe('5m every @every 10m');
    expect(await row.locator('td').nth(3).textContent()).toContain('apps/p-0 (app)');
    await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: 10_000 });

    // The companions count on (each of the two nodes): each new total appears without a reload.
    for (const n of [8, 13, 21]) {
      await new Promise((r) => setTimeout(r, 1200));
      setFaults('mounts', n);
    }
    setFaults('writes', 2);
    await row.locator('td.faults', { hasText: /^42$/ }).waitFor({ timeout: 20_000 });
    const line = page.locator('polyline[data-experiment="apps/mounts"]');
    const points = ((await line.getAttribute('points')) ?? '').trim().split(/\s+/);
    expect(points.length).toBeGreaterThanOrEqual(3);
    // Rising: the newest point is higher on screen (smaller y) than the first.
    const ys = points.map((p) => Number(p.split(',')[1]));
    expect(ys[ys.length - 1]).toBeLessThan(ys[0] ?? 0);
    expect(await page.locator('#legend').textContent()).toContain('apps/mounts: 42 faults');

    mkdirSync(OUT, { recursive: true });
    const shot = join(OUT, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot)).toBe(true);
    rmSync(profile, { recursive: true, force: true });
  }, 90_000);
});
