import { mkdtempSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import {
  CgroupResolver,
  parseContainerId,
  qosClassOf,
  selectContainers,
  type ContainerRef,
} from '../../src/companion/cgroup-resolver.js';

const UID = '8f2c1e3a-4b5d-4c6e-9f70-1a2b3c4d5e6f';
const ID = 'a'.repeat(8) + '0123456789abcdef'.repeat(3) + 'b'.repeat(8);
const OTHER = 'c'.repeat(64);

let dir: string;
let cgroupRoot: string;
let procRoot: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kc-cgroup-'));
  cgroupRoot = join(dir, 'sys-fs-cgroup');
  procRoot = join(dir, 'proc');
  mkdirSync(cgroupRoot, { recursive: true });
  mkdirSync(procRoot, { recursive: true });
  writeFileSync(join(cgroupRoot, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function mk(rel: string): bigint {
  const full = join(cgroupRoot, rel);
  mkdirSync(full, { recursive: true });
  return statSync(full, { bigint: true }).ino;
}
function proc(pid: number, cgroupLine: string): void {
  mkdirSync(join(procRoot, String(pid)), { recursive: true });
  writeFileSync(join(procRoot, String(pid), 'cgroup'), cgroupLine);
}
function ref(containerId: string): ContainerRef {
  const p = parseContainerId(containerId);
  if (!p.ok) throw new Error(p.reason);
  return p.ref;
}

describe('parseContainerId', () => {
  it('reads the three runtimes', () => {
    expect(parseContainerId(`containerd://${ID}`)).toEqual({ ok: true, ref: { runtime: 'containerd', id: ID } });
    expect(parseContainerId(`cri-o://${ID}`)).toEqual({ ok: true, ref: { runtime: 'cri-o', id: ID } });
    expect(parseContainerId(`docker://${ID}`)).toEqual({ ok: true, ref: { runtime: 'docker', id: ID } });
  });
  it('refuses other runtimes and ids that could climb out of the cgroup tree', () => {
    const rkt = parseContainerId(`rkt://${ID}`);
    expect(rkt.ok).toBe(false);
    expect(!rkt.ok && rkt.reason).toMatch(/containerd:\/\/, cri-o:\/\/ or docker:\/\//);
    expect(parseContainerId('containerd://../../etc').ok).toBe(false);
    expect(parseContainerId('containerd://').ok).toBe(false);
  });
});

describe('CgroupResolver on cgroup v2', () => {
  const table: Array<{ name: string; runtime: string; qos: 'Guaranteed' | 'Burstable' | 'BestEffort'; path: string; via: string }> = [
    { name: 'containerd, systemd, burstable', runtime: 'containerd', qos: 'Burstable', via: 'systemd',
      path: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${ID}.scope` },
    { name: 'containerd, systemd, guaranteed (no QoS level)', runtime: 'containerd', qos: 'Guaranteed', via: 'systemd',
      path: `kubepods.slice/kubepods-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${ID}.scope` },
    { name: 'cri-o, systemd, besteffort', runtime: 'cri-o', qos: 'BestEffort', via: 'systemd',
      path: `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice/crio-${ID}.scope` },
    { name: 'docker, systemd, burstable', runtime: 'docker', qos: 'Burstable', via: 'systemd',
      path: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/docker-${ID}.scope` },
    { name: 'containerd, cgroupfs, besteffort', runtime: 'containerd', qos: 'BestEffort', via: 'cgroupfs',
      path: `kubepods/besteffort/pod${UID}/${ID}` },
    { name: 'containerd, cgroupfs, guaranteed', runtime: 'containerd', qos: 'Guaranteed', via: 'cgroupfs',
      path: `kubepods/pod${UID}/${ID}` },
    { name: 'docker, cgroupfs, burstable', runtime: 'docker', qos: 'Burstable', via: 'cgroupfs',
      path: `kubepods/burstable/pod${UID}/${ID}` },
    { name: 'containerd, systemd under kubelet.slice (kind)', runtime: 'containerd', qos: 'BestEffort', via: 'systemd',
      path: `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${ID}.scope` },
  ];
  for (const row of table) {
    it(`finds ${row.name}`, async () => {
      const ino = mk(row.path);
      // A sibling container of the same pod must not be mistaken for it.
      mk(row.path.replace(ID, OTHER));
      const resolver = new CgroupResolver({ cgroupRoot, procRoot });
      const r = await resolver.resolve({ podUid: UID, qosClass: row.qos, ref: ref(`${row.runtime}://${ID}`) });
      expect(r).toEqual({ kind: 'resolved', path: join(cgroupRoot, row.path), cgroupId: ino, via: row.via });
    });
  }

  it('refuses a metadata.uid that is not a UUID before it becomes a path (no escape from the cgroup root)', async () => {
    mk(`kubepods/besteffort/pod/../../../${ID}`.replace(/\/\.\.\/\.\.\/\.\./, ''));
    for (const podUid of ['/../../..', `${UID}/../..`, '..', '']) {
      const r = await new CgroupResolver({ cgroupRoot, procRoot }).resolve({ podUid, qosClass: 'BestEffort', ref: ref(`containerd://${ID}`) });
      expect(r).toMatchObject({ kind: 'not-found', reason: expect.stringContaining('is not a UUID'), tried: [] });
    }
  });

  it('tries every QoS class when the pod status does not name one', async () => {
    const ino = mk(`kubepods.slice/kubepods-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${ID}.scope`);
    const r = await new CgroupResolver({ cgroupRoot, procRoot }).resolve({ podUid: UID, qosClass: null, ref: ref(`containerd://${ID}`) });
    expect(r).toMatchObject({ kind: 'resolved', cgroupId: ino });
  });

  it('falls back to /proc/<pid>/cgroup for layouts it does not know', async () => {
    const ino = mk(`system.slice/custom-runtime/${ID}`);
    proc(1, '0::/init.scope\n');
    proc(4242, `0::/system.slice/custom-runtime/${ID}\n`);
    const r = await new CgroupResolver({ cgroupRoot, procRoot }).resolve({ podUid: UID, qosClass: 'Burstable', ref: ref(`containerd://${ID}`) });
    expect(r).toEqual({ kind: 'resolved', path: join(cgroupRoot, `system.slice/custom-runtime/${ID}`), cgroupId: ino, via: 'proc' });
  });

  it('reads /proc paths written from inside a cgroup namespace (/../..) against the host root', async () => {
    const ino = mk(`kubepods/burstable/podX/${ID}`);
    proc(77, `0::/../../kubepods/burstable/podX/${ID}\n`);
    const r = await new CgroupResolver({ cgroupRoot, procRoot }).resolve({ podUid: UID, qosClass: 'Burstable', ref: ref(`containerd://${ID}`) });
    expect(r).toMatchObject({ kind: 'resolved', cgroupId: ino, via: 'proc' });
  });

  it('says what it tried when the container is not on this node', async () => {
    proc(1, '0::/init.scope\n');
    const r = await new CgroupResolver({ cgroupRoot, procRoot }).resolve({ podUid: UID, qosClass: 'Burstable', ref: ref(`containerd://${ID}`) });
    expect(r.kind).toBe('not-found');
    if (r.kind !== 'not-found') return;
    expect(r.reason).toContain(ID.slice(0, 12));
    expect(r.tried.some((t) => t.endsWith(`cri-containerd-${ID}.scope`))).toBe(true);
    expect(r.tried.some((t) => t.includes(`kubepods/burstable/pod${UID}/${ID}`))).toBe(true);
  });

  it('resolves a pid (bpfki) to its cgroup', async () => {
    const ino = mk('kubepods.slice/x.scope');
    proc(900, '0::/kubepods.slice/x.scope\n');
    const resolver = new CgroupResolver({ cgroupRoot, procRoot });
    expect(await resolver.resolvePid(900)).toMatchObject({ kind: 'resolved', cgroupId: ino });
    const missing = await resolver.resolvePid(901);
    expect(missing).toMatchObject({ kind: 'not-found' });
    expect(missing.kind === 'not-found' && missing.reason).toContain('no process 901');
    expect(await resolver.resolvePid(-1)).toMatchObject({ kind: 'not-found' });
  });

  it('works with the host cgroup root mounted elsewhere (--cgroup-root /host/sys/fs/cgroup)', async () => {
    // The fixture root itself is such a path: nothing in the resolver assumes /sys/fs/cgroup.
    const ino = mk(`kubepods/pod${UID}/${ID}`);
    expect(cgroupRoot.startsWith('/sys/fs/cgroup')).toBe(false);
    const r = await new CgroupResolver({ cgroupRoot, procRoot }).resolve({ podUid: UID, qosClass: 'Guaranteed', ref: ref(`containerd://${ID}`) });
    expect(r).toMatchObject({ kind: 'resolved', cgroupId: ino });
  });
});

describe('CgroupResolver on cgroup v1 and hybrid nodes', () => {
  /** Turns the fixture root into a v1 node: tmpfs-like root, one directory per hierarchy (`tasks` marks v1). */
  function v1Node(hierarchies: string[]): void {
    rmSync(join(cgroupRoot, 'cgroup.controllers'));
    for (const h of hierarchies) {
      mkdirSync(join(cgroupRoot, h), { recursive: true });
      writeFileSync(join(cgroupRoot, h, 'tasks'), '');
    }
  }
  const PODS = `kubepods/besteffort/pod${UID}`;

  it('pure v1: resolves in the pids hierarchy (kubelet cgroupfs and systemd layouts), not in another controller\'s', async () => {
    v1Node(['cpu,cpuacct', 'pids', 'systemd']);
    mk(`cpu,cpuacct/${PODS}/${ID}`);
    const ino = mk(`pids/${PODS}/${ID}`);
    const resolver = new CgroupResolver({ cgroupRoot, procRoot });
    expect(await resolver.hierarchy()).toEqual({ ok: true, hierarchy: { kind: 'v1', controller: 'pids', root: join(cgroupRoot, 'pids') } });
    const r = await resolver.resolve({ podUid: UID, qosClass: 'BestEffort', ref: ref(`containerd://${ID}`) });
    expect(r).toEqual({ kind: 'resolved', path: join(cgroupRoot, 'pids', PODS, ID), cgroupId: ino, via: 'cgroupfs' });
    const scope = `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${OTHER}.scope`;
    const scopeIno = mk(`pids/${scope}`);
    const s = await resolver.resolve({ podUid: UID, qosClass: 'BestEffort', ref: ref(`containerd://${OTHER}`) });
    expect(s).toEqual({ kind: 'resolved', path: join(cgroupRoot, 'pids', scope), cgroupId: scopeIno, via: 'systemd' });
  });

  it('pure v1: reads the controller\'s line of /proc/<pid>/cgroup (layouts it does not know, bpfki pids)', async () => {
    v1Node(['pids', 'memory']);
    const ino = mk(`pids/custom/${ID}`);
    proc(4242, `5:memory:/elsewhere\n3:pids:/custom/${ID}\n1:name=systemd:/custom/${ID}\n0::/\n`);
    const resolver = new CgroupResolver({ cgroupRoot, procRoot });
    const r = await resolver.resolve({ podUid: UID, qosClass: 'Burstable', ref: ref(`containerd://${ID}`) });
    expect(r).toEqual({ kind: 'resolved', path: join(cgroupRoot, 'pids', 'custom', ID), cgroupId: ino, via: 'proc' });
    expect(await resolver.resolvePid(4242)).toMatchObject({ kind: 'resolved', cgroupId: ino });
  });

  it('pure v1, bpfki: a container process resolves to its container; a host process (hostPID or not) is refused', async () => {
    v1Node(['pids']);
    const ino = mk(`pids/${PODS}/${ID}`);
    proc(500, `3:pids:/${PODS}/${ID}\n0::/\n`);
    mk('pids/init.scope');
    proc(1, '3:pids:/init.scope\n0::/\n');
    proc(2, '3:pids:/\n0::/\n');
    const resolver = new CgroupResolver({ cgroupRoot, procRoot });
    expect(await resolver.resolvePodContainerPid(500)).toMatchObject({ kind: 'resolved', cgroupId: ino, container: { podUid: UID, containerId: ID } });
    expect(await resolver.resolvePodContainerPid(1)).toMatchObject({ kind: 'refused', reason: expect.stringContaining('not a container of a pod') });
    expect(await resolver.resolvePodContainerPid(2)).toMatchObject({ kind: 'refused', reason: expect.stringContaining('root cgroup') });
  });

  it('hybrid: resolves in the unified hierarchy, and says runc must place containers there when it finds nothing', async () => {
    v1Node(['pids', 'cpu,cpuacct', 'systemd']);
    mkdirSync(join(cgroupRoot, 'unified'));
    writeFileSync(join(cgroupRoot, 'unified', 'cgroup.controllers'), '');
    mk(`pids/${PODS}/${ID}`);
    const ino = mk(`unified/${PODS}/${ID}`);
    const resolver = new CgroupResolver({ cgroupRoot, procRoot });
    expect(await resolver.hierarchy()).toEqual({ ok: true, hierarchy: { kind: 'hybrid', root: join(cgroupRoot, 'unified') } });
    expect(await resolver.resolve({ podUid: UID, qosClass: 'BestEffort', ref: ref(`containerd://${ID}`) })).toMatchObject({ kind: 'resolved', cgroupId: ino, via: 'cgroupfs' });
    mk(`pids/${PODS}/${OTHER}`);
    const missing = await resolver.resolve({ podUid: UID, qosClass: 'BestEffort', ref: ref(`containerd://${OTHER}`) });
    expect(missing.kind === 'not-found' && missing.reason).toContain('runc >= 1.0');
  });

  it('names the flag when nothing is mounted at the root', async () => {
    const r = await new CgroupResolver({ cgroupRoot: join(dir, 'nothing'), procRoot }).resolvePid(1);
    expect(r.kind === 'unsupported' && r.reason).toContain('--cgroup-root');
  });
});

describe('selectContainers', () => {
  const pod: V1Pod = {
    metadata: { name: 'p', namespace: 'n', uid: UID },
    spec: {
      containers: [{ name: 'app' }, { name: 'sidecar' }, { name: 'late' }],
      initContainers: [{ name: 'init' }],
      ephemeralContainers: [{ name: 'debug' }],
    },
    status: {
      qosClass: 'Burstable',
      containerStatuses: [
        { name: 'app', containerID: `containerd://${ID}`, state: { running: {} }, restartCount: 2, image: 'i', imageID: 'i', ready: true },
        { name: 'sidecar', containerID: `containerd://${OTHER}`, state: { running: {} }, restartCount: 0, image: 'i', imageID: 'i', ready: true },
        { name: 'late', state: { waiting: { reason: 'CrashLoopBackOff' } }, restartCount: 5, image: 'i', imageID: 'i', ready: false },
      ],
      initContainerStatuses: [
        { name: 'init', containerID: `containerd://${'d'.repeat(64)}`, state: { terminated: { exitCode: 0, reason: 'Completed' } }, restartCount: 0, image: 'i', imageID: 'i', ready: false },
      ],
      ephemeralContainerStatuses: [
        { name: 'debug', containerID: `containerd://${'e'.repeat(64)}`, state: { running: {} }, restartCount: 0, image: 'i', imageID: 'i', ready: false },
      ],
    },
  };
  it('empty containerNames means every regular container, not init or ephemeral ones', () => {
    const got = selectContainers(pod, []);
    expect(got.map((c) => `${c.name}:${c.state}`)).toEqual(['app:running', 'sidecar:running', 'late:not-running']);
    expect(got[2]).toMatchObject({ reason: 'CrashLoopBackOff' });
    expect(got[0]).toMatchObject({ containerId: `containerd://${ID}`, restartCount: 2 });
  });
  it('containerNames narrows, and may name an ephemeral container explicitly', () => {
    expect(selectContainers(pod, ['sidecar', 'debug']).map((c) => `${c.name}:${c.kind}:${c.state}`)).toEqual([
      'sidecar:container:running',
      'debug:ephemeral:running',
    ]);
  });
  it('reports a named container the pod does not have', () => {
    expect(selectContainers(pod, ['app', 'nope'])).toEqual([
      expect.objectContaining({ name: 'app', state: 'running' }),
      { name: 'nope', kind: 'container', state: 'not-running', reason: 'the pod has no container named nope' },
    ]);
  });
  it('reads the QoS class, or null when absent', () => {
    expect(qosClassOf(pod)).toBe('Burstable');
    expect(qosClassOf({ metadata: {} })).toBeNull();
  });
});
