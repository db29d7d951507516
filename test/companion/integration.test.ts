// The companion's real parts together on the host: a manifest directory (H5's ManifestDirStore),
// the cgroup resolver over a kubelet-style fixture tree, the real validator and cron parser. Only
// the kernel side is a recording double (this is not an e2e test: the VM test is).
import { mkdirSync, mkdtempSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateKernelChaos } from '../../src/api/validate.js';
import { runCompanion, type RunningCompanion } from '../../src/companion/run.js';
import { silentLog as kubeSilentLog } from '../../src/kube/log.js';
import { FakeEngine, WEB_POD, webPodManifest } from './fakes.js';
import { SEED_YAML as SEED } from '../fixtures/seed.js';

const { uid: UID, app: APP, side: SIDE } = WEB_POD;

let dir: string;
let running: RunningCompanion | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kc-companion-int-'));
});
afterEach(async () => {
  await running?.stop('test done');
  running = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, cond: () => boolean): Promise<void> {
  // Waits for a condition, not a duration; the bound only turns a hang into a readable failure.
  for (let i = 0; i < 1000 && !cond(); i += 1) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`never happened: ${what}`);
}

const POD = webPodManifest();


describe('companion over a manifest directory and a kubelet cgroup tree', () => {
  it('arms the seed example for every container of a targeted pod, and disarms when its file goes', async () => {
    const manifests = join(dir, 'manifests');
    const cgroupRoot = join(dir, 'cgroup');
    mkdirSync(manifests);
    const podSlice = join(cgroupRoot, 'kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice`);
    mkdirSync(join(podSlice, `cri-containerd-${APP}.scope`), { recursive: true });
    mkdirSync(join(podSlice, `cri-containerd-${SIDE}.scope`), { recursive: true });
    writeFileSync(join(cgroupRoot, 'cgroup.controllers'), 'cpu memory\n');
    const ino = (id: string): bigint => statSync(join(podSlice, `cri-containerd-${id}.scope`), { bigint: true }).ino;
    writeFileSync(join(manifests, 'pod.yaml'), POD);
    writeFileSync(join(manifests, 'seed.yaml'), SEED);

    const engine = new FakeEngine();
    running = await runCompanion(
      { node: 'node-1', source: { kind: 'manifests', dir: manifests, pollIntervalMs: 50 }, cgroupRoot, procRoot: join(dir, 'proc') },
      { engine, validate: validateKernelChaos, log: kubeSilentLog },
    );
    expect(engine.live()).toHaveLength(1);
    const fault = engine.live()[0];
    expect(fault?.targets).toEqual([ino(APP), ino(SIDE)].sort((a, b) => (a < b ? -1 : 1)));
    expect(fault?.request).toMatchObject({ failtype: 0, probability: 0, times: 0, callchain: [{ funcname: '__x64_sys_mount', predicate: null }] });
    expect(running.companion.recordsOf('chaos-testing', 'kernel-chaos-example').map((r) => `${r.container.container}:${r.phase}`).sort()).toEqual([
      'app:Injected',
      'side:Injected',
    ]);

    unlinkSync(join(manifests, 'seed.yaml'));
    await until('the fault is disarmed after the file is removed', () => engine.live().length === 0);
    expect(fault?.disarmed).toBe(true);
  });
});
