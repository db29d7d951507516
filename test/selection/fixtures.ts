import type { V1Namespace, V1Node, V1Pod } from '@kubernetes/client-node';
import type { KernelChaos, KernelChaosSpec } from '../../src/api/types.js';

export interface PodOpts {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  node?: string;
  phase?: string;
  uid?: string;
}

export function pod(namespace: string, name: string, opts: PodOpts = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      namespace,
      name,
      uid: opts.uid ?? `uid-${namespace}-${name}`,
      labels: opts.labels ?? {},
      annotations: opts.annotations ?? {},
    },
    spec: { containers: [{ name: 'app', image: 'busybox' }], ...(opts.node ? { nodeName: opts.node } : {}) },
    status: { phase: opts.phase ?? 'Running' },
  };
}

/** n pods app-0..app-(n-1) in `namespace`, labelled app=web, opted in by annotation. */
export function pods(n: number, namespace = 'apps', extra: (i: number) => PodOpts = () => ({})): V1Pod[] {
  return Array.from({ length: n }, (_, i) => {
    const e = extra(i);
    return pod(namespace, `app-${i}`, {
      ...e,
      labels: { app: 'web', ...(e.labels ?? {}) },
      annotations: { 'kernelchaos.dev/inject': 'true', ...(e.annotations ?? {}) },
    });
  });
}

export function chaos(spec: Partial<KernelChaosSpec>, meta: { namespace?: string; name?: string; uid?: string } = {}): KernelChaos {
  return {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: { namespace: meta.namespace ?? 'apps', name: meta.name ?? 'exp', uid: meta.uid ?? 'uid-exp-1' },
    spec: {
      mode: 'all',
      selector: {},
      failKernRequest: { failtype: 0 },
      ...spec,
    },
  };
}

export function namespace(name: string, labels: Record<string, string> = {}): V1Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

export function node(name: string, labels: Record<string, string> = {}): V1Node {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels } };
}

export const names = (list: readonly V1Pod[]): string[] => list.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`);
