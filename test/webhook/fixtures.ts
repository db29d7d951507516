// Shared fixtures: the seed example, policies, pods and namespaces as a user would write them.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { KernelChaos, KernelChaosPolicy, KernelChaosPolicySpec } from '../../src/api/types.js';

/** The seed example from Chaos Mesh's KernelChaos documentation, unchanged. */
export { seedChaos } from '../fixtures/seed.js';

export function allModeChaos(name: string, namespace: string, selector: KernelChaos['spec']['selector'] = {}): KernelChaos {
  return {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: { name, namespace, uid: `uid-${namespace}-${name}` },
    spec: {
      mode: 'all',
      selector,
      failKernRequest: { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }], probability: 50, times: 10 },
      duration: '5m',
      scheduler: { cron: '@every 10m' },
    },
  };
}

export function policy(namespace: string, name: string, spec: KernelChaosPolicySpec): KernelChaosPolicy {
  return { apiVersion: 'kernelchaos.dev/v1alpha1', kind: 'KernelChaosPolicy', metadata: { name, namespace }, spec };
}

export function namespace(name: string, labels: Record<string, string> = {}): V1Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } };
}

export function pod(opts: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }): V1Pod {
  const metadata: V1Pod['metadata'] = {};
  if (opts.name !== undefined) metadata.name = opts.name;
  if (opts.generateName !== undefined) metadata.generateName = opts.generateName;
  if (opts.namespace !== undefined) metadata.namespace = opts.namespace;
  if (opts.labels !== undefined) metadata.labels = opts.labels;
  if (opts.annotations !== undefined) metadata.annotations = opts.annotations;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec: { containers: [{ name: 'app', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 3600'] }] },
  };
}
