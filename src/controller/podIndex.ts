// The controller's pods, indexed the way reconcile reads them and kept current one pod event at a
// time: live pods by namespace (with a version per namespace, so a selection whose namespaces did
// not change is reused), pods by what they carry (experiment refs and label keys), and the pods that
// carry any of our keys. A reconcile at 100,000 pods then touches the pods of the changed namespaces
// and the labelled pods, never all of them.
import { isDeepStrictEqual } from 'node:util';
import type { V1Namespace, V1Node, V1Pod } from '@kubernetes/client-node';
import { EXPERIMENTS_ANNOTATION, parseExperimentsAnnotation } from '../api/labels.js';
import type { KernelChaos } from '../api/types.js';
import { podKey, podNamespace, type TargetSelection } from '../selection/index.js';
import { isExperimentLabel, labelKeyOfRef, podHasOwnKeys } from './podLabels.js';

function isTerminating(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null;
}

/** What a pod carries: experiment refs from the annotation and experiment label keys. */
function marksOf(pod: V1Pod): string[] {
  const marks = parseExperimentsAnnotation(pod.metadata?.annotations?.[EXPERIMENTS_ANNOTATION]);
  for (const key of Object.keys(pod.metadata?.labels ?? {})) if (isExperimentLabel(key)) marks.push(key);
  return marks;
}

interface CachedSelection {
  uid: string;
  spec: KernelChaos['spec'];
  fingerprint: string;
  selection: TargetSelection;
}

export class PodIndex {
  /** Live (not terminating) pods: namespace -> name -> pod. */
  private readonly byNamespace = new Map<string, Map<string, V1Pod>>();
  private readonly listed = new Map<string, V1Pod[]>();
  private readonly versions = new Map<string, number>();
  private readonly byMark = new Map<string, Map<string, V1Pod>>();
  private readonly marked = new Map<string, string[]>();
  private readonly own = new Map<string, V1Pod>();
  private generation = 0;
  // Selection reads namespaces' and nodes' labels only; these bump when any of those change.
  private namespaceLabels = new Map<string, V1Namespace['metadata']>();
  private nodeLabels = new Map<string, Readonly<Record<string, string>> | undefined>();
  private namespacesVersion = 0;
  private nodesVersion = 0;
  private readonly selections = new Map<string, CachedSelection>();

  static from(pods: readonly V1Pod[]): PodIndex {
    const index = new PodIndex();
    for (const pod of pods) index.put(pod);
    return index;
  }

  /** Adds, replaces or (when terminating) drops a pod. */
  put(pod: V1Pod): void {
    this.remove(pod);
    if (isTerminating(pod)) return;
    const ns = podNamespace(pod);
    const name = pod.metadata?.name ?? '';
    let pods = this.byNamespace.get(ns);
    if (!pods) this.byNamespace.set(ns, (pods = new Map()));
    pods.set(name, pod);
    const key = podKey(pod);
    const marks = marksOf(pod);
    if (marks.length > 0) this.marked.set(key, marks);
    for (const mark of marks) {
      let carriers = this.byMark.get(mark);
      if (!carriers) this.byMark.set(mark, (carriers = new Map()));
      carriers.set(key, pod);
    }
    if (podHasOwnKeys(pod)) this.own.set(key, pod);
  }

  remove(pod: V1Pod): void {
    const ns = podNamespace(pod);
    const name = pod.metadata?.name ?? '';
    const key = podKey(pod);
    this.bump(ns);
    this.byNamespace.get(ns)?.delete(name);
    for (const mark of this.marked.get(key) ?? []) this.byMark.get(mark)?.delete(key);
    this.marked.delete(key);
    this.own.delete(key);
  }

  private bump(ns: string): void {
    this.versions.set(ns, ++this.generation);
    this.listed.delete(ns);
  }

  /** Live pods of a namespace, sorted by name. */
  podsIn(ns: string): readonly V1Pod[] {
    let list = this.listed.get(ns);
    if (!list) {
      const pods = this.byNamespace.get(ns);
      list = pods ? [...pods].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, p]) => p) : [];
      this.listed.set(ns, list);
    }
    return list;
  }

  /** Live pods that carry the experiment `ref`, by annotation or label. */
  carriers(ref: string): V1Pod[] {
    const out = new Map<string, V1Pod>(this.byMark.get(ref));
    for (const [key, pod] of this.byMark.get(labelKeyOfRef(ref)) ?? []) out.set(key, pod);
    return [...out].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, pod]) => pod);
  }

  /** Live pods carrying any of our keys (candidates for removal). */
  withOwnKeys(): IterableIterator<V1Pod> {
    return this.own.values();
  }

  get(namespace: string, name: string): V1Pod | undefined {
    return this.byNamespace.get(namespace)?.get(name);
  }

  /** Notes the namespaces' and nodes' labels as they are now (once per reconcile). */
  observe(namespaces: readonly V1Namespace[], nodes: readonly V1Node[]): void {
    const nsNow = new Map(namespaces.map((n) => [n.metadata?.name ?? '', n.metadata]));
    if (!sameLabels(this.namespaceLabels, nsNow, (m) => m?.labels)) this.namespacesVersion++;
    this.namespaceLabels = nsNow;
    const nodesNow = new Map(nodes.map((n) => [n.metadata?.name ?? '', n.metadata?.labels]));
    if (!sameLabels(this.nodeLabels, nodesNow, (l) => l)) this.nodesVersion++;
    this.nodeLabels = nodesNow;
  }

  /**
   * The experiment's selection as `compute` gives it, reused while the experiment's spec and uid,
   * the pods of `namespaces`, and the namespaces' and nodes' labels are unchanged.
   */
  selection(ref: string, chaos: KernelChaos, namespaces: readonly string[], compute: () => TargetSelection): TargetSelection {
    const fingerprint = `${this.namespacesVersion}|${this.nodesVersion}|${namespaces.map((ns) => `${ns}:${this.versions.get(ns) ?? 0}`).join(',')}`;
    const uid = chaos.metadata.uid ?? '';
    const cached = this.selections.get(ref);
    if (cached && cached.uid === uid && cached.fingerprint === fingerprint && (cached.spec === chaos.spec || isDeepStrictEqual(cached.spec, chaos.spec))) {
      cached.spec = chaos.spec;
      return cached.selection;
    }
    const selection = compute();
    this.selections.set(ref, { uid, spec: chaos.spec, fingerprint, selection });
    return selection;
  }

  /** Forgets cached selections of experiments not in `refs`. */
  retainSelections(refs: ReadonlySet<string>): void {
    for (const ref of this.selections.keys()) if (!refs.has(ref)) this.selections.delete(ref);
  }
}

function sameLabels<V>(before: ReadonlyMap<string, V>, after: ReadonlyMap<string, V>, labels: (v: V) => unknown): boolean {
  if (before.size !== after.size) return false;
  for (const [name, value] of after) {
    if (!before.has(name)) return false;
    const old = before.get(name) as V;
    if (old !== value && !isDeepStrictEqual(labels(old), labels(value))) return false;
  }
  return true;
}
