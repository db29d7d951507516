// Where the Kubernetes credentials come from: an explicit file, else $KUBECONFIG / ~/.kube/config,
// else the in-cluster service account (what @kubernetes/client-node's loadFromDefault does).
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined) {
    if (!existsSync(path)) throw new Error(`--kubeconfig ${path}: no such file`);
    kc.loadFromFile(path);
  } else {
    kc.loadFromDefault();
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(
      path !== undefined
        ? `--kubeconfig ${path}: the current context names no cluster; set current-context`
        : 'no Kubernetes cluster configured: pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a service account',
    );
  }
  return kc;
}
