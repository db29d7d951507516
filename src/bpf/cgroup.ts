// Cgroup v2 helpers for `kernelchaos run`: a fresh child cgroup whose id (the directory's inode
// number, what bpf_get_current_cgroup_id returns) the fault engine targets.
import { mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from './types.js';

/** The cgroup2 mount point, from /proc/self/mountinfo, or null when cgroup v2 is not mounted. */
export function cgroup2Mount(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string | null {
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    if (right.split(' ')[0] !== 'cgroup2') continue;
    const mountPoint = left.split(' ')[4];
    if (mountPoint) return mountPoint.replace(/\\040/g, ' ');
  }
  return null;
}

/** This process's cgroup v2 path relative to the mount ("/" for the root), from /proc/self/cgroup. */
export function ownCgroupPath(procCgroup = readFileSync('/proc/self/cgroup', 'utf8')): string {
  const line = procCgroup.split('\n').find((l) => l.startsWith('0::'));
  return line ? line.slice(3) || '/' : '/';
}

/** The cgroup id: the inode number of the cgroup's directory. */
export function cgroupId(path: string): bigint {
  return statSync(path, { bigint: true }).ino;
}

export interface RunCgroup {
  path: string;
  id: bigint;
}

/**
 * Creates `kernelchaos-run-<pid>` under this process's cgroup (so a delegated subtree works), or
 * under the root when that is not writable. No controllers are enabled: the engine only needs the id.
 */
export function createRunCgroup(name = `kernelchaos-run-${process.pid}`): RunCgroup {
  const mount = cgroup2Mount();
  if (!mount) {
    throw new EngineError('unsupported-kernel', 'cgroup v2 is not mounted (mount -t cgroup2 none /sys/fs/cgroup): targets are cgroup v2 cgroups');
  }
  const parents = [join(mount, ownCgroupPath()), mount];
  let lastError: unknown;
  for (const parent of [...new Set(parents)]) {
    const path = join(parent, name);
    try {
      mkdirSync(path);
      return { path, id: cgroupId(path) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { path, id: cgroupId(path) };
      lastError = err;
    }
  }
  const code = (lastError as NodeJS.ErrnoException | undefined)?.code;
  throw new EngineError(
    code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'missing-capability' : 'unsupported-kernel',
    `could not create a cgroup under ${parents.join(' or ')}: ${String((lastError as Error | undefined)?.message)} (run as root)`,
  );
}

/** Moves process `pid` into the cgroup at `path`. */
export function moveToCgroup(path: string, pid: number): void {
  writeFileSync(join(path, 'cgroup.procs'), `${pid}\n`);
}

/** Pids still in the cgroup. */
export function cgroupPids(path: string): number[] {
  try {
    return readFileSync(join(path, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** Child cgroups (subdirectories) of a cgroup. */
function childCgroups(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(path, e.name));
  } catch {
    return [];
  }
}

/**
 * Removes the cgroup and any cgroups the command created below it. Processes that outlived the
 * command (daemons it started) are moved to the cgroup's parent first, so they keep running and
 * nothing is left behind. Returns false if it could not.
 */
export function removeCgroup(path: string, parent: string = join(path, '..')): boolean {
  let ok = true;
  for (const child of childCgroups(path)) ok = removeCgroup(child, parent) && ok;
  for (let attempt = 0; attempt < 3; attempt++) {
    for (const pid of cgroupPids(path)) {
      try {
        moveToCgroup(parent, pid);
      } catch {
        // already gone
      }
    }
    try {
      rmdirSync(path);
      return ok;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return ok;
      if (code !== 'EBUSY') return false;
    }
  }
  return false;
}
