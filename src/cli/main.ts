// Entry point: dispatches to one module per subcommand, loaded lazily so `kernelchaos validate`
// does not pay for gRPC, the Kubernetes client or libbpf.
export interface Subcommand {
  summary: string;
  load: () => Promise<{ main: (argv: string[]) => Promise<number> }>;
}

export const SUBCOMMANDS: Record<string, Subcommand> = {
  validate: { summary: 'check KernelChaos manifests offline, as the cluster would', load: () => import('./validate.js') },
  render: { summary: 'print the BPF C program a KernelChaos compiles to', load: () => import('./render.js') },
  run: { summary: 'run one local command under a KernelChaos fault (no cluster needed)', load: () => import('./run.js') },
  doctor: { summary: "report which failtypes this kernel can inject, and what's missing", load: () => import('./doctor.js') },
  webhook: { summary: 'serve the admission webhook over HTTPS', load: () => import('./webhook.js') },
  controller: { summary: 'select and label targeted pods, aggregate status', load: () => import('./controller.js') },
  companion: { summary: 'run the node companion: attach faults to labelled pods on this node', load: () => import('./companion.js') },
  status: { summary: 'show experiments: phase, targets, armed containers, faults (cluster or one companion)', load: () => import('./status.js') },
  certs: { summary: 'generate a CA and serving/client certificates; patch webhook CA bundles', load: () => import('./certs.js') },
};

export function usage(): string {
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((k) => k.length));
  const lines = Object.entries(SUBCOMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: kernelchaos <command> [options]',
    '',
    'Kernel fault injection for Kubernetes pods (KernelChaos, chaos-mesh.org/v1alpha1).',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `kernelchaos <command> --help` for the options of one command.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    console.log('0.1.0');
    return 0;
  }
  const sub = SUBCOMMANDS[name];
  if (!sub) {
    console.error(`kernelchaos: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const mod = await sub.load();
  return mod.main(rest);
}
