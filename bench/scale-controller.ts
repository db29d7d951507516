// The controller of `npm run bench -- scale`, in its own process so its RSS and CPU are its own (the
// fake apiserver holding 100,000 pods runs in the parent). Started by scale.bench.ts through fork():
// receives the kubeconfig, reports every reconcile pass, and its memory when asked to stop.
import { KubeConfig } from '@kubernetes/client-node';
import { Controller, controllerStoreOptions } from '../src/controller/controller.js';
import { InformerStore } from '../src/kube/informer.js';
import { silentLog } from '../src/kube/log.js';
import { projectPod } from '../src/kube/projection.js';
import { typicalPod } from './fixtures/typical-pod.js';

/** Heap bytes per pod held whole and as the controller caches it, over 20,000 typical pods. */
function podBytes(): { wholeBytes: number; projectedBytes: number } {
  const measure = (make: (i: number) => unknown): number => {
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    const held = Array.from({ length: 20_000 }, (_, i) => make(i));
    global.gc?.();
    const bytes = (process.memoryUsage().heapUsed - before) / held.length;
    held.length = 0;
    return bytes;
  };
  return { wholeBytes: measure(typicalPod), projectedBytes: measure((i) => projectPod(typicalPod(i))) };
}

export type ToController = { type: 'start'; kubeConfig: string; namespace: string } | { type: 'stop' } | { type: 'measurePods' };
export type FromController =
  | { type: 'podBytes'; wholeBytes: number; projectedBytes: number }
  | { type: 'leading'; syncMs: number }
  | { type: 'pass'; computeMs: number; computeCpuMs: number; passMs: number; failed: boolean }
  | { type: 'stopped'; rssBytes: number; heapUsedBytes: number; storedPods: number };

function send(message: FromController): void {
  process.send?.(message);
}

let controller: Controller | undefined;
let store: InformerStore | undefined;

process.on('message', (message: ToController) => {
  void (async () => {
    if (message.type === 'measurePods') {
      send({ type: 'podBytes', ...podBytes() });
    } else if (message.type === 'start') {
      const kc = new KubeConfig();
      kc.loadFromString(message.kubeConfig);
      store = new InformerStore(kc, { ...controllerStoreOptions(message.namespace), log: silentLog });
      controller = new Controller({ kubeConfig: kc, store, namespace: message.namespace, leaseName: 'kc', identity: 'controller', log: silentLog, resyncMs: 3_600_000, statusIntervalMs: 2_000 });
      controller.onReconcile((r) => send({ type: 'pass', computeMs: r.computeMs, computeCpuMs: r.computeCpuMs, passMs: r.passMs, failed: r.outcomes.some((o) => o.outcome === 'failed') }));
      const t0 = performance.now();
      await controller.start();
      const syncMs = performance.now() - t0;
      while (!controller.isLeader) await new Promise((r) => setTimeout(r, 20));
      send({ type: 'leading', syncMs });
    } else {
      const storedPods = store?.list('Pod').length ?? 0;
      // Memory of the running controller, its cache full, before anything is torn down.
      global.gc?.();
      const { rss, heapUsed } = process.memoryUsage();
      await controller?.stop();
      send({ type: 'stopped', rssBytes: rss, heapUsedBytes: heapUsed, storedPods });
      process.disconnect();
    }
  })();
});
