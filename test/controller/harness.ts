// Shared setup for controller tests against the fake apiserver (and, in test/cluster, a real one).
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { Controller, controllerStoreOptions } from '../../src/controller/controller.js';
import type { ScheduleRunner } from '../../src/controller/schedule-runner.js';
import { InformerStore } from '../../src/kube/informer.js';
import { silentLog, type Log } from '../../src/kube/log.js';
import type { KernelChaos } from '../../src/api/types.js';
import type { ProfileChoice } from '../../src/kube/crd-profile.js';

export const KC = { group: 'chaos-mesh.org', version: 'v1alpha1', plural: 'kernelchaos' } as const;

export function makeController(
  kubeConfig: KubeConfig,
  opts: {
    identity: string;
    namespace: string;
    leaseName?: string;
    now?: () => Date;
    log?: Log;
    statusIntervalMs?: number;
    schedules?: ScheduleRunner;
    schedulesMode?: 'auto' | 'on' | 'off';
    crdProfile?: ProfileChoice;
  },
): Controller {
  const log = opts.log ?? silentLog;
  const store = new InformerStore(kubeConfig, { ...controllerStoreOptions(opts.namespace), log, restartDelayMs: 20 });
  return new Controller({
    kubeConfig,
    store,
    namespace: opts.namespace,
    leaseName: opts.leaseName ?? 'kernelchaos-controller',
    identity: opts.identity,
    log,
    resyncMs: 1_000,
    retryMs: 50,
    // Short lease timings so failover happens within a test.
    leaseDurationMs: 1_500,
    renewDeadlineMs: 1_000,
    retryPeriodMs: 150,
    statusIntervalMs: opts.statusIntervalMs ?? 200,
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.schedules ? { schedules: opts.schedules } : {}),
    ...(opts.schedulesMode ? { schedulesMode: opts.schedulesMode } : {}),
    ...(opts.crdProfile ? { crdProfile: opts.crdProfile, profileRetry: { initialDelayMs: 20, maxDelayMs: 100 } } : {}),
  });
}

export function podBody(name: string, labels: Record<string, string> = {}, annotations: Record<string, string> = {}): V1Pod {
  return {
    metadata: { name, labels, annotations },
    spec: { containers: [{ name: 'app', image: 'busybox', command: ['sleep', '3600'] }] },
  };
}

export function experimentBody(name: string, spec: Partial<KernelChaos['spec']>): KernelChaos {
  return {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: { name },
    spec: { mode: 'all', selector: {}, failKernRequest: { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }] }, ...spec },
  };
}

export interface Clients {
  core: CoreV1Api;
  custom: CustomObjectsApi;
}

export function clients(kc: KubeConfig): Clients {
  return { core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi) };
}

export async function getChaos(c: Clients, namespace: string, name: string): Promise<KernelChaos | undefined> {
  try {
    return (await c.custom.getNamespacedCustomObject({ ...KC, namespace, name })) as KernelChaos;
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}
