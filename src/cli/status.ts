// `kernelchaos status`: what the experiments are doing, read from the cluster (kubeconfig), or
// from one node's companion over mutual-TLS gRPC (--companion). --watch redraws in place on a
// terminal and appends changed rows otherwise (logs, pipes).
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { stringify } from 'yaml';
import { parseCli, positiveSeconds, processIo, subcommand, type CliIo } from './commander.js';
import { age, experimentRow, experimentsTable, table } from '../status/format.js';

type Output = 'table' | 'json' | 'yaml';

interface StatusOptions {
  namespace?: string;
  allNamespaces?: boolean;
  watch?: boolean;
  output: Output;
  kubeconfig?: string;
  interval: number;
  requestTimeout: number;
  companion?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsServerName?: string;
}

export const EXIT_CODES = [
  { code: 0, meaning: 'printed (with --watch: stopped by SIGINT or SIGTERM)' },
  { code: 1, meaning: 'the cluster or the companion could not be read, or NAME does not exist' },
  { code: 2, meaning: 'usage error, or no usable kubeconfig or companion credentials' },
];

export function command(io: CliIo = processIo): Command {
  return subcommand({
    name: 'status',
    description: 'Show KernelChaos experiments: phase, targeted pods, armed containers, faults, last event.',
    exitCodes: EXIT_CODES,
    io,
  })
      .argument('[name]', 'one experiment (default: every experiment in the namespace)')
      .option('-n, --namespace <ns>', "the namespace (default: the kubeconfig context's, else default)")
      .option('-A, --all-namespaces', 'every namespace')
      .option('-w, --watch', 'keep refreshing (in place on a terminal; changed rows appended otherwise)')
      .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table'))
      .option('--kubeconfig <file>', 'kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
      .addOption(new Option('--interval <seconds>', 'with --watch: how often to read').argParser(positiveSeconds).default(2000, '2'))
      .addOption(new Option('--request-timeout <seconds>', 'give up on one API or gRPC call after this long').argParser(positiveSeconds).default(10_000, '10'))
      .option('--companion <host:port>', "read one node's companion (kernelchaos.v1.Companion, mutual TLS) instead of the cluster")
      .option('--tls-cert <file>', 'with --companion: client certificate (PEM)')
      .option('--tls-key <file>', 'with --companion: client private key (PEM)')
      .option('--tls-ca <file>', "with --companion: CA of the companion's certificate (PEM)")
      .option('--tls-server-name <name>', "with --companion: the name in the companion's certificate, when dialling a pod IP (e.g. kernelchaos-companion.kernelchaos-system.svc)")
      .addHelpText(
        'after',
        `
Examples:
  kernelchaos status -A
  kernelchaos status -n chaos-testing kernel-chaos-example --watch
  kubectl -n kernelchaos-system port-forward pod/kernelchaos-companion-xxxxx 9443 &
  kernelchaos status --companion 127.0.0.1:9443 --tls-cert tls.crt --tls-key tls.key --tls-ca ca.crt \\
    --tls-server-name kernelchaos-companion.kernelchaos-system.svc`,
      );
}

/** Rejects after `ms` so no call can hang the command. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000}s (--request-timeout)`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** One read of whatever the command shows: rows to render, keyed for --watch. */
interface Snapshot {
  header: string[];
  rows: Array<{ key: string; cells: string[]; doc: unknown }>;
  /** Whole-output rendering for tables (with column widths over every row). */
  text: string;
}

type Reader = () => Promise<Snapshot>;

function errorText(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      // not JSON
    }
  }
  return err instanceof Error ? err.message : String(err);
}

async function clusterReader(o: StatusOptions, name: string | undefined): Promise<Reader> {
  const [{ loadKubeConfig }, k8s, { KIND_INFO }, { TARGET_LABEL_SELECTOR }, { summarize }] = await Promise.all([
    import('../kube/kubeconfig.js'),
    import('@kubernetes/client-node'),
    import('../kube/objects.js'),
    import('../api/labels.js'),
    import('../status/summary.js'),
  ]);
  const kc = loadKubeConfig(o.kubeconfig);
  const namespace = o.allNamespaces ? undefined : (o.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default');
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const { group, version, plural } = KIND_INFO.KernelChaos;
  const t = o.requestTimeout;
  type KC = import('../api/types.js').KernelChaos;
  return async () => {
    let experiments: KC[];
    if (name !== undefined) {
      const one = (await withTimeout(custom.getNamespacedCustomObject({ group, version, plural, namespace: namespace ?? 'default', name }), t, `get kernelchaos ${name}`)) as KC;
      experiments = [one];
    } else {
      const list = (await withTimeout(
        namespace === undefined ? custom.listClusterCustomObject({ group, version, plural }) : custom.listNamespacedCustomObject({ group, version, plural, namespace }),
        t,
        'list kernelchaos',
      )) as { items: KC[] };
      experiments = list.items;
    }
    // Targets may sit in other namespaces than the experiment: the labelled pods cluster-wide.
    const pods = await withTimeout(core.listPodForAllNamespaces({ labelSelector: TARGET_LABEL_SELECTOR }), t, 'list pods').then(
      (l) => l.items,
      () => [],
    );
    const events = await withTimeout(
      namespace === undefined
        ? core.listEventForAllNamespaces({ fieldSelector: 'involvedObject.kind=KernelChaos' })
        : core.listNamespacedEvent({ namespace, fieldSelector: 'involvedObject.kind=KernelChaos' }),
      t,
      'list events',
    ).then(
      (l) => l.items,
      () => [],
    );
    const summaries = experiments
      .map((c) => summarize(c, pods, events))
      .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    const now = new Date();
    const withNs = namespace === undefined;
    return {
      header: experimentsTable([], now, withNs).split('\n')[0]?.split(/\s{3,}/) ?? [],
      rows: summaries.map((s) => ({ key: `${s.namespace}/${s.name}`, cells: experimentRow(s, now, withNs), doc: s })),
      text: summaries.length === 0 ? `No KernelChaos found${namespace ? ` in namespace ${namespace}` : ''}.` : experimentsTable(summaries, now, withNs),
    } satisfies Snapshot;
  };
}

interface CompanionDoc {
  node: string;
  experiment: string;
  source: string;
  mode: string;
  containers: string[];
  calls: number;
  faults: number;
  armedAt: string;
  closesAt: string | null;
  records?: Array<{ id: string; phase: string; reason: string; faults: number }>;
  schedulePhase?: string;
}

async function companionReader(o: StatusOptions, name: string | undefined): Promise<{ read: Reader; close: () => void }> {
  if (!o.tlsCert || !o.tlsKey || !o.tlsCa) throw new Error('--companion needs --tls-cert, --tls-key and --tls-ca: the companion serves mutual TLS only');
  const read = async (flag: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new Error(`${flag} ${path}: cannot read (${err instanceof Error ? err.message : String(err)})`);
    }
  };
  const tls = { cert: await read('--tls-cert', o.tlsCert), key: await read('--tls-key', o.tlsKey), ca: await read('--tls-ca', o.tlsCa) };
  const { clientCredentials, loadCompanionService } = await import('../companion/grpc.js');
  type Wire = import('../companion/grpc.js').WireInjection;
  type WireStatus = import('../companion/grpc.js').WireExperimentStatus;
  const Client = loadCompanionService();
  const client = new Client(o.companion as string, clientCredentials(tls), o.tlsServerName ? { 'grpc.ssl_target_name_override': o.tlsServerName } : {});
  const call = <T>(method: string, req: object): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const fn = (client as unknown as Record<string, (r: object, opts: object, cb: (e: Error | null, v: T) => void) => void>)[method];
      if (!fn) return reject(new Error(`no method ${method}`));
      fn.call(client, req, { deadline: Date.now() + o.requestTimeout }, (err, v) =>
        err ? reject(new Error(`${o.companion}: ${method}: ${(err as { details?: string }).details || err.message}`)) : resolve(v),
      );
    });
  const namespace = o.namespace ?? 'default';
  return {
    close: () => client.close(),
    read: async () => {
      const list = await call<{ node: string; injections: Wire[] }>('ListInjections', {});
      let injections = list.injections;
      if (!o.allNamespaces && o.namespace !== undefined) injections = injections.filter((i) => i.experiment.namespace === o.namespace);
      if (name !== undefined) injections = injections.filter((i) => i.experiment.name === name && i.experiment.namespace === namespace);
      const docs: CompanionDoc[] = injections.map((i) => ({
        node: list.node,
        experiment: `${i.experiment.namespace}/${i.experiment.name}`,
        source: i.source,
        mode: i.attach_mode,
        containers: i.containers,
        calls: Number(i.calls),
        faults: Number(i.faults),
        armedAt: i.armed_at,
        closesAt: i.closes_at || null,
      }));
      if (name !== undefined) {
        const st = await call<WireStatus>('GetExperimentStatus', { namespace, name });
        const doc: CompanionDoc = docs[0] ?? {
          node: st.node,
          experiment: `${namespace}/${name}`,
          source: 'kernelchaos',
          mode: '-',
          containers: [],
          calls: 0,
          faults: 0,
          armedAt: '',
          closesAt: null,
        };
        doc.schedulePhase = st.schedule_phase;
        doc.records = st.records.map((r) => ({ id: r.id, phase: r.phase, reason: r.reason, faults: Number(r.faults_injected) }));
        docs.splice(0, docs.length, doc);
      }
      const now = new Date();
      const header = ['NODE', 'EXPERIMENT', 'SOURCE', 'MODE', 'CONTAINERS', 'CALLS', 'FAULTS', 'ARMED', 'CLOSES'];
      const rows = docs.map((d) => ({
        key: d.experiment,
        doc: d,
        cells: [d.node, d.experiment, d.source, d.mode, String(d.containers.length), String(d.calls), String(d.faults), d.armedAt ? age(d.armedAt, now) : '-', d.closesAt ?? 'never'],
      }));
      let text = docs.length === 0 ? `Nothing armed on ${list.node}${name ? ` for ${namespace}/${name}` : ''}.` : table([header, ...rows.map((r) => r.cells)]);
      const records = docs[0]?.records;
      if (name !== undefined && records) {
        text += `\n\nschedule: ${docs[0]?.schedulePhase ?? '-'}\n` + table([['CONTAINER', 'PHASE', 'FAULTS', 'REASON'], ...records.map((r) => [r.id, r.phase, String(r.faults), r.reason || '-'])]);
      }
      return { header, rows, text };
    },
  };
}

function renderDocs(docs: unknown[], output: Exclude<Output, 'table'>, single: boolean): string {
  const value = single ? docs[0] : { items: docs };
  return output === 'json' ? JSON.stringify(value, null, 2) : stringify(value).trimEnd();
}

export interface Screen {
  isTTY: boolean;
  write(s: string): void;
}

/** --watch frames: redraw in place on a terminal; otherwise print only rows that changed. */
export class WatchRenderer {
  private lines = 0;
  private readonly seen = new Map<string, string>();
  private headerShown = false;

  constructor(
    private readonly screen: Screen,
    private readonly output: Output,
    private readonly intervalMs: number,
  ) {}

  frame(s: Snapshot, now: Date): void {
    if (this.screen.isTTY && this.output === 'table') {
      const body = `${s.text}\n\nevery ${this.intervalMs / 1000}s, last read ${now.toISOString().slice(11, 19)} UTC (Ctrl-C to stop)\n`;
      // Cursor up over the previous frame, then clear to the end of the screen.
      this.screen.write((this.lines > 0 ? `\x1b[${this.lines}F\x1b[J` : '') + body);
      this.lines = body.split('\n').length - 1;
      return;
    }
    const changed = s.rows.filter((r) => {
      const sig = JSON.stringify(r.doc);
      if (this.seen.get(r.key) === sig) return false;
      this.seen.set(r.key, sig);
      return true;
    });
    if (changed.length === 0) return;
    if (this.output === 'table') {
      const rows = changed.map((r) => r.cells);
      const text = table(this.headerShown ? rows : [s.header, ...rows]);
      this.headerShown = true;
      this.screen.write(`${text}\n`);
    } else {
      for (const r of changed) this.screen.write(`${this.output === 'json' ? JSON.stringify(r.doc) : `---\n${stringify(r.doc).trimEnd()}`}\n`);
    }
  }
}

export async function main(argv: string[]): Promise<number> {
  let o: StatusOptions;
  let name: string | undefined;
  {
    const p = command();
    const parsed = parseCli(p, argv);
    if (parsed !== null) return parsed;
    o = p.opts<StatusOptions>();
    name = p.args[0];
  }
  if (name !== undefined && o.allNamespaces) {
    console.error('kernelchaos status: a NAME and --all-namespaces exclude each other (a name is looked up in one namespace; use -n)');
    return 2;
  }
  if (o.companion === undefined && (o.tlsCert ?? o.tlsKey ?? o.tlsCa ?? o.tlsServerName) !== undefined) {
    console.error('kernelchaos status: --tls-* options go with --companion (the cluster is read through the kubeconfig)');
    return 2;
  }
  let read: Reader;
  let close: () => void = () => {};
  try {
    if (o.companion !== undefined) {
      ({ read, close } = await companionReader(o, name));
    } else {
      read = await clusterReader(o, name);
    }
  } catch (err) {
    console.error(`kernelchaos status: ${errorText(err)}`);
    return 2;
  }
  try {
    if (!o.watch) {
      const s = await read();
      process.stdout.write(`${o.output === 'table' ? s.text : renderDocs(s.rows.map((r) => r.doc), o.output, name !== undefined)}\n`);
      return 0;
    }
    return await watch(read, o);
  } catch (err) {
    console.error(`kernelchaos status: ${errorText(err)}`);
    return 1;
  } finally {
    close();
  }
}

async function watch(read: Reader, o: StatusOptions): Promise<number> {
  const renderer = new WatchRenderer({ isTTY: process.stdout.isTTY === true, write: (s) => process.stdout.write(s) }, o.output, o.interval);
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = (): void => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let failures = 0;
  try {
    for (;;) {
      try {
        renderer.frame(await read(), new Date());
        failures = 0;
      } catch (err) {
        // A blip of the API does not end a watch; many in a row do.
        failures += 1;
        console.error(`kernelchaos status: ${errorText(err)}${failures < 5 ? ' (retrying)' : ''}`);
        if (failures >= 5) return 1;
      }
      const tick = new Promise<'tick'>((resolve) => setTimeout(() => resolve('tick'), o.interval).unref());
      if ((await Promise.race([tick, stopped.then(() => 'stop' as const)])) === 'stop') return 0;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
