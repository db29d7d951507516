// Cgroups for `kernelchaos run`: a fresh child cgroup, in the hierarchy this machine's targets are
// named in (cgroup-hierarchy.ts: cgroup v2, the unified hierarchy of a hybrid machine, or one v1
// controller's), whose id (the directory's inode number) the fault engine targets.
import { mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from './types.js';
import { hierarchyOfMountinfo, procCgroupPath, type TargetHierarchy } from './cgroup-hierarchy.js';

/** The cgroup id: the inode number of the cgroup's directory. */
export function cgroupId(path: string): bigint {
  return statSync(path, { bigint: true }).ino;
}

export interface RunCgroup {
  path: string;
  id: bigint;
  /** The hierarchy it is in (the engine names targets in it). */
  hierarchy: TargetHierarchy;
}

/** Where `run` makes its cgroup on this machine, from the mount table and this process's cgroups. */
export interface MachineCgroups {
  mountinfo: string;
  procCgroup: string;
}

const ownMachine = (): MachineCgroups => ({ mountinfo: readFileSync('/proc/self/mountinfo', 'utf8'), procCgroup: readFileSync('/proc/self/cgroup', 'utf8') });

/**
 * Creates `kernelchaos-run-<pid>` under this process's cgroup of the target hierarchy (so a
 * delegated subtree works), or under its root when that is not writable. No controllers are
 * enabled or limits set: the engine only needs the id.
 */
export function createRunCgroup(name = `kernelchaos-run-${process.pid}`, machine: MachineCgroups = ownMachine()): RunCgroup {
  const choice = hierarchyOfMountinfo(machine.mountinfo);
  if (!choice.ok) throw new EngineError('unsupported-kernel', `${choice.reason}: run puts the command in a cgroup of its own`);
  const hierarchy = choice.hierarchy;
  const parents = [join(hierarchy.root, procCgroupPath(machine.procCgroup, hierarchy) ?? '/'), hierarchy.root];
  let lastError: unknown;
  for (const parent of [...new Set(parents)]) {
    const path = join(parent, name);
    try {
      mkdirSync(path);
      return { path, id: cgroupId(path), hierarchy };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { path, id: cgroupId(path), hierarchy };
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
