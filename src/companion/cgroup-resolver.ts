// Container -> cgroup directory and id, in the hierarchy chosen for this node (cgroup v2, the
// unified hierarchy of a hybrid node, or one v1 controller's; src/bpf/cgroup-hierarchy.ts). The id
// is the directory's inode number, which is what the program reads for tasks inside it (kernfs
// node id == inode on 64-bit).
//
// Kubelet lays pods out by cgroup driver and QoS class; the container runtime names the leaf:
//   systemd : kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid with _>.slice/<prefix>-<id>.scope
//   cgroupfs: kubepods/<qos>/pod<uid>/<id>
// Guaranteed pods have no QoS level. Layouts we do not know are found through /proc/<pid>/cgroup.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { describeTargetHierarchy, procCgroupPath, targetHierarchyUnder, type HierarchyChoice, type TargetHierarchy } from '../bpf/cgroup-hierarchy.js';

export type ContainerRuntime = 'containerd' | 'cri-o' | 'docker';
export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

export interface ContainerRef {
  runtime: ContainerRuntime;
  /** The runtime's container id (64 hex characters for the three runtimes). */
  id: string;
}

export type ParsedContainerId = { ok: true; ref: ContainerRef } | { ok: false; reason: string };

const RUNTIME_SCHEMES: Readonly<Record<string, ContainerRuntime>> = {
  'containerd://': 'containerd',
  'cri-o://': 'cri-o',
  'docker://': 'docker',
};

/** Parses `status.containerStatuses[].containerID`. */
export function parseContainerId(containerId: string): ParsedContainerId {
  for (const [scheme, runtime] of Object.entries(RUNTIME_SCHEMES)) {
    if (containerId.startsWith(scheme)) {
      const id = containerId.slice(scheme.length);
      // The id becomes part of a path: accept only what runtimes produce, never `/` or `..`.
      if (!/^[0-9a-f]{12,128}$/.test(id)) {
        return { ok: false, reason: `container id ${JSON.stringify(id)} is not the hex id ${runtime} assigns` };
      }
      return { ok: true, ref: { runtime, id } };
    }
  }
  return {
    ok: false,
    reason: `unknown container runtime in ${JSON.stringify(containerId)}: expected containerd://, cri-o:// or docker://`,
  };
}

export type CgroupDriver = 'systemd' | 'cgroupfs';

export type Resolution =
  | { kind: 'resolved'; path: string; cgroupId: bigint; via: CgroupDriver | 'proc' }
  | { kind: 'not-found'; reason: string; tried: string[] }
  | { kind: 'unsupported'; reason: string };

/** Where kubelet may root its pods: the default, and the `/kubelet` cgroup root that kind and others use. */
const KUBEPODS_ROOTS: ReadonlyArray<{ systemd: string; slicePrefix: string; cgroupfs: string }> = [
  { systemd: 'kubepods.slice', slicePrefix: 'kubepods', cgroupfs: 'kubepods' },
  { systemd: 'kubelet.slice/kubelet-kubepods.slice', slicePrefix: 'kubelet-kubepods', cgroupfs: 'kubelet/kubepods' },
];

const SCOPE_PREFIX: Readonly<Record<ContainerRuntime, string>> = {
  containerd: 'cri-containerd',
  'cri-o': 'crio',
  docker: 'docker',
};

/** Candidate directories (relative to the cgroup root) in the order kubelet is most likely to use them. */
export function candidatePaths(
  podUid: string,
  qos: QosClass | null,
  ref: ContainerRef,
): Array<{ driver: CgroupDriver; path: string }> {
  // Unknown QoS (a hand-written manifest without status.qosClass): try every class.
  if (qos === null) {
    return (['Burstable', 'BestEffort', 'Guaranteed'] as const).flatMap((q) => candidatePaths(podUid, q, ref));
  }
  const out: Array<{ driver: CgroupDriver; path: string }> = [];
  const level = qos === 'Guaranteed' ? null : qos.toLowerCase();
  const systemdUid = podUid.replace(/-/g, '_');
  for (const root of KUBEPODS_ROOTS) {
    const qosSlice = level === null ? root.slicePrefix : `${root.slicePrefix}-${level}`;
    const podSlice = `${qosSlice}-pod${systemdUid}.slice`;
    const parts = [root.systemd, ...(level === null ? [] : [`${qosSlice}.slice`]), podSlice, `${SCOPE_PREFIX[ref.runtime]}-${ref.id}.scope`];
    out.push({ driver: 'systemd', path: parts.join('/') });
  }
  for (const root of KUBEPODS_ROOTS) {
    const podDir = [root.cgroupfs, ...(level === null ? [] : [level]), `pod${podUid}`].join('/');
    out.push({ driver: 'cgroupfs', path: `${podDir}/${ref.id}` });
    // CRI-O and Docker keep their prefix under the cgroupfs driver in some versions.
    if (ref.runtime !== 'containerd') out.push({ driver: 'cgroupfs', path: `${podDir}/${SCOPE_PREFIX[ref.runtime]}-${ref.id}` });
  }
  return out;
}

/** metadata.uid as the apiserver assigns it. */
export const POD_UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface PodContainerCgroup {
  podUid: string;
  containerId: string;
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const HEX_ID = '([0-9a-f]{64})';
/** Container cgroups as kubelet lays them out (candidatePaths), and anything nested below one. */
const POD_CONTAINER_PATTERNS: readonly RegExp[] = KUBEPODS_ROOTS.flatMap((root) => {
  const prefix = escapeRegExp(root.slicePrefix);
  const scopes = Object.values(SCOPE_PREFIX).map(escapeRegExp).join('|');
  return [
    new RegExp(`^${escapeRegExp(root.systemd)}/(?:${prefix}-(?:burstable|besteffort)\\.slice/)?${prefix}(?:-(?:burstable|besteffort))?-pod([0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12})\\.slice/(?:${scopes})-${HEX_ID}\\.scope(?:/[^/]+)*$`),
    new RegExp(`^${escapeRegExp(root.cgroupfs)}/(?:(?:burstable|besteffort)/)?pod([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/(?:(?:${scopes})-)?${HEX_ID}(?:/[^/]+)*$`),
  ];
});

/**
 * The pod and container a cgroup (a path relative to the cgroup root) belongs to, by kubelet's
 * layouts; null for the root, host services, pod-level cgroups and anything else that is not a
 * container of a pod on this node.
 */
export function podContainerOfCgroup(relative: string): PodContainerCgroup | null {
  const path = relative.replace(/^\/+/, '');
  for (const pattern of POD_CONTAINER_PATTERNS) {
    const m = pattern.exec(path);
    if (m?.[1] && m[2]) return { podUid: m[1].replace(/_/g, '-'), containerId: m[2] };
  }
  return null;
}

export type PodContainerResolution =
  | (Extract<Resolution, { kind: 'resolved' }> & { container: PodContainerCgroup })
  | Exclude<Resolution, { kind: 'resolved' }>
  | { kind: 'refused'; reason: string };

export interface ResolverOptions {
  /** Where the host's cgroup hierarchies are mounted (/sys/fs/cgroup, or /host/sys/fs/cgroup in a pod). */
  cgroupRoot: string;
  /** The host's /proc (the DaemonSet runs with hostPID, or mounts it at /host/proc). */
  procRoot: string;
}

export interface ContainerToResolve {
  podUid: string;
  /** null when the pod's status does not say. */
  qosClass: QosClass | null;
  ref: ContainerRef;
}

export class CgroupResolver {
  private hierarchyCache: Promise<HierarchyChoice> | undefined;

  constructor(private readonly opts: ResolverOptions) {}

  /** The hierarchy this node's targets are named in (read once: a node does not change it while up). */
  hierarchy(): Promise<HierarchyChoice> {
    this.hierarchyCache ??= targetHierarchyUnder(this.opts.cgroupRoot);
    return this.hierarchyCache;
  }

  async resolve(container: ContainerToResolve): Promise<Resolution> {
    const choice = await this.hierarchy();
    if (!choice.ok) return { kind: 'unsupported', reason: choice.reason };
    const h = choice.hierarchy;
    // The uid becomes part of a path: only what the apiserver assigns (a UUID), never `/` or `..`.
    if (!POD_UID.test(container.podUid)) {
      return { kind: 'not-found', reason: `pod metadata.uid ${JSON.stringify(container.podUid.slice(0, 64))} is not a UUID`, tried: [] };
    }
    const tried: string[] = [];
    for (const candidate of candidatePaths(container.podUid, container.qosClass, container.ref)) {
      const full = join(h.root, candidate.path);
      tried.push(full);
      const id = await directoryInode(full);
      if (id !== null) return { kind: 'resolved', path: full, cgroupId: id, via: candidate.driver };
    }
    const viaProc = await this.findThroughProc(h, (cgroupPath) => cgroupPath.includes(container.ref.id));
    if (viaProc) return viaProc;
    tried.push(`${this.opts.procRoot}/*/cgroup (no process in a cgroup naming ${container.ref.id.slice(0, 12)})`);
    return {
      kind: 'not-found',
      reason:
        `no cgroup for ${container.ref.runtime} container ${container.ref.id.slice(0, 12)} in the ${describeTargetHierarchy(h)} (is it running on this node?` +
        (h.kind === 'hybrid' ? ' On hybrid nodes the runtime must place containers in the unified hierarchy too, as runc >= 1.0 and systemd do' : '') +
        ')',
      tried,
    };
  }

  /** The cgroup of a host process (bpfki requests are keyed by pid). */
  async resolvePid(pid: number): Promise<Resolution> {
    const choice = await this.hierarchy();
    if (!choice.ok) return { kind: 'unsupported', reason: choice.reason };
    const h = choice.hierarchy;
    if (!Number.isInteger(pid) || pid <= 0) return { kind: 'not-found', reason: `pid must be a positive integer, got ${pid}`, tried: [] };
    const file = join(this.opts.procRoot, String(pid), 'cgroup');
    const cgroupPath = await readProcCgroupPath(file, h);
    if (cgroupPath === null) return { kind: 'not-found', reason: `no process ${pid} on this node (read ${file})`, tried: [file] };
    return (
      (await this.fromCgroupPath(h, cgroupPath)) ?? {
        kind: 'not-found',
        reason: `process ${pid} is in cgroup ${cgroupPath}, which is not under ${h.root}`,
        tried: [file],
      }
    );
  }

  /**
   * Like resolvePid, but only for a process inside a container of a pod on this node: the root
   * cgroup, host processes, pod-level cgroups and this companion's own container are refused, so a
   * pid cannot turn one request into a node-wide fault.
   */
  async resolvePodContainerPid(pid: number): Promise<PodContainerResolution> {
    const found = await this.resolvePid(pid);
    if (found.kind !== 'resolved') return found;
    const choice = await this.hierarchy();
    if (!choice.ok) return { kind: 'unsupported', reason: choice.reason };
    const h = choice.hierarchy;
    const root = resolve(h.root);
    const relative = found.path === root ? '' : found.path.slice(root.length + 1);
    if (relative === '') return { kind: 'refused', reason: `process ${pid} is in the root cgroup: refusing to fault the whole node` };
    const container = podContainerOfCgroup(relative);
    if (!container) {
      return { kind: 'refused', reason: `process ${pid} is in cgroup /${relative}, which is not a container of a pod on this node (host processes cannot be faulted)` };
    }
    const own = await readProcCgroupPath(join(this.opts.procRoot, 'self', 'cgroup'), h);
    if (own !== null && podContainerOfCgroup(own)?.containerId === container.containerId) {
      return { kind: 'refused', reason: `process ${pid} is in the companion's own container` };
    }
    return { ...found, container };
  }

  private async findThroughProc(h: TargetHierarchy, match: (cgroupPath: string) => boolean): Promise<Resolution | null> {
    let entries: string[];
    try {
      entries = await readdir(this.opts.procRoot);
    } catch {
      return null;
    }
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      const cgroupPath = await readProcCgroupPath(join(this.opts.procRoot, entry, 'cgroup'), h);
      if (cgroupPath === null || !match(cgroupPath)) continue;
      const found = await this.fromCgroupPath(h, cgroupPath);
      if (found) return found;
    }
    return null;
  }

  /** A path from /proc/<pid>/cgroup -> the directory under the hierarchy's mount. */
  private async fromCgroupPath(h: TargetHierarchy, cgroupPath: string): Promise<Resolution | null> {
    // Inside a cgroup namespace, paths outside it start with `/..`; the host root we mount still
    // holds them below the same names, so drop the climbing part.
    const relative = cgroupPath.split('/').filter((p) => p !== '' && p !== '..' && p !== '.').join('/');
    const root = resolve(h.root);
    const full = resolve(root, relative);
    if (full !== root && !full.startsWith(root + sep)) return null;
    const id = await directoryInode(full);
    return id === null ? null : { kind: 'resolved', path: full, cgroupId: id, via: 'proc' };
  }
}

/** A process's cgroup in hierarchy `h` from its /proc/<pid>/cgroup file, or null. */
async function readProcCgroupPath(file: string, h: TargetHierarchy): Promise<string | null> {
  try {
    return procCgroupPath(await readFile(file, 'utf8'), h);
  } catch {
    return null;
  }
}

async function directoryInode(path: string): Promise<bigint | null> {
  try {
    const s = await stat(path, { bigint: true });
    return s.isDirectory() ? s.ino : null;
  } catch {
    return null;
  }
}

// ---- which containers of a pod an experiment means

export type ContainerKind = 'container' | 'init' | 'ephemeral';

export type PodContainer =
  | { name: string; kind: ContainerKind; state: 'running'; containerId: string; restartCount: number }
  | { name: string; kind: ContainerKind; state: 'not-running'; reason: string };

/**
 * The containers of `pod` that `containerNames` selects, with their runtime state. An empty list
 * means every regular container; init and ephemeral containers only when named (they are usually
 * gone, or debugging shells a user did not mean to fault).
 */
export function selectContainers(pod: V1Pod, containerNames: readonly string[] | undefined): PodContainer[] {
  const named = new Set(containerNames ?? []);
  const undeclared = new Set(named);
  const statuses: Array<{ kind: ContainerKind; list: NonNullable<V1Pod['status']>['containerStatuses'] }> = [
    { kind: 'container', list: pod.status?.containerStatuses },
    { kind: 'init', list: pod.status?.initContainerStatuses },
    { kind: 'ephemeral', list: pod.status?.ephemeralContainerStatuses },
  ];
  const declared: Array<{ name: string; kind: ContainerKind }> = [
    ...(pod.spec?.containers ?? []).map((c) => ({ name: c.name, kind: 'container' as const })),
    ...(pod.spec?.initContainers ?? []).map((c) => ({ name: c.name, kind: 'init' as const })),
    ...(pod.spec?.ephemeralContainers ?? []).map((c) => ({ name: c.name, kind: 'ephemeral' as const })),
  ];
  const out: PodContainer[] = [];
  for (const { name, kind } of declared) {
    if (named.size > 0 ? !named.has(name) : kind !== 'container') continue;
    undeclared.delete(name);
    const status = statuses.find((s) => s.kind === kind)?.list?.find((s) => s.name === name);
    if (!status) {
      out.push({ name, kind, state: 'not-running', reason: 'no container status yet' });
    } else if (status.state?.running && status.containerID) {
      out.push({ name, kind, state: 'running', containerId: status.containerID, restartCount: status.restartCount ?? 0 });
    } else {
      const why = status.state?.waiting?.reason ?? status.state?.terminated?.reason ?? 'not running';
      out.push({ name, kind, state: 'not-running', reason: why });
    }
  }
  // Names the pod does not declare: say so rather than silently fault nothing.
  for (const name of undeclared) out.push({ name, kind: 'container', state: 'not-running', reason: `the pod has no container named ${name}` });
  return out;
}

/** The pod's QoS class; kubelet always sets it, but a hand-written manifest may not (null). */
export function qosClassOf(pod: V1Pod): QosClass | null {
  const q = pod.status?.qosClass;
  return q === 'Guaranteed' || q === 'Burstable' || q === 'BestEffort' ? q : null;
}
