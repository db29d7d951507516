// Every Kubernetes API client of the controller, companion and webhook is made here, so every call
// has a deadline: the generated clients have none, and a request to an apiserver that stopped
// answering (half-open connection, overloaded etcd) would otherwise wait for TCP keepalive, minutes.
// An optional extra signal aborts every call at once (the controller's leader fencing).
import { ServerConfiguration, createConfiguration, type Configuration, type KubeConfig, type RequestContext, type ResponseContext } from '@kubernetes/client-node';

/** Per-call deadline unless a caller says otherwise: longer than a loaded apiserver's p99, far below keepalive. */
export const DEFAULT_API_TIMEOUT_MS = 10_000;

export interface ApiClientOptions {
  /** Per request. Default DEFAULT_API_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Read at each request: when it is aborted (or already was) the request is abandoned. */
  signal?: () => AbortSignal | undefined;
}

export type ApiConstructor<T> = new (configuration: Configuration) => T;

export function apiClient<T>(kubeConfig: KubeConfig, Api: ApiConstructor<T>, options: ApiClientOptions = {}): T {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig: the current context names no cluster');
  const timeoutMs = options.timeoutMs ?? DEFAULT_API_TIMEOUT_MS;
  const deadline = {
    pre: (context: RequestContext): Promise<RequestContext> => {
      const extra = options.signal?.();
      const timeout = AbortSignal.timeout(timeoutMs);
      context.setSignal(extra ? AbortSignal.any([timeout, extra]) : timeout);
      return Promise.resolve(context);
    },
    post: (response: ResponseContext): Promise<ResponseContext> => Promise.resolve(response),
  };
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kubeConfig },
    promiseMiddleware: [deadline],
  });
  return new Api(configuration);
}

/** Whether an error is a request abandoned by its deadline or an aborted signal. */
export function isAbort(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.name === 'AbortError' || error.name === 'TimeoutError' || /aborted|timeout/i.test(error.message) && !('code' in error && typeof (error as { code: unknown }).code === 'number');
}
