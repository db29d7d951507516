// `kernelchaos webhook`: serve the admission webhook over HTTPS until SIGTERM, then drain.
import { writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { addLogOptions, addProfileOption, commanderExitCode, portNumber, processIo, subcommand, type CliIo } from './commander.js';
import type { Logger } from 'pino';
import { createLogger, type LogFormat } from '../log.js';
import { parseGoDuration } from '../api/duration.js';
import type { ClusterStore } from '../kube/store.js';
import type { ProfileChoice } from '../kube/crd-profile.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { createSelfSigned } from '../tls/certs.js';
import { readKeyMaterialSync } from '../tls/reloader.js';
import { DEFAULT_NAMESPACE, WEBHOOK_KINDS } from '../webhook/context.js';
import { InMemoryStore } from '../kube/memory.js';
import { startWebhook, type TlsSource } from '../webhook/start.js';
import type { Listening } from '../metrics/http.js';
import { addAuthOptions, addListenOptions, readAuth, type AuthFlags } from '../metrics/options.js';
import { serveMetrics } from '../metrics/serve.js';

class UsageError extends Error {}

interface WebhookCliOptions extends AuthFlags {
  metricsPort?: number;
  metricsHost: string;
  port: number;
  host?: string;
  cert?: string;
  key?: string;
  selfSigned?: boolean;
  selfSignedCaOut?: string;
  manifests?: string;
  kubeconfig?: string;
  namespace: string;
  drainDelay: number;
  certPollInterval: number;
  logLevel?: string;
  logFormat?: LogFormat;
  crdProfile: ProfileChoice;
}

function duration(flag: string) {
  return (value: string): number => {
    const ms = parseGoDuration(value);
    if (ms === null || ms < 0) throw new UsageError(`${flag}: must be a Go duration such as 5s or 1m30s, got '${value}'`);
    return ms;
  };
}

export const EXIT_CODES = [
  { code: 0, meaning: 'stopped by SIGTERM or SIGINT after draining' },
  { code: 1, meaning: 'cannot listen on --port' },
  { code: 2, meaning: 'usage or configuration error (certificates, --manifests, kubeconfig, a KernelChaos CRD of neither profile or not the --crd-profile one)' },
];

export function command(io: CliIo = processIo): Command {
  const cmd = subcommand({
      name: 'webhook',
      description:
        'Serve the admission webhook over HTTPS: POST /validate-kernelchaos, /mutate-kernelchaos, /mutate-pods, ' +
          '/validate-kernelchaospolicy; GET /healthz, /readyz, /metrics. SIGTERM drains: /readyz fails, in-flight requests finish, then exit.',
      exitCodes: EXIT_CODES,
      io,
    })
      .option('--port <n>', 'HTTPS port (0: any free port)', portNumber, 8443)
      .option('--host <addr>', 'address to listen on (default: every address)')
      .option('--cert <file>', 'serving certificate PEM; reloaded when it changes on disk')
      .option('--key <file>', 'private key PEM of --cert')
      .option('--self-signed', 'generate a throwaway CA and a certificate for localhost/127.0.0.1 in memory (the default outside a cluster)')
      .option('--self-signed-ca-out <file>', 'with a self-signed certificate: write its CA certificate here so clients can trust it')
      .option('--manifests <dir>', 'read KernelChaos, KernelChaosPolicy and Namespace objects from YAML/JSON files in this directory (re-read on change)')
      .option('--kubeconfig <file>', 'watch a cluster through this kubeconfig (default in a pod: the service account)')
      .addOption(
        new Option('--namespace <ns>', "the webhook's own namespace; its pods are never injected")
          .env('POD_NAMESPACE')
          .default(DEFAULT_NAMESPACE),
      )
      .addOption(
        new Option('--drain-delay <duration>', 'after SIGTERM, keep answering this long while readiness fails (Go duration)')
          .argParser(duration('--drain-delay'))
          .default(3000, '3s'),
      )
      .addOption(
        new Option('--cert-poll-interval <duration>', 're-read --cert/--key at least this often (Go duration)')
          .argParser(duration('--cert-poll-interval'))
          .default(10_000, '10s'),
      );
  addLogOptions(cmd);
  addProfileOption(cmd);
  // /metrics stays on the HTTPS port too; this serves it where a scrape needs no admission certificate.
  addListenOptions(cmd, 'metrics', 'Prometheus metrics (GET /metrics) on a port of their own as well');
  addAuthOptions(cmd);
  return cmd;
}

function selfSigned(o: WebhookCliOptions, note: string): { tls: TlsSource; note: string } {
  const { ca, serving } = createSelfSigned();
  if (o.selfSignedCaOut) writeFileSync(o.selfSignedCaOut, ca.cert);
  return { tls: { kind: 'material', material: serving }, note };
}

function tlsSource(o: WebhookCliOptions): { tls: TlsSource; note: string } {
  if (o.selfSigned) {
    if (o.cert || o.key) throw new UsageError('--self-signed and --cert/--key exclude each other');
    return selfSigned(o, 'self-signed certificate for localhost, 127.0.0.1 and ::1');
  }
  if (!o.cert && !o.key && !process.env.KUBERNETES_SERVICE_HOST) {
    // Running anywhere (a laptop, CI) works out of the box; in a cluster the apiserver could never
    // trust a throwaway CA, so there a missing certificate is an error.
    return selfSigned(o, 'no --cert/--key: a self-signed certificate for localhost, 127.0.0.1 and ::1 (local use only)');
  }
  if (!o.cert || !o.key) {
    throw new UsageError('give --cert FILE and --key FILE (e.g. from `kernelchaos certs serve`), or --self-signed for local use');
  }
  // Fail now, with the file names, rather than at the first handshake.
  readKeyMaterialSync({ certFile: o.cert, keyFile: o.key });
  return { tls: { kind: 'files', certFile: o.cert, keyFile: o.key, pollIntervalMs: o.certPollInterval }, note: `${o.cert} (reloaded on change)` };
}

/** The store, whether it is already started (a manifest directory is read before serving), and the cluster if there is one. */
async function clusterStore(o: WebhookCliOptions, logger: Logger): Promise<{ store: ClusterStore; started: boolean; kubeConfig?: KubeConfig }> {
  if (o.manifests && o.kubeconfig) throw new UsageError('--manifests and --kubeconfig exclude each other');
  if (o.manifests) {
    const { ManifestDirStore } = await import('../kube/manifestDir.js');
    logger.info({ dir: o.manifests }, 'cluster state from manifests');
    const store = new ManifestDirStore(o.manifests, { log: logger });
    // A mistyped directory is a usage error now, not a webhook that never becomes ready.
    await store.start().catch((err: unknown) => {
      throw new UsageError(`--manifests: ${err instanceof Error ? err.message : String(err)}`);
    });
    return { store, started: true };
  }
  if (o.kubeconfig || process.env.KUBERNETES_SERVICE_HOST) {
    const [{ loadKubeConfig }, { InformerStore }] = await Promise.all([import('../kube/kubeconfig.js'), import('../kube/informer.js')]);
    const kubeConfig = loadKubeConfig(o.kubeconfig);
    logger.info({ kubeconfig: o.kubeconfig ?? 'in-cluster' }, 'cluster state from the Kubernetes API');
    // No Pods and no Nodes: the injector judges the pod in the request, and a pod being created has
    // no node yet, so watching them would cost memory for nothing.
    return { store: new InformerStore(kubeConfig, { kinds: WEBHOOK_KINDS, log: logger }), started: false, kubeConfig };
  }
  logger.warn('no cluster and no --manifests: using an empty store (validation works; no policies, the injector labels nothing)');
  return { store: new InMemoryStore(), started: false };
}

export async function main(argv: string[]): Promise<number> {
  let o: WebhookCliOptions;
  try {
    o = command().parse(argv, { from: 'user' }).opts<WebhookCliOptions>();
  } catch (err) {
    const code = commanderExitCode(err);
    if (code !== null) return code;
    if (err instanceof UsageError) {
      console.error(`kernelchaos webhook: ${err.message}`);
      return 2;
    }
    throw err;
  }
  // Certificates and auth files are configuration: a problem with them is a usage error, before any log line.
  let tls: { tls: TlsSource; note: string };
  let auth;
  try {
    tls = tlsSource(o);
    auth = await readAuth(o);
  } catch (err) {
    console.error(`kernelchaos webhook: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  const logger = createLogger({ component: 'webhook', stream: 'stdout', ...(o.logLevel ? { level: o.logLevel } : {}), ...(o.logFormat ? { format: o.logFormat } : {}) });
  // From here on every line goes through the logger, so the stream stays one format.
  const fail = (code: number, message: string): number => {
    logger.error(message);
    logger.flush();
    return code;
  };
  let store: ClusterStore;
  let started: boolean;
  let kubeConfig: KubeConfig | undefined;
  try {
    ({ store, started, kubeConfig } = await clusterStore(o, logger));
  } catch (err) {
    return fail(2, err instanceof Error ? err.message : String(err));
  }
  if (!kubeConfig && o.crdProfile !== 'auto') return fail(2, `--crd-profile=${o.crdProfile} needs a cluster (--kubeconfig, or in a pod): without one there is no CRD to check it against`);
  const { ProfileState, detectInstallProfile } = await import('../kube/install-profile.js');
  const profile = kubeConfig ? new ProfileState() : undefined;
  let running;
  try {
    running = await startWebhook({ store, tls: tls.tls, port: o.port, host: o.host, ownNamespace: o.namespace, logger, processMetrics: true, ...(profile ? { profile } : {}) });
  } catch (err) {
    return fail(1, `cannot listen on port ${o.port}: ${err instanceof Error ? err.message : String(err)}`);
  }
  logger.info({ port: running.port, tls: tls.note, namespace: o.namespace }, 'listening');
  let metricsServer: Listening | undefined;
  if (o.metricsPort !== undefined) {
    try {
      metricsServer = await serveMetrics(running.metrics.registry, { host: o.metricsHost, port: o.metricsPort, auth });
    } catch (err) {
      await running.close(0);
      return fail(1, `cannot listen on --metrics-port ${o.metricsPort}: ${err instanceof Error ? err.message : String(err)}`);
    }
    logger.info({ port: metricsServer.port }, 'metrics listening on /metrics');
  }
  // Serve at once (liveness); readiness waits for the store's initial lists.
  if (started) logger.info('cluster state synced');
  else {
    store.start().then(
      () => logger.info('cluster state synced'),
      (err: unknown) => logger.error({ err }, 'cluster state failed to sync; readiness stays false'),
    );
  }

  // Readiness waits for the profile too (the mutating answer depends on it); a CRD of neither
  // profile, or one that contradicts --crd-profile, stops the webhook with the reason.
  const stopDetecting = new AbortController();
  const misconfigured = kubeConfig && profile
    ? detectInstallProfile(kubeConfig, o.crdProfile, { log: logger, state: profile, signal: stopDetecting.signal }).then(
        () => new Promise<never>(() => {}),
        (err: unknown) => err instanceof Error ? err.message : String(err),
      )
    : new Promise<never>(() => {});
  const outcome = await Promise.race([
    new Promise<{ signal: NodeJS.Signals }>((resolve) => {
      process.once('SIGTERM', () => resolve({ signal: 'SIGTERM' }));
      process.once('SIGINT', () => resolve({ signal: 'SIGINT' }));
    }),
    misconfigured.then((message) => ({ fatal: message })),
  ]);
  stopDetecting.abort();
  if ('fatal' in outcome) logger.error(`install profile: ${outcome.fatal}`);
  else logger.info({ signal: outcome.signal }, 'shutting down');
  await running.close('fatal' in outcome ? 0 : o.drainDelay);
  await metricsServer?.close();
  store.stop();
  logger.flush();
  return 'fatal' in outcome ? 2 : 0;
}
