// Container id -> cgroup, remembered across reconciles: a container's cgroup does not move while
// its id stays the same. Misses (the cgroup can lag the container status by a moment) are retried
// with backoff, 1 s doubling to 30 s, and tell the lifecycle when to wake for the retry.
import type { V1Pod } from '@kubernetes/client-node';
import { parseContainerId, qosClassOf, type CgroupResolver, type Resolution } from './cgroup-resolver.js';

interface Entry {
  resolution: Resolution;
  retryAt: Date | null;
  attempts: number;
}

export class ResolutionCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly resolver: Pick<CgroupResolver, 'resolve'>) {}

  /** Resolves `needed` container ids (owned by `pods`), forgetting ids no longer needed. */
  async update(needed: readonly string[], pods: readonly V1Pod[], now: Date): Promise<void> {
    const neededSet = new Set(needed);
    for (const id of this.entries.keys()) if (!neededSet.has(id)) this.entries.delete(id);
    const owner = new Map<string, V1Pod>();
    for (const pod of pods) {
      const s = pod.status;
      for (const c of [...(s?.containerStatuses ?? []), ...(s?.initContainerStatuses ?? []), ...(s?.ephemeralContainerStatuses ?? [])]) {
        if (c.containerID) owner.set(c.containerID, pod);
      }
    }
    await Promise.all(
      needed.map(async (containerId) => {
        const cached = this.entries.get(containerId);
        if (cached && (cached.retryAt === null || cached.retryAt > now)) return;
        const resolution = await this.resolveOne(containerId, owner.get(containerId));
        const attempts = (cached?.attempts ?? 0) + 1;
        const retryAt = resolution.kind === 'not-found' ? new Date(now.getTime() + Math.min(30_000, 1000 * 2 ** (attempts - 1))) : null;
        this.entries.set(containerId, { resolution, retryAt, attempts });
      }),
    );
  }

  private async resolveOne(containerId: string, pod: V1Pod | undefined): Promise<Resolution> {
    const parsed = parseContainerId(containerId);
    if (!parsed.ok) return { kind: 'unsupported', reason: parsed.reason };
    if (!pod?.metadata?.uid) return { kind: 'not-found', reason: 'the pod has no metadata.uid', tried: [] };
    return this.resolver.resolve({ podUid: pod.metadata.uid, qosClass: qosClassOf(pod), ref: parsed.ref });
  }

  resolutions(): Map<string, Resolution> {
    return new Map([...this.entries].map(([id, e]) => [id, e.resolution]));
  }

  /** The earliest pending retry, if any. */
  nextRetry(): Date | null {
    let next: Date | null = null;
    for (const e of this.entries.values()) if (e.retryAt !== null && (next === null || e.retryAt < next)) next = e.retryAt;
    return next;
  }
}
