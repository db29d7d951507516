// Which hierarchy a node's targets are named in (cgroup v2, hybrid's unified, one v1 controller's),
// from the mount table (`run`, doctor) and from a cgroup root directory (the companion's
// --cgroup-root), and where `run` makes its cgroup on each. Fake trees in a temp dir stand in for
// /sys/fs/cgroup: only path logic is tested here; the kernel side runs in test/vm/cgroup-v1.vm.test.ts.
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  cgroupMountsFromMountinfo,
  cgroupMountsUnder,
  chooseTargetHierarchy,
  describeTargetHierarchy,
  procCgroupPath,
  targetHierarchyUnder,
} from '../../src/bpf/cgroup-hierarchy.js';
import { createRunCgroup } from '../../src/bpf/cgroup.js';
import { withHierarchy } from '../../src/bpf/cgroup-hierarchy.js';

const line = (id: number, mountPoint: string, fstype: string, superOptions: string): string =>
  `${id} 1 0:${id} / ${mountPoint} rw,nosuid,nodev,noexec,relatime shared:${id} - ${fstype} cgroup ${superOptions}`;

const V2 = ['22 1 0:21 / /proc rw,nosuid - proc proc rw', line(30, '/sys/fs/cgroup', 'cgroup2', 'rw,nsdelegate')].join('\n');
const HYBRID = [
  line(25, '/sys/fs/cgroup', 'tmpfs', 'ro,mode=755'),
  line(26, '/sys/fs/cgroup/unified', 'cgroup2', 'rw,nsdelegate'),
  line(27, '/sys/fs/cgroup/systemd', 'cgroup', 'rw,xattr,name=systemd'),
  line(28, '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'),
  line(29, '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'),
].join('\n');
// The same node without cgroup2, and with memory v1.
const V1 = [...HYBRID.split('\n').filter((l) => !l.includes('cgroup2')), line(31, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory')].join('\n');

describe('the target hierarchy from the mount table', () => {
  it('cgroup v2: the v2 id', () => {
    const choice = chooseTargetHierarchy(cgroupMountsFromMountinfo(V2), 'here', 'hint');
    expect(choice).toEqual({ ok: true, hierarchy: { kind: 'v2', root: '/sys/fs/cgroup' } });
  });

  it('hybrid: the v2 id in the unified hierarchy, whatever v1 controllers sit beside it', () => {
    const mounts = cgroupMountsFromMountinfo(HYBRID);
    expect(mounts).toContainEqual({ fstype: 'cgroup', path: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'] });
    expect(mounts).toContainEqual({ fstype: 'cgroup', path: '/sys/fs/cgroup/systemd', controllers: [] });
    const choice = chooseTargetHierarchy(mounts, 'here', 'hint');
    expect(choice).toEqual({ ok: true, hierarchy: { kind: 'hybrid', root: '/sys/fs/cgroup/unified' } });
    if (choice.ok) expect(describeTargetHierarchy(choice.hierarchy)).toBe('hybrid node: cgroup v2 id in the unified hierarchy (/sys/fs/cgroup/unified)');
  });

  it('pure v1: one controller hierarchy, pids first (it exists as v1 on every kernel; memory v1 may not)', () => {
    expect(chooseTargetHierarchy(cgroupMountsFromMountinfo(V1), 'here', 'hint')).toEqual({ ok: true, hierarchy: { kind: 'v1', controller: 'pids', root: '/sys/fs/cgroup/pids' } });
    const noPids = V1.split('\n').filter((l) => !l.includes('pids')).join('\n');
    expect(chooseTargetHierarchy(cgroupMountsFromMountinfo(noPids), 'here', 'hint')).toEqual({ ok: true, hierarchy: { kind: 'v1', controller: 'cpu', root: '/sys/fs/cgroup/cpu,cpuacct' } });
  });

  it('refuses, naming what to mount, when no usable hierarchy is mounted', () => {
    const onlySystemd = [line(27, '/sys/fs/cgroup/systemd', 'cgroup', 'rw,xattr,name=systemd')].join('\n');
    const a = chooseTargetHierarchy(cgroupMountsFromMountinfo(onlySystemd), 'on this machine', 'hint');
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reason).toContain('mount one of pids, cpu, memory');
    const b = chooseTargetHierarchy(cgroupMountsFromMountinfo('22 1 0:21 / /proc rw - proc proc rw\n'), 'at /host/sys/fs/cgroup', 'is --cgroup-root right?');
    expect(b).toEqual({ ok: false, reason: 'no cgroup hierarchy is mounted at /host/sys/fs/cgroup (is --cgroup-root right?)' });
  });

  it("reads a process's cgroup in the chosen hierarchy from /proc/<pid>/cgroup", () => {
    const text = '12:pids:/kubepods/besteffort/podX/abc\n4:cpu,cpuacct:/kubepods/besteffort/podX/abc\n1:name=systemd:/system.slice/containerd.service\n0::/\n';
    expect(procCgroupPath(text, { kind: 'v1', controller: 'pids', root: '/x' })).toBe('/kubepods/besteffort/podX/abc');
    expect(procCgroupPath(text, { kind: 'v1', controller: 'cpu', root: '/x' })).toBe('/kubepods/besteffort/podX/abc');
    expect(procCgroupPath(text, { kind: 'v1', controller: 'memory', root: '/x' })).toBeNull();
    expect(procCgroupPath(text, { kind: 'hybrid', root: '/x' })).toBe('/');
    expect(procCgroupPath('0::/user.slice/user-0.slice/session-1.scope\n', { kind: 'v2', root: '/x' })).toBe('/user.slice/user-0.slice/session-1.scope');
  });

  it('says the hierarchy with the mechanism unless it is plain cgroup v2', () => {
    expect(withHierarchy('should_failslab (fmod_ret)', { kind: 'v2', root: '/sys/fs/cgroup' })).toBe('should_failslab (fmod_ret)');
    expect(withHierarchy('should_failslab (fmod_ret)', { kind: 'v1', controller: 'pids', root: '/sys/fs/cgroup/pids' })).toBe(
      'should_failslab (fmod_ret); targets by cgroup v1 pids hierarchy (/sys/fs/cgroup/pids)',
    );
  });
});

describe('the target hierarchy under a cgroup root directory (--cgroup-root)', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'kc-hier-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** A v1 hierarchy directory as the kernel shows it: a `tasks` file marks v1. */
  const v1Dir = (name: string): void => {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'tasks'), '');
    writeFileSync(join(root, name, 'cgroup.procs'), '');
  };

  it('cgroup2 at the root', async () => {
    writeFileSync(join(root, 'cgroup.controllers'), 'cpu io memory pids\n');
    mkdirSync(join(root, 'kubepods'));
    expect(await targetHierarchyUnder(root)).toEqual({ ok: true, hierarchy: { kind: 'v2', root } });
  });

  it("systemd's hybrid layout: unified beside the v1 controllers", async () => {
    mkdirSync(join(root, 'unified'));
    writeFileSync(join(root, 'unified', 'cgroup.controllers'), '');
    v1Dir('systemd');
    v1Dir('cpu,cpuacct');
    symlinkSync('cpu,cpuacct', join(root, 'cpu'));
    v1Dir('pids');
    expect(await targetHierarchyUnder(root)).toEqual({ ok: true, hierarchy: { kind: 'hybrid', root: join(root, 'unified') } });
  });

  it('pure v1: the preferred controller; symlinks and non-hierarchy directories are not mistaken for one', async () => {
    v1Dir('cpu,cpuacct');
    symlinkSync('cpu,cpuacct', join(root, 'cpuacct'));
    v1Dir('net_cls,net_prio');
    v1Dir('memory');
    mkdirSync(join(root, 'pids')); // an empty mount point: nothing mounted there
    const mounts = await cgroupMountsUnder(root);
    expect(mounts.map((m) => m.path)).toEqual([join(root, 'cpu,cpuacct'), join(root, 'memory'), join(root, 'net_cls,net_prio')]);
    expect(await targetHierarchyUnder(root)).toEqual({ ok: true, hierarchy: { kind: 'v1', controller: 'cpu', root: join(root, 'cpu,cpuacct') } });
  });

  it('names --cgroup-root when nothing is there', async () => {
    const r = await targetHierarchyUnder(join(root, 'missing'));
    expect(r.ok === false && r.reason).toContain('--cgroup-root');
  });
});

describe('run makes its cgroup in the target hierarchy', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'kc-runcg-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('on v1, under its own cgroup of the pids hierarchy; the id is the directory inode', () => {
    const pids = join(root, 'pids');
    mkdirSync(join(pids, 'user.slice'), { recursive: true });
    const mountinfo = [line(29, pids, 'cgroup', 'rw,pids'), line(28, join(root, 'cpu,cpuacct'), 'cgroup', 'rw,cpu,cpuacct')].join('\n');
    const cg = createRunCgroup('kernelchaos-run-1', { mountinfo, procCgroup: '4:cpu,cpuacct:/\n3:pids:/user.slice\n0::/\n' });
    expect(cg.path).toBe(join(pids, 'user.slice', 'kernelchaos-run-1'));
    expect(cg.id).toBe(statSync(cg.path, { bigint: true }).ino);
    expect(cg.hierarchy).toEqual({ kind: 'v1', controller: 'pids', root: pids });
  });

  it('on a hybrid machine, in the unified hierarchy', () => {
    const unified = join(root, 'unified');
    mkdirSync(unified);
    const mountinfo = [line(26, unified, 'cgroup2', 'rw'), line(29, join(root, 'pids'), 'cgroup', 'rw,pids')].join('\n');
    const cg = createRunCgroup('kernelchaos-run-2', { mountinfo, procCgroup: '3:pids:/user.slice\n0::/\n' });
    expect(cg.path).toBe(join(unified, 'kernelchaos-run-2'));
    expect(cg.hierarchy.kind).toBe('hybrid');
  });

  it('refuses clearly when no cgroup hierarchy is mounted', () => {
    expect(() => createRunCgroup('x', { mountinfo: '22 1 0:21 / /proc rw - proc proc rw\n', procCgroup: '' })).toThrow(/no cgroup hierarchy is mounted on this machine \(mount -t cgroup2 .*\): run puts the command in a cgroup of its own/);
  });
});
