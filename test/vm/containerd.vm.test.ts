// The companion with a real container runtime in the test VM: Debian's containerd and runc,
// started inside the guest with a config under /tmp, driven through containerd's CRI plugin the
// way kubelet drives it (test/vm/cri/kubelet.mjs over test/vm/cri/runtime.proto). The image is
// built here from local files (busybox-static and the mount-many fixture) as an OCI layout and
// imported with `ctr images import`; the pause image is the same busybox. Container ids, cgroups
// and containerStatuses[].containerID all come from the runtime.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SEED_YAML } from '../fixtures/seed.js';
import { ENGINE_CACHE, guestBtf, precompile } from './engine-support.js';
import { PROJECT_ROOT, VM_SCRATCH, runInVm, vmAvailability } from './harness.js';

const vm = vmAvailability();
const missing = ['containerd', 'ctr', 'runc'].filter((b) => {
  try {
    execFileSync('sh', ['-c', `PATH=$PATH:/usr/sbin command -v ${b}`]);
    return false;
  } catch {
    return true;
  }
});
const skip = !vm.ok ? vm.reason : missing.length > 0 ? `${missing.join(', ')} not installed (apt-get install containerd runc)` : undefined;
if (skip) console.warn(`[containerd.vm] skipped: ${skip}`);

const WORK = join(VM_SCRATCH, 'containerd');
const IMAGE = 'docker.io/kernelchaos/vm-test:local';
const PAUSE = 'docker.io/kernelchaos/pause:local';
const OCI_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** An OCI image layout tar with one layer, named `ref` for `ctr images import`. */
function ociImage(layer: Buffer, ref: string, cmd: string[], out: string): void {
  const dir = `${out}.d`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const blob = (data: Buffer | string): { digest: string; size: number } => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    const hex = sha256(buf);
    writeFileSync(join(dir, 'blobs', 'sha256', hex), buf);
    return { digest: `sha256:${hex}`, size: buf.length };
  };
  const layerDesc = { mediaType: 'application/vnd.oci.image.layer.v1.tar', ...blob(layer) };
  const config = blob(
    JSON.stringify({
      architecture: OCI_ARCH[process.arch] ?? process.arch,
      os: 'linux',
      config: { Cmd: cmd, Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: [layerDesc.digest] },
    }),
  );
  const manifest = blob(
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [layerDesc] }),
  );
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': 'local' } }],
    }),
  );
  execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dir, '-cf', out, '.']);
}

/** busybox-static and a static mount-many in one layer. */
function buildImages(): void {
  const rootfs = join(WORK, 'rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc', 'm']) mkdirSync(join(rootfs, d));
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const app of ['sh', 'sleep', 'cat', 'echo', 'mkdir', 'mount', 'umount', 'ls']) symlinkSync('busybox', join(rootfs, 'bin', app));
  const cc = (() => {
    try {
      execFileSync('sh', ['-c', 'command -v cc']);
      return 'cc';
    } catch {
      return 'clang';
    }
  })();
  execFileSync(cc, ['-O2', '-Wall', '-static', '-o', join(rootfs, 'bin', 'mount-many'), join(PROJECT_ROOT, 'test/vm/fixtures/mount-many.c')]);
  const layer = join(WORK, 'layer.tar');
  execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', rootfs, '-cf', layer, '.']);
  const bytes = readFileSync(layer);
  ociImage(bytes, IMAGE, ['/bin/sh'], join(WORK, 'image.tar'));
  ociImage(bytes, PAUSE, ['/bin/sleep', '2147483647'], join(WORK, 'pause.tar'));
}

// containerd with everything under guest tmpfs; the CRI plugin with the cgroupfs driver, as on a
// kubelet node configured with cgroupDriver: cgroupfs.
const CONTAINERD_TOML = `version = 2
root = "/tmp/ctd/root"
state = "/tmp/ctd/state"
[grpc]
  address = "/tmp/ctd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE}"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "@@SNAPSHOTTER@@"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/tmp/ctd/cni/bin"
    conf_dir = "/tmp/ctd/cni/conf"
`;

const SCRIPT = String.raw`
W=@@WORK@@
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /tmp/ctd/cni/bin /tmp/ctd/cni/conf
SNAP=native
grep -qw overlay /proc/filesystems && SNAP=overlayfs
sed "s/@@SNAPSHOTTER@@/$SNAP/" $W/containerd.toml > /tmp/ctd/config.toml
containerd --config /tmp/ctd/config.toml > $W/containerd.log 2>&1 &
t=0; while [ ! -S /tmp/ctd/containerd.sock ] && [ $t -lt 120 ]; do sleep 1; t=$((t+1)); done
echo "RESULT {\"snapshotter\":\"$SNAP\"}"
for img in pause image; do
  ctr --address /tmp/ctd/containerd.sock -n k8s.io images import --snapshotter $SNAP $W/$img.tar >> $W/import.log 2>&1 || echo "RESULT {\"import_failed\":\"$img\"}"
done
ctr --address /tmp/ctd/containerd.sock -n k8s.io images ls -q >> $W/import.log 2>&1
KC_ROOT=@@ROOT@@ KC_WORK=$W KC_SOCK=/tmp/ctd/containerd.sock KC_CACHE=@@CACHE@@ KC_IMAGE=@@IMAGE@@ KC_SEED=$W/seed.yaml \
  node @@ROOT@@/test/vm/cri/kubelet.mjs
echo "RESULT {\"driver_exit\":$?}"
`;

function results(output: string): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (const line of output.split('\n')) {
    const m = /^RESULT (\{.*\})\s*$/.exec(line.trim());
    if (!m?.[1]) continue;
    try {
      Object.assign(r, JSON.parse(m[1]) as Record<string, unknown>);
    } catch {
      // a console line cut by kernel messages: ignore
    }
  }
  return r;
}

interface Mounts {
  enomem: number;
  ok: number;
  error: string;
}

describe.skipIf(skip !== undefined)(`companion with containerd + runc in the test VM${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('faults the seed example in the target container only, follows restarts and pod re-creation, and leaves nothing behind', async () => {
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(WORK, { recursive: true });
    buildImages();
    writeFileSync(join(WORK, 'containerd.toml'), CONTAINERD_TOML);
    // The seed example, limited to the pod's `target` container (the sibling must stay untouched).
    const seed = SEED_YAML.replace('spec:\n', 'spec:\n  containerNames: [target]\n');
    const seedPath = join(WORK, 'seed.yaml');
    writeFileSync(seedPath, seed);
    // The guest (emulated) would spend minutes in clang: compile on the host against its BTF.
    await precompile(seedPath, await guestBtf());

    const script = SCRIPT.replaceAll('@@WORK@@', WORK).replaceAll('@@ROOT@@', PROJECT_ROOT).replaceAll('@@CACHE@@', ENGINE_CACHE).replaceAll('@@IMAGE@@', IMAGE);
    const run = await runInVm(script, { timeoutSeconds: 1700, memMb: 2048 });
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
