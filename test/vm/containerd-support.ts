// Host-side preparation shared by the VM tests that run Debian's containerd and runc in the guest,
// driven through containerd's CRI plugin (test/vm/cri/kubelet.mjs over test/vm/cri/runtime.proto).
// The image is built here from local files (busybox-static and the mount-many fixture) as an OCI
// layout and imported with `ctr images import`; the pause image is the same busybox.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINE_CACHE } from './engine-support.js';
import { PROJECT_ROOT, vmAvailability } from './harness.js';

export const IMAGE = 'docker.io/kernelchaos/vm-test:local';
const PAUSE = 'docker.io/kernelchaos/pause:local';
const OCI_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };

/** Why the containerd VM tests cannot run here, or undefined. */
export function containerdSkipReason(): string | undefined {
  const vm = vmAvailability();
  if (!vm.ok) return vm.reason;
  const missing = ['containerd', 'ctr', 'runc'].filter((b) => {
    try {
      execFileSync('sh', ['-c', `PATH=$PATH:/usr/sbin command -v ${b}`]);
      return false;
    } catch {
      return true;
    }
  });
  return missing.length > 0 ? `${missing.join(', ')} not installed (apt-get install containerd runc)` : undefined;
}

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
function buildImages(work: string): void {
  const rootfs = join(work, 'rootfs');
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
  const layer = join(work, 'layer.tar');
  execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', rootfs, '-cf', layer, '.']);
  const bytes = readFileSync(layer);
  ociImage(bytes, IMAGE, ['/bin/sh'], join(work, 'image.tar'));
  ociImage(bytes, PAUSE, ['/bin/sleep', '2147483647'], join(work, 'pause.tar'));
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

/** A fresh work directory with the images and the containerd config. */
export function prepareContainerdWork(work: string): void {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  buildImages(work);
  writeFileSync(join(work, 'containerd.toml'), CONTAINERD_TOML);
}

/**
 * The guest script: `before` (shell, e.g. remounting /sys/fs/cgroup), containerd started and the
 * images imported, then the driver with KC_SCENARIO=`scenario` and the experiment at `seedPath`.
 */
export function containerdScript(opts: { work: string; seedPath: string; scenario: string; before?: string }): string {
  const { work } = opts;
  return String.raw`
W=${work}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
${opts.before ?? ''}
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
KC_ROOT=${PROJECT_ROOT} KC_WORK=$W KC_SOCK=/tmp/ctd/containerd.sock KC_CACHE=${ENGINE_CACHE} KC_IMAGE=${IMAGE} KC_SEED=${opts.seedPath} KC_SCENARIO=${opts.scenario} \
  node ${PROJECT_ROOT}/test/vm/cri/kubelet.mjs
echo "RESULT {\"driver_exit\":$?}"
`;
}

/** The `RESULT {json}` lines of the guest output, merged. */
export function results(output: string): Record<string, unknown> {
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

/** What mount-many reported in one container. */
export interface Mounts {
  enomem: number;
  ok: number;
  error: string;
}
