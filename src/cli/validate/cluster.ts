// `validate --cluster`: the policies and namespaces a real cluster holds, and its context namespace,
// read once through a kubeconfig (nothing is written). Every call has a timeout.
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { POLICY_API_VERSION, type KernelChaosPolicy } from '../../api/types.js';
import { KIND_INFO } from '../../kube/objects.js';
import { loadKubeConfig } from '../../kube/kubeconfig.js';

export interface ClusterState {
  /** The current context's namespace, else `default`. */
  namespace: string;
  namespaces: string[];
  policies: KernelChaosPolicy[];
}

function withTimeout<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function reason(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  if (typeof e.code === 'number') {
    const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body ?? '');
    const message = /"message":"([^"]*)"/.exec(body)?.[1];
    return `HTTP ${e.code}${message ? `: ${message}` : ''}`;
  }
  return e.message ?? String(err);
}

export async function readClusterState(kubeconfig: string | undefined, timeoutMs: number): Promise<ClusterState> {
  const kc = loadKubeConfig(kubeconfig);
  const context = kc.getContextObject(kc.getCurrentContext());
  const namespace = context?.namespace || 'default';
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const info = KIND_INFO.KernelChaosPolicy;
  const server = kc.getCurrentCluster()?.server ?? 'the cluster';
  const [namespaces, policies] = await Promise.all([
    withTimeout(`listing namespaces on ${server}`, timeoutMs, core.listNamespace()).catch((err: unknown) => {
      throw new Error(`cannot list namespaces on ${server}: ${reason(err)}`);
    }),
    withTimeout(
      `listing KernelChaosPolicies on ${server}`,
      timeoutMs,
      custom.listClusterCustomObject({ group: info.group, version: info.version, plural: info.plural }) as Promise<{ items?: KernelChaosPolicy[] }>,
    ).catch((err: unknown) => {
      throw new Error(`cannot list kernelchaospolicies on ${server}: ${reason(err)} (is the CRD installed?)`);
    }),
  ]);
  return {
    namespace,
    namespaces: namespaces.items.flatMap((n) => (n.metadata?.name ? [n.metadata.name] : [])),
    // List items carry no kind; the judge's store needs it.
    policies: (policies.items ?? []).map((p) => ({ ...p, kind: 'KernelChaosPolicy' as const, apiVersion: POLICY_API_VERSION })),
  };
}
