// cgroup v1 and hybrid nodes, with the real runtime: one boot in which the guest's /sys/fs/cgroup
// is a tmpfs with v1 controller hierarchies instead of cgroup2 (runc detects v1 by statfs of it
// and creates v1 cgroups), then the same with cgroup2 mounted at unified/ as systemd's hybrid
// layout does. containerd + runc are driven over CRI as in containerd.vm.test.ts
// (test/vm/cri/kubelet.mjs, scenario cgroup-v1). Each layout: the seed example against a hostPID
// pod's `target` container, its `sibling` container (and on v1 another pod) and the host untouched,
// the hierarchy named in the companion's log and records; on v1 also `kernelchaos run` (doctor's
// choice is the same function, unit-tested on these mount tables in test/doctor/gather.test.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SEED_YAML } from '../fixtures/seed.js';
import { containerdScript, containerdSkipReason, prepareContainerdWork, results, type Mounts } from './containerd-support.js';
import { guestBtf, precompile } from './engine-support.js';
import { VM_SCRATCH, runInVm, testKernelHasSite } from './harness.js';

const skip = containerdSkipReason();
if (skip) console.warn(`[cgroup-v1.vm] skipped: ${skip}`);

const WORK = join(VM_SCRATCH, 'containerd-v1');

// v1 hierarchies where they usually are; a controller the kernel lacks (memory v1 on kernels
// built without CONFIG_MEMCG_V1) is simply not mounted. name=systemd as systemd mounts it.
const V1_LAYOUT = String.raw`
umount /sys/fs/cgroup || { echo "RESULT {\"error\":\"cannot unmount cgroup2 at /sys/fs/cgroup\"}"; exit 1; }
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for c in pids cpu,cpuacct memory devices freezer blkio; do
  mkdir /sys/fs/cgroup/$c
  mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c 2>/dev/null || rmdir /sys/fs/cgroup/$c
done
ln -s cpu,cpuacct /sys/fs/cgroup/cpu; ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct
mkdir /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
echo "RESULT {\"v1_mounts\":\"$(awk '$3 == "cgroup" {printf "%s ", $2}' /proc/self/mounts)\",\"root_fs\":\"$(stat -fc %T /sys/fs/cgroup)\"}"
`;

interface Phase {
  cgroup: string;
  targetId: string;
  targetsBy: string | null;
  armed: string | null;
  injected: string | null;
  target: Mounts;
  sibling: Mounts;
  /** null: no bystander pod in that phase. */
  bystander: Mounts | null;
  host: number;
  progs: number;
  exit: { code: number | null };
  progsAfter: number;
  after: Mounts;
}

function expectTargetOnly(p: Phase, context: string): void {
  expect(p.target.enomem, context).toBe(20);
  expect(p.target.error).toContain('Cannot allocate memory');
  expect(p.sibling.enomem).toBe(0);
  expect(p.sibling.ok).toBe(20);
  if (p.bystander) expect(p.bystander.enomem).toBe(0);
  expect(p.host).toBe(0);
  expect(p.progs).toBeGreaterThan(0);
  // SIGTERM: exits 0 and detaches everything.
  expect(p.exit.code).toBe(0);
  expect(p.progsAfter).toBe(0);
  expect(p.after.enomem).toBe(0);
}

describe.skipIf(skip !== undefined)(`cgroup v1 and hybrid nodes with containerd + runc in the test VM${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('faults the target container only, naming the hierarchy: v1 pids hierarchy, then hybrid unified', async () => {
    prepareContainerdWork(WORK);
    const seedPath = join(WORK, 'seed.yaml');
    writeFileSync(seedPath, SEED_YAML.replace('spec:\n', 'spec:\n  containerNames: [target]\n'));
    const btf = await guestBtf();
    await precompile(seedPath, btf, ['trampoline', 'kprobe'], 'site', { kind: 'v1', controller: 'pids' });
    await precompile(seedPath, btf);

    const run = await runInVm(containerdScript({ work: WORK, seedPath, scenario: 'cgroup-v1', before: V1_LAYOUT }), { timeoutSeconds: 900, memMb: 2048 });
    writeFileSync(join(WORK, 'vm-output.txt'), run.output);
    const r = results(run.output);
    const context = `VM output (full copy in ${join(WORK, 'vm-output.txt')}):\n${run.output.slice(-5000)}`;
    expect(r.error, context).toBeUndefined();
    expect(r.root_fs, context).toBe('tmpfs');
    expect(r.v1_mounts).toContain('/sys/fs/cgroup/pids');
    expect(r.done, context).toBe(true);

    const v1 = r.v1 as Phase;
    // runc made v1 cgroups in kubelet's cgroupfs layout; the default hierarchy holds nothing of it.
    expect(v1.cgroup).toMatch(new RegExp(`^\\d+:pids:/kubepods/besteffort/pod1a2b3c4d-0000-4a1b-8c2d-000000000001/${v1.targetId}$`, 'm'));
    expect(v1.cgroup).toMatch(/^0::\/$/m);
    expect(v1.targetsBy).toContain('targets by cgroup v1 pids hierarchy (/sys/fs/cgroup/pids)');
    expect(v1.armed).toContain('targets by cgroup v1 pids hierarchy');
    expect(v1.injected).toContain('targets by cgroup v1 pids hierarchy');
    expectTargetOnly(v1, context);
    expect(v1.bystander?.ok).toBe(20);

    // `run`: its own cgroup in the pids hierarchy, and it says so.
    const local = r.v1_run as { enomem: number; stderr: string };
    expect(local.enomem, local.stderr).toBe(10);
    // Kernels without should_failslab (6.11+ distro builds) take the seed through the syscall-entry form, and say so.
    const mechanism = testKernelHasSite(0) ? 'mechanism: should_failslab (fmod_ret)' : 'mechanism: syscall-entry form: __x64_sys_mount (fmod_ret) fails with ENOMEM at entry';
    expect(local.stderr).toContain(mechanism);
    expect(local.stderr).toContain('; targets by cgroup v1 pids hierarchy (/sys/fs/cgroup/pids)');
    expect(local.stderr).toContain('for cgroup /sys/fs/cgroup/pids/kernelchaos-run-');

    expect((r.hybrid_mount as { status: number }).status, context).toBe(0);
    const hybrid = r.hybrid as Phase;
    // runc joined the unified hierarchy as well as the v1 controllers.
    expect(hybrid.cgroup).toMatch(new RegExp(`^0::/kubepods/besteffort/pod2a2b3c4d-0000-4a1b-8c2d-000000000001/${hybrid.targetId}$`, 'm'));
    expect(hybrid.targetsBy).toContain('targets by hybrid node: cgroup v2 id in the unified hierarchy (/sys/fs/cgroup/unified)');
    expect(hybrid.injected).toContain('hybrid node');
    expectTargetOnly(hybrid, context);
  }, 1_000_000);
});
