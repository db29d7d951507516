// The companion's /metrics over a real socket: counters follow the programs' counters, survive a
// disarm, stay per experiment; access rules (bearer token) hold. The kernel side is the recording
// double (the VM test scrapes the real engine's counters).
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateKernelChaos } from '../../src/api/validate.js';
import { EngineError } from '../../src/bpf/types.js';
import { runCompanion, type RunningCompanion } from '../../src/companion/run.js';
import { silentLog } from '../../src/kube/log.js';
import { FakeEngine, WEB_POD, webPodManifest } from '../companion/fakes.js';
import { SEED_YAML } from '../fixtures/seed.js';
import { waitFor } from '../fakes/wait.js';
import { scrape, value } from './scrape.js';

const { uid: UID, app: APP, side: SIDE } = WEB_POD;
const POD = webPodManifest();

let dir: string;
let running: RunningCompanion | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kc-metrics-'));
});
afterEach(async () => {
  await running?.stop('test done');
  running = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function start(engine: FakeEngine, podLabels: boolean, token?: string): Promise<{ url: string; manifests: string }> {
  const manifests = join(dir, 'manifests');
  const cgroupRoot = join(dir, 'cgroup');
  mkdirSync(manifests);
  const podSlice = join(cgroupRoot, 'kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice`);
  mkdirSync(join(podSlice, `cri-containerd-${APP}.scope`), { recursive: true });
  mkdirSync(join(podSlice, `cri-containerd-${SIDE}.scope`), { recursive: true });
  writeFileSync(join(cgroupRoot, 'cgroup.controllers'), 'cpu memory\n');
  writeFileSync(join(manifests, 'pod.yaml'), POD);
  writeFileSync(join(manifests, 'seed.yaml'), SEED_YAML);
  running = await runCompanion(
    {
      node: 'node-1',
      source: { kind: 'manifests', dir: manifests, pollIntervalMs: 50 },
      cgroupRoot,
      procRoot: join(dir, 'proc'),
      metrics: { host: '127.0.0.1', port: 0, auth: token ? { bearerToken: token } : {}, podLabels, processMetrics: true },
    },
    { engine, validate: validateKernelChaos, log: silentLog },
  );
  return { url: `http://127.0.0.1:${running.metricsPort ?? 0}/metrics`, manifests };
}

const EXP = { source: 'kernelchaos', namespace: 'chaos-testing', experiment: 'kernel-chaos-example' };

describe('companion /metrics', () => {
  it('exports fault and call counters per experiment that move with the program and survive its removal', async () => {
    const engine = new FakeEngine();
    const { url, manifests } = await start(engine, false);
    let s = await scrape(url);
    expect(s.status).toBe(200);
    expect(s.contentType).toMatch(/^text\/plain/);
    expect(value(s.samples, 'kernelchaos_companion_faults_injected_total', EXP)).toBe(0);
    expect(value(s.samples, 'kernelchaos_companion_armed_programs', { mode: 'trampoline' })).toBe(1);
    expect(value(s.samples, 'kernelchaos_companion_armed_programs', { mode: 'kprobe' })).toBe(0);
    expect(value(s.samples, 'kernelchaos_companion_armed_containers', { namespace: 'chaos-testing', experiment: 'kernel-chaos-example' })).toBe(2);
    expect(value(s.samples, 'kernelchaos_companion_arm_duration_seconds_count', { mode: 'trampoline' })).toBe(1);
    // Bounded cardinality: no pod-level labels unless asked for.
    expect(s.samples.some((x) => 'pod' in x.labels)).toBe(false);
    // Default metrics under their standard names, not prefixed.
    expect(s.samples.some((x) => x.name === 'process_cpu_seconds_total')).toBe(true);
    expect(s.samples.some((x) => x.name.startsWith('nodejs_'))).toBe(true);
    expect(s.samples.some((x) => /^kernelchaos_\w+_(process|nodejs)_/.test(x.name))).toBe(false);

    const fault = engine.live()[0];
    if (!fault) throw new Error('not armed');
    fault.calls = 40n;
    fault.faults = 7n;
    s = await scrape(url);
    expect(value(s.samples, 'kernelchaos_companion_faults_injected_total', EXP)).toBe(7);
    expect(value(s.samples, 'kernelchaos_companion_site_calls_total', EXP)).toBe(40);
    fault.faults = 9n;
    s = await scrape(url);
    expect(value(s.samples, 'kernelchaos_companion_faults_injected_total', EXP)).toBe(9);

    unlinkSync(join(manifests, 'seed.yaml'));
    await waitFor('the fault is disarmed', () => engine.live().length === 0);
    s = await scrape(url);
    // The program is gone; its faults stay counted, nothing is armed.
    expect(value(s.samples, 'kernelchaos_companion_faults_injected_total', EXP)).toBe(9);
    expect(value(s.samples, 'kernelchaos_companion_armed_programs', { mode: 'trampoline' })).toBe(0);
    expect(value(s.samples, 'kernelchaos_companion_armed_containers', { experiment: 'kernel-chaos-example' })).toBeUndefined();

    // Re-armed (a new program counting from zero): the counter goes on from 9.
    writeFileSync(join(manifests, 'seed.yaml'), SEED_YAML);
    await waitFor('re-armed', () => engine.live().length === 1);
    const again = engine.live()[0];
    if (!again) throw new Error('not re-armed');
    again.faults = 3n;
    s = await scrape(url);
    expect(value(s.samples, 'kernelchaos_companion_faults_injected_total', EXP)).toBe(12);
    expect(value(s.samples, 'kernelchaos_companion_arm_duration_seconds_count', { mode: 'trampoline' })).toBe(2);
  });

  it('counts attach failures by the engine reason', async () => {
    const engine = new FakeEngine();
    engine.arm = (() => Promise.reject(new EngineError('verifier-rejected', 'the verifier said no'))) as FakeEngine['arm'];
    const { url } = await start(engine, false);
    const s = await scrape(url);
    expect(value(s.samples, 'kernelchaos_companion_attach_failures_total', { reason: 'verifier-rejected' })).toBe(1);
    expect(value(s.samples, 'kernelchaos_companion_armed_programs', { mode: 'trampoline' })).toBe(0);
  });

  it('adds per-container series only with podLabels, and refuses a scrape without the bearer token', async () => {
    const engine = new FakeEngine();
    const { url } = await start(engine, true, 's3cret');
    const refused = await scrape(url);
    expect(refused.status).toBe(401);
    const s = await scrape(url, { headers: { Authorization: 'Bearer s3cret' } });
    expect(s.status).toBe(200);
    const info = s.samples.filter((x) => x.name === 'kernelchaos_companion_armed_container_info');
    expect(info.map((x) => `${x.labels.pod_namespace}/${x.labels.pod}/${x.labels.container}`).sort()).toEqual(['app/web/app', 'app/web/side']);
    expect((await scrape(url.replace('/metrics', '/other'), { headers: { Authorization: 'Bearer s3cret' } })).status).toBe(404);
  });
});
