// `kernelchaos certs`: the CA, serving and client certificates of the webhook and the companion's
// mutual TLS, renewal when due, and the CA bundle of the webhook configurations.
// Every output directory holds tls.crt, tls.key (0600) and ca.crt: what `kubectl create secret tls`
// and a mounted Secret expect.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommanderError, Option, type Command } from 'commander';
import { processIo, subcommand, type CliIo } from './commander.js';
import {
  certInfo,
  createCa,
  createClientCert,
  createServingCert,
  isIssuedBy,
  keyMatchesCert,
  needsRenewal,
  serviceDnsNames,
  type PemPair,
} from '../tls/certs.js';
import { injectCaBundle } from '../tls/ca-bundle.js';

class UsageError extends Error {}

function writeAtomic(path: string, content: string, mode: number): void {
  // Rename is atomic: a watcher (the webhook's reloader) never reads half a file.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}

function writePair(dir: string, pair: PemPair, caCert: string | undefined, names: { cert: string; key: string }): void {
  mkdirSync(dir, { recursive: true });
  writeAtomic(join(dir, names.key), pair.key, 0o600);
  writeAtomic(join(dir, names.cert), pair.cert, 0o644);
  if (caCert !== undefined) writeAtomic(join(dir, 'ca.crt'), caCert, 0o644);
}

function readCa(caDir: string): PemPair {
  const certPath = join(caDir, 'ca.crt');
  const keyPath = join(caDir, 'ca.key');
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    throw new UsageError(`--ca-dir ${caDir}: no ca.crt and ca.key there; create them with: kernelchaos certs ca --out ${caDir}`);
  }
  const ca = { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
  if (!keyMatchesCert(ca.cert, ca.key)) throw new UsageError(`--ca-dir ${caDir}: ca.key is not the key of ca.crt`);
  return ca;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag}: must be a whole number of days >= 1, got '${value}'`);
    return n;
  };
}

function describe(pem: string): string {
  const info = certInfo(pem);
  return `serial ${info.serial}, valid until ${info.notAfter.toISOString()}`;
}

type LeafSpec =
  | { kind: 'serving'; service: string; namespace: string; dns: string[]; ips: string[] }
  | { kind: 'client'; cn: string; serverAuth: boolean; dns: string[] };

/** Why the leaf in `out` must be reissued, or undefined when it is fine. */
function leafProblem(out: string, ca: PemPair, spec: LeafSpec, now: Date): string | undefined {
  const certPath = join(out, 'tls.crt');
  const keyPath = join(out, 'tls.key');
  if (!existsSync(certPath) || !existsSync(keyPath)) return 'no certificate yet';
  const cert = readFileSync(certPath, 'utf8');
  let info;
  try {
    info = certInfo(cert);
  } catch {
    return 'tls.crt is not a certificate';
  }
  if (!keyMatchesCert(cert, readFileSync(keyPath, 'utf8'))) return 'tls.key does not match tls.crt';
  if (!isIssuedBy(cert, ca.cert)) return 'issued by another CA';
  if (needsRenewal(cert, now)) return `less than a third of its lifetime left (expires ${info.notAfter.toISOString()})`;
  if (spec.kind === 'serving') {
    const wanted = [...serviceDnsNames(spec.service, spec.namespace), ...spec.dns];
    const missing = wanted.filter((d) => !info.dnsNames.includes(d));
    const missingIps = spec.ips.filter((ip) => !info.ipAddresses.includes(ip.toLowerCase()));
    if (missing.length + missingIps.length > 0) return `missing SANs ${[...missing, ...missingIps].join(', ')}`;
  } else if (!info.subject.split('\n').includes(`CN=${spec.cn}`)) {
    return `common name is not ${spec.cn}`;
  }
  return undefined;
}

function issueLeaf(out: string, ca: PemPair, spec: LeafSpec, days: number | undefined): PemPair {
  const pair =
    spec.kind === 'serving'
      ? createServingCert(ca, { service: spec.service, namespace: spec.namespace, extraDns: spec.dns, extraIps: spec.ips, days })
      : createClientCert(ca, { commonName: spec.cn, serverAuth: spec.serverAuth, extraDns: spec.dns, days });
  writePair(out, pair, ca.cert, { cert: 'tls.crt', key: 'tls.key' });
  return pair;
}

export const EXIT_CODES = [
  { code: 0, meaning: 'done (certificates written, renewed if needed, or bundles patched)' },
  { code: 1, meaning: 'failed (e.g. the cluster refused the patch)' },
  { code: 2, meaning: 'usage error, or a file that cannot be read or already exists' },
];

export function command(io: CliIo = processIo): Command {
  const cmd = subcommand({
    name: 'certs',
    description: 'Generate a CA and serving/client certificates; renew them when due; patch webhook CA bundles.',
    exitCodes: EXIT_CODES,
    io,
  });

  cmd
    .command('ca')
    .description('create a CA (1 year) as ca.crt and ca.key in --out')
    .requiredOption('--out <dir>', 'directory to write ca.crt and ca.key')
    .option('--cn <name>', 'common name', 'kernelchaos-ca')
    .option('--days <n>', 'lifetime in days', positiveInt('--days'), 365)
    .option('--force', 'replace an existing CA (every certificate it issued must then be reissued)')
    .action((o: { out: string; cn: string; days: number; force?: boolean }) => {
      if (existsSync(join(o.out, 'ca.crt')) && !o.force) {
        throw new UsageError(`${join(o.out, 'ca.crt')} exists; pass --force to replace it, or use renew-if-needed`);
      }
      const ca = createCa({ commonName: o.cn, days: o.days });
      writePair(o.out, ca, undefined, { cert: 'ca.crt', key: 'ca.key' });
      console.log(`wrote ${join(o.out, 'ca.crt')} (${describe(ca.cert)})`);
    });

  const serve = cmd
    .command('serve')
    .description('issue a serving certificate (30 days) for a Service: SANs NAME, NAME.NS, NAME.NS.svc, NAME.NS.svc.cluster.local')
    .requiredOption('--ca-dir <dir>', 'directory holding ca.crt and ca.key')
    .requiredOption('--service <name>', 'Service name')
    .requiredOption('--namespace <ns>', 'Service namespace')
    .requiredOption('--out <dir>', 'directory to write tls.crt, tls.key and ca.crt')
    .option('--dns <name>', 'extra DNS SAN (repeatable)', collect, [])
    .option('--ip <addr>', 'extra IP SAN (repeatable)', collect, [])
    .option('--days <n>', 'lifetime in days', positiveInt('--days'), 30);
  serve.action((o: { caDir: string; service: string; namespace: string; out: string; dns: string[]; ip: string[]; days: number }) => {
    const ca = readCa(o.caDir);
    const pair = issueLeaf(o.out, ca, { kind: 'serving', service: o.service, namespace: o.namespace, dns: o.dns, ips: o.ip }, o.days);
    console.log(`wrote ${join(o.out, 'tls.crt')} (${describe(pair.cert)})`);
  });

  cmd
    .command('client')
    .description('issue a client certificate (clientAuth, 30 days) for mutual TLS, e.g. to the companion gRPC')
    .requiredOption('--ca-dir <dir>', 'directory holding ca.crt and ca.key')
    .requiredOption('--cn <name>', 'common name identifying the client')
    .requiredOption('--out <dir>', 'directory to write tls.crt, tls.key and ca.crt')
    .option('--server-auth', 'also allow serving (a peer that is both client and server)')
    .option('--dns <name>', 'DNS SAN (repeatable; with --server-auth)', collect, [])
    .option('--days <n>', 'lifetime in days', positiveInt('--days'), 30)
    .action((o: { caDir: string; cn: string; out: string; serverAuth?: boolean; dns: string[]; days: number }) => {
      const ca = readCa(o.caDir);
      const pair = issueLeaf(o.out, ca, { kind: 'client', cn: o.cn, serverAuth: o.serverAuth ?? false, dns: o.dns }, o.days);
      console.log(`wrote ${join(o.out, 'tls.crt')} (${describe(pair.cert)})`);
    });

  cmd
    .command('renew-if-needed')
    .description(
      'make sure the CA in --ca-dir exists and is not due; with --service/--namespace (serving) or --cn (client), ' +
        'also the certificate in --out. Reissues only what is missing, due (< 1/3 lifetime left), from another CA, or lacks a SAN.',
    )
    .requiredOption('--ca-dir <dir>', 'directory holding (or to hold) ca.crt and ca.key')
    .option('--out <dir>', 'directory of the leaf certificate')
    .option('--service <name>', 'Service name (serving certificate)')
    .option('--namespace <ns>', 'Service namespace (serving certificate)')
    .option('--cn <name>', 'common name (client certificate)')
    .option('--server-auth', 'client certificate may also serve')
    .option('--dns <name>', 'extra DNS SAN (repeatable)', collect, [])
    .option('--ip <addr>', 'extra IP SAN (repeatable)', collect, [])
    .action(
      (o: { caDir: string; out?: string; service?: string; namespace?: string; cn?: string; serverAuth?: boolean; dns: string[]; ip: string[] }) => {
        const now = new Date();
        let ca: PemPair;
        const caPath = join(o.caDir, 'ca.crt');
        const caDue = existsSync(caPath) && existsSync(join(o.caDir, 'ca.key')) ? needsRenewal(readFileSync(caPath, 'utf8'), now) : true;
        if (caDue) {
          ca = createCa();
          writePair(o.caDir, ca, undefined, { cert: 'ca.crt', key: 'ca.key' });
          console.log(`renewed ${caPath} (${describe(ca.cert)})`);
        } else {
          ca = readCa(o.caDir);
          console.log(`kept ${caPath} (${describe(ca.cert)})`);
        }
        let spec: LeafSpec | undefined;
        if (o.service !== undefined || o.namespace !== undefined) {
          if (o.service === undefined || o.namespace === undefined) throw new UsageError('--service and --namespace go together');
          spec = { kind: 'serving', service: o.service, namespace: o.namespace, dns: o.dns, ips: o.ip };
        } else if (o.cn !== undefined) {
          spec = { kind: 'client', cn: o.cn, serverAuth: o.serverAuth ?? false, dns: o.dns };
        }
        if (!spec) return;
        if (o.out === undefined) throw new UsageError('--out: required with --service/--namespace or --cn');
        const problem = leafProblem(o.out, ca, spec, now);
        const leafPath = join(o.out, 'tls.crt');
        if (problem === undefined) {
          console.log(`kept ${leafPath} (${describe(readFileSync(leafPath, 'utf8'))})`);
          return;
        }
        const pair = issueLeaf(o.out, ca, spec, undefined);
        console.log(`renewed ${leafPath}: ${problem} (${describe(pair.cert)})`);
      },
    );

  cmd
    .command('inject-ca-bundle')
    .description('write the CA bundle into clientConfig.caBundle of every webhook in the file (stdout, or --in-place)')
    .addOption(new Option('--ca <file>', 'CA certificate PEM (repeatable: several CAs during a rotation)').argParser(collect).default([]))
    .requiredOption('-f, --file <yaml>', 'webhook configurations, e.g. manifests/admission/webhook-configurations.yaml')
    .option('--in-place', 'rewrite the file instead of printing it')
    .action((o: { ca: string[]; file: string; inPlace?: boolean }) => {
      if (o.ca.length === 0) throw new UsageError('--ca: required (the CA certificate file, e.g. certs/ca/ca.crt)');
      const pems = o.ca.map((f) => {
        const pem = readFileSync(f, 'utf8');
        try {
          if (!certInfo(pem).isCa) throw new UsageError(`--ca ${f}: not a CA certificate (basicConstraints CA:false)`);
        } catch (err) {
          if (err instanceof UsageError) throw err;
          throw new UsageError(`--ca ${f}: not a PEM certificate`);
        }
        return pem;
      });
      const result = injectCaBundle(readFileSync(o.file, 'utf8'), pems);
      if (result.updated.length === 0) throw new UsageError(`-f ${o.file}: no MutatingWebhookConfiguration or ValidatingWebhookConfiguration webhooks found`);
      if (o.inPlace) {
        writeAtomic(o.file, result.text, 0o644);
        console.error(`caBundle set in ${result.updated.length} webhooks: ${result.updated.join(', ')}`);
      } else {
        process.stdout.write(result.text);
      }
    });

  cmd
    .command('ensure-secrets')
    .description(
      'in a cluster: keep the CA, webhook serving, companion and controller TLS Secrets in --namespace valid ' +
        '(create what is missing, reissue what is due) and put the CA into the webhook configurations\' caBundle. ' +
        'Run by the install profile\'s Job and CronJob (manifests/overlays/standalone).',
    )
    .addOption(new Option('--namespace <ns>', 'namespace of the Secrets and the webhook Service').env('POD_NAMESPACE').default('kernelchaos-system'))
    .option('--webhook-configuration <name>', 'name of the Mutating- and ValidatingWebhookConfiguration', 'kernelchaos')
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster service account, $KUBECONFIG, ~/.kube/config)')
    .action(async (o: { namespace: string; webhookConfiguration: string; kubeconfig?: string }) => {
      const [{ loadKubeConfig }, { ensureClusterSecrets }] = await Promise.all([import('../kube/kubeconfig.js'), import('../tls/cluster-certs.js')]);
      let kc;
      try {
        kc = loadKubeConfig(o.kubeconfig);
      } catch (err) {
        throw new UsageError(err instanceof Error ? err.message : String(err));
      }
      await ensureClusterSecrets(kc, { namespace: o.namespace, webhookConfiguration: o.webhookConfiguration, log: (line) => console.log(line) });
    });
  return cmd;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await command().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // An explicit --help exits 0; usage mistakes (and a bare `certs`) were printed by commander.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
    }
    if (err instanceof UsageError) {
      console.error(`kernelchaos certs: ${err.message}`);
      return 2;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES') {
      console.error(`kernelchaos certs: ${e.message}`);
      return 2;
    }
    console.error(`kernelchaos certs: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
