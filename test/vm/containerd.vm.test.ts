// The companion with a real container runtime in the test VM: Debian's containerd and runc,
// started inside the guest with a config under /tmp, driven through containerd's CRI plugin the
// way kubelet drives it (test/vm/cri/kubelet.mjs over test/vm/cri/runtime.proto; images and
// config from containerd-support.ts). Container ids, cgroups and containerStatuses[].containerID
// all come from the runtime.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SEED_YAML } from '../fixtures/seed.js';
import { containerdScript, containerdSkipReason, prepareContainerdWork, results, type Mounts } from './containerd-support.js';
import { guestBtf, precompile } from './engine-support.js';
import { VM_SCRATCH, runInVm } from './harness.js';

const skip = containerdSkipReason();
if (skip) console.warn(`[containerd.vm] skipped: ${skip}`);

const WORK = join(VM_SCRATCH, 'containerd');

describe.skipIf(skip !== undefined)(`companion with containerd + runc in the test VM${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('faults the seed example in the target container only, follows restarts and pod re-creation, and leaves nothing behind', async () => {
    prepareContainerdWork(WORK);
    // The seed example, limited to the pod's `target` container (the sibling must stay untouched).
    const seed = SEED_YAML.replace('spec:\n', 'spec:\n  containerNames: [target]\n');
    const seedPath = join(WORK, 'seed.yaml');
    writeFileSync(seedPath, seed);
    // The guest (emulated) would spend minutes in clang: compile on the host against its BTF.
    await precompile(seedPath, await guestBtf());

    const run = await runInVm(containerdScript({ work: WORK, seedPath, scenario: 'lifecycle' }), { timeoutSeconds: 1700, memMb: 2048 });
    writeFileSync(join(WORK, 'vm-output.txt'), run.output);
    const r = results(run.output);
    const context = `VM output (full copy in ${join(WORK, 'vm-output.txt')}):\n${run.output.slice(-5000)}`;
    expect(r.error, context).toBeUndefined();
    expect(r.done, context).toBe(true);

    const ids = r.container_ids as { target: string; sibling: string };
    expect(ids.target).toMatch(/^[0-9a-f]{64}$/);
    const cg = r.runtime_cgroup as { cgroup: string };
    // runc put the container where kubelet's cgroupfs driver expects it.
    expect(cg.cgroup).toBe(`0::/kubepods/besteffort/pod6f1c1a52-4c1e-4a8e-9d0b-1c2d3e4f5a6b/${ids.target}`);
    expect(r.idle_alive, context).toBe(true);

    const armed = r.armed as Record<'target' | 'sibling' | 'bystander' | 'selfLabelled', Mounts> & { host: number; progs: number };
    expect(armed.target.enomem, context).toBe(20);
    expect(armed.target.error).toContain('Cannot allocate memory');
    expect(armed.sibling.enomem).toBe(0);
    expect(armed.sibling.ok).toBe(20);
    expect(armed.bystander.enomem).toBe(0);
    expect(armed.selfLabelled.enomem).toBe(0);
    expect(armed.selfLabelled.ok).toBe(20);
    expect(armed.host).toBe(0);
    expect(armed.progs).toBeGreaterThan(r.base_progs as number);
    expect((r.forked as Mounts).enomem).toBe(15);

    const restart = r.restart as { oldId: string; newId: string; rearmMs: number | null; newCgroup: string; after: Mounts; sibling: Mounts };
    expect(restart.newId).not.toBe(restart.oldId);
    expect(restart.newCgroup).toContain(restart.newId);
    expect(restart.rearmMs, context).not.toBeNull();
    expect(restart.after.enomem).toBe(20);
    expect(restart.sibling.enomem).toBe(0);
    console.log(`[containerd.vm] container restart -> faulted in the new container: ${restart.rearmMs} ms (TCG VM)`);

    const removed = r.removed as { target: Mounts; progs: number; alive: boolean };
    expect(removed.target.enomem).toBe(0);
    expect(removed.progs).toBe(r.base_progs);
    expect(removed.alive).toBe(true);
    const rearmed = r.rearmed as { target: Mounts; sibling: Mounts };
    expect(rearmed.target.enomem).toBe(20);
    expect(rearmed.sibling.enomem).toBe(0);

    const deleted = r.pod_deleted as { progs: number; bystander: Mounts };
    expect(deleted.progs).toBe(r.base_progs);
    expect(deleted.bystander.enomem).toBe(0);
    const recreated = r.pod_recreated as { target: Mounts; sibling: Mounts };
    expect(recreated.target.enomem).toBe(20);
    expect(recreated.sibling.enomem).toBe(0);

    const killed = r.killed as { target: Mounts; progs: number };
    expect(killed.target.enomem).toBe(0);
    expect(killed.progs).toBe(r.base_progs);

    const sigterm = r.sigterm as { restartedTarget: Mounts; exit: { code: number | null }; progs: number; detached: number; after: Mounts };
    expect(sigterm.restartedTarget.enomem).toBe(20);
    expect(sigterm.exit.code).toBe(0);
    expect(sigterm.progs).toBe(r.base_progs);
    expect(sigterm.detached).toBe(1);
    expect(sigterm.after.enomem).toBe(0);
  }, 1_800_000);
});
