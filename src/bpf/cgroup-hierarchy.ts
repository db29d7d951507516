// Which cgroup hierarchy a node's targets are named in, chosen once per node and used by the
// companion's resolver, `kernelchaos run`, the fault engine and `doctor`.
//
//   v2     cgroup2 at the cgroup root: the cgroup v2 id (bpf_get_current_cgroup_id()).
//   hybrid systemd's layout, v1 controllers beside cgroup2 at <root>/unified: still the v2 id, in
//          the unified hierarchy. runc (>= 1.0.0-rc94; its fs and systemd drivers) and systemd
//          place every container there too, so each container has its own unified cgroup.
//   v1     no cgroup2 mounted: the task's cgroup in ONE v1 controller hierarchy, read from
//          task->cgroups->subsys[] (kc_target_v1.bpf.h). Runtimes create a container's cgroup
//          in every mounted controller, so any one of them isolates it; hostPID containers and
//          shareProcessNamespace pods too, as the cgroup is per container, not per pid namespace.
//
// A cgroup's id is the inode number of its directory under that hierarchy's mount (kernfs id).
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * v1 controllers a target hierarchy may be, most preferred first. pids first: it exists as v1 on
 * every kernel since 4.3, and kernels from 6.11/6.12 may be built without memory and cpuset v1
 * (CONFIG_MEMCG_V1, CONFIG_CPUSETS_V1); kubelet and runc create pod and container cgroups in it.
 */
export const V1_CONTROLLERS = ['pids', 'cpu', 'memory', 'blkio', 'devices', 'freezer'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];

/** The kernel's enum cgroup_subsys_id enumerator of each (blkio is the io controller's v1 name). */
export const V1_SUBSYS_ENUMERATOR: Readonly<Record<V1Controller, string>> = {
  pids: 'pids_cgrp_id',
  cpu: 'cpu_cgrp_id',
  memory: 'memory_cgrp_id',
  blkio: 'io_cgrp_id',
  devices: 'devices_cgrp_id',
  freezer: 'freezer_cgrp_id',
};

export type TargetHierarchy =
  | { kind: 'v2'; root: string }
  | { kind: 'hybrid'; root: string }
  | { kind: 'v1'; controller: V1Controller; root: string };

export type HierarchyChoice = { ok: true; hierarchy: TargetHierarchy } | { ok: false; reason: string };

/** A mounted cgroup hierarchy: cgroup2, or a v1 hierarchy with its controllers (`name=systemd` has none). */
export type CgroupMount = { fstype: 'cgroup2'; path: string } | { fstype: 'cgroup'; path: string; controllers: string[] };

/** How the BPF program reads a task's cgroup: the default hierarchy's id, or one v1 controller's. */
export type BpfTargetHierarchy = { kind: 'default' } | { kind: 'v1'; controller: V1Controller };

export function bpfTargetOf(h: TargetHierarchy): BpfTargetHierarchy {
  return h.kind === 'v1' ? { kind: 'v1', controller: h.controller } : { kind: 'default' };
}

/** In words, for doctor, logs, `run`, status records and Events. */
export function describeTargetHierarchy(h: TargetHierarchy): string {
  if (h.kind === 'v2') return `cgroup v2 id (${h.root})`;
  if (h.kind === 'hybrid') return `hybrid node: cgroup v2 id in the unified hierarchy (${h.root})`;
  return `cgroup v1 ${h.controller} hierarchy (${h.root})`;
}

/**
 * The node's choice from its mounted hierarchies. `where` names the place looked at and
 * `hint` what to check, for the error.
 */
export function chooseTargetHierarchy(mounts: readonly CgroupMount[], where: string, hint: string): HierarchyChoice {
  const v2 = mounts.find((m) => m.fstype === 'cgroup2');
  const v1 = mounts.filter((m): m is Extract<CgroupMount, { fstype: 'cgroup' }> => m.fstype === 'cgroup');
  const v1Controllers = v1.filter((m) => m.controllers.length > 0);
  if (v2) return { ok: true, hierarchy: { kind: v1Controllers.length > 0 ? 'hybrid' : 'v2', root: v2.path } };
  for (const controller of V1_CONTROLLERS) {
    const mount = v1.find((m) => m.controllers.includes(controller));
    if (mount) return { ok: true, hierarchy: { kind: 'v1', controller, root: mount.path } };
  }
  if (v1.length > 0) {
    return {
      ok: false,
      reason: `only cgroup v1 hierarchies without a usable controller are mounted ${where} (${v1.map((m) => m.path).join(', ')}); mount one of ${V1_CONTROLLERS.join(', ')}, or cgroup2`,
    };
  }
  return { ok: false, reason: `no cgroup hierarchy is mounted ${where} (${hint})` };
}

/**
 * The hierarchies under a cgroup root as a node lays them out: cgroup2 at the root itself or at
 * `unified`, v1 hierarchies in directories named by their controllers (`pids`, `cpu,cpuacct`;
 * the `cpu` and `cpuacct` symlinks beside them are skipped). Works on a host path such as
 * /host/sys/fs/cgroup in a pod, where the mount table does not say what is below.
 */
export async function cgroupMountsUnder(cgroupRoot: string): Promise<CgroupMount[]> {
  if (await exists(join(cgroupRoot, 'cgroup.controllers'))) return [{ fstype: 'cgroup2', path: cgroupRoot }];
  const out: CgroupMount[] = [];
  let entries: Array<{ name: string; isDirectory(): boolean }>;
  try {
    entries = await readdir(cgroupRoot, { withFileTypes: true });
  } catch {
    return [];
  }
  for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(cgroupRoot, e.name);
    if (e.name === 'unified' && (await exists(join(path, 'cgroup.controllers')))) out.push({ fstype: 'cgroup2', path });
    // Only v1 hierarchies have a `tasks` file.
    // (`systemd` is systemd's name=systemd hierarchy: no controller.)
    else if (await exists(join(path, 'tasks'))) out.push({ fstype: 'cgroup', path, controllers: e.name === 'systemd' ? [] : e.name.split(',').filter(isController) });
  }
  return out;
}

/** The cgroup mounts of a /proc/<pid>/mountinfo, v1 controllers from the super options. */
export function cgroupMountsFromMountinfo(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [fstype, , superOptions = ''] = right.split(' ');
    const path = left.split(' ')[4]?.replace(/\\040/g, ' ');
    if (!path) continue;
    if (fstype === 'cgroup2') out.push({ fstype, path });
    else if (fstype === 'cgroup') out.push({ fstype, path, controllers: cgroupMountControllers(superOptions) });
  }
  return out;
}

/** v1 mount options that are not controllers. */
const V1_MOUNT_OPTIONS = new Set(['rw', 'ro', 'nosuid', 'nodev', 'noexec', 'relatime', 'noatime', 'xattr', 'noprefix', 'clone_children', 'cpuset_v2_mode', 'none', 'all', 'favordynmods']);
/** The controllers of a v1 mount from its options (`rw,nosuid,pids` -> pids). */
export function cgroupMountControllers(options: string): string[] {
  return options.split(',').filter(isController);
}
const isController = (o: string): boolean => o !== '' && !V1_MOUNT_OPTIONS.has(o) && !o.startsWith('name=') && !o.startsWith('release_agent=');

/**
 * A process's cgroup in the hierarchy (a path relative to its mount) from its /proc/<pid>/cgroup
 * text: the `0::` line for the default hierarchy, the line listing the controller for v1.
 */
export function procCgroupPath(text: string, h: TargetHierarchy): string | null {
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1).trim();
    if (h.kind === 'v1' ? controllers.split(',').includes(h.controller) : line.startsWith('0::')) return path;
  }
  return null;
}

/** The hierarchy chosen for the cgroup root (the companion's --cgroup-root). */
export async function targetHierarchyUnder(cgroupRoot: string): Promise<HierarchyChoice> {
  return chooseTargetHierarchy(await cgroupMountsUnder(cgroupRoot), `at ${cgroupRoot}`, 'is /sys/fs/cgroup mounted, and --cgroup-root right?');
}

export const MOUNTINFO_WHERE = 'on this machine';
export const MOUNTINFO_HINT = 'mount -t cgroup2 none /sys/fs/cgroup, or a v1 hierarchy such as mount -t cgroup -o pids none /sys/fs/cgroup/pids';

/** The hierarchy chosen from a machine's own mount table (/proc/self/mountinfo text): `run`, doctor. */
export function hierarchyOfMountinfo(mountinfo: string): HierarchyChoice {
  return chooseTargetHierarchy(cgroupMountsFromMountinfo(mountinfo), MOUNTINFO_WHERE, MOUNTINFO_HINT);
}

/** Any target hierarchy but plain cgroup v2 is said with the mechanism (run output, status records, Events). */
export function withHierarchy(mechanism: string, hierarchy: TargetHierarchy | undefined): string {
  return hierarchy === undefined || hierarchy.kind === 'v2' ? mechanism : `${mechanism}; targets by ${describeTargetHierarchy(hierarchy)}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
