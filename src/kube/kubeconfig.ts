// Where the Kubernetes credentials come from: an explicit file, else $KUBECONFIG / ~/.kube/config,
// else the in-cluster service account. Unlike the library's loadFromDefault, having none of them is
// an error that says what to do, not a silent fallback to http://localhost:8080.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined) {
    if (!existsSync(path)) throw new Error(`--kubeconfig ${path}: no such file`);
    kc.loadFromFile(path);
  } else {
    const fromEnv = (process.env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
    const home = join(homedir(), '.kube', 'config');
    if (fromEnv.some((f) => existsSync(f)) || existsSync(home) || process.env.KUBERNETES_SERVICE_HOST) {
      kc.loadFromDefault();
    } else {
      throw new Error(
        `no Kubernetes cluster configured: pass --kubeconfig FILE, set KUBECONFIG (${fromEnv.length > 0 ? `${fromEnv.join(delimiter)} does not exist` : 'unset'}), create ${home}, or run in a pod with a service account`,
      );
    }
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(`${path !== undefined ? `--kubeconfig ${path}` : 'kubeconfig'}: the current context names no cluster; set current-context`);
  }
  return kc;
}
