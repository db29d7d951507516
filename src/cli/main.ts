// Entry point: dispatches to one module per subcommand, loaded lazily so `kernelchaos validate`
// does not pay for gRPC, the Kubernetes client or libbpf. The root command (help, version,
// did-you-mean for a mistyped command) is commander's, like every subcommand.
import { Command } from 'commander';
import { exitCodesHelp, forCli, parseCli, processIo, VERSION, type CliIo } from './commander.js';

export interface SubcommandModule {
  main: (argv: string[]) => Promise<number>;
  /** The subcommand's Command, for completion (built without side effects). */
  command?: (io?: CliIo) => Command;
}

export interface Subcommand {
  summary: string;
  load: () => Promise<SubcommandModule>;
}

export const SUBCOMMANDS: Record<string, Subcommand> = {
  validate: { summary: 'check manifests offline as the cluster would, policies included', load: () => import('./validate.js') },
  render: { summary: 'print the BPF C program a KernelChaos compiles to', load: () => import('./render.js') },
  run: { summary: 'run one local command under a KernelChaos fault (no cluster needed)', load: () => import('./run.js') },
  doctor: { summary: "report which failtypes this kernel can inject, and what's missing", load: () => import('./doctor.js') },
  webhook: { summary: 'serve the admission webhook over HTTPS', load: () => import('./webhook.js') },
  controller: { summary: 'select and label targeted pods, aggregate status', load: () => import('./controller.js') },
  companion: { summary: 'run the node companion: attach faults to labelled pods on this node', load: () => import('./companion.js') },
  status: { summary: 'show experiments: phase, targets, armed containers, faults (cluster or one companion)', load: () => import('./status.js') },
  certs: { summary: 'generate a CA and serving/client certificates; patch webhook CA bundles', load: () => import('./certs.js') },
  completion: { summary: 'print a shell completion script (bash or zsh)', load: () => import('./completion.js') },
};

/** The root command: lists the subcommands; parsing it only ever shows help, the version or an error. */
export function rootCommand(io: CliIo = processIo): Command {
  const program = forCli(new Command('kernelchaos'), io)
    .usage('<command> [options]')
    .description(`Kernel fault injection for Kubernetes pods (KernelChaos, chaos-mesh.org/v1alpha1). Version ${VERSION}.`)
    .version(VERSION, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .helpCommand('help [command]', 'print the help of a command')
    .addHelpText(
      'after',
      `\nRun \`kernelchaos help <command>\` (or \`kernelchaos <command> --help\`) for a command's options and exit codes.\n\n` +
        `${exitCodesHelp([{ code: 0, meaning: 'success; each command documents its other codes in its --help' }, { code: 2, meaning: 'usage error: no or unknown command (with a did-you-mean), unknown option' }])}\n\nkernelchaos ${VERSION}`,
    );
  for (const [name, sub] of Object.entries(SUBCOMMANDS)) program.command(name).description(sub.summary);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name !== undefined && Object.hasOwn(SUBCOMMANDS, name)) {
    const mod = await (SUBCOMMANDS[name] as Subcommand).load();
    return mod.main(rest);
  }
  const program = rootCommand();
  if (name === 'help' && rest[0] !== undefined) {
    if (!Object.hasOwn(SUBCOMMANDS, rest[0])) return parseCli(program, [rest[0]]) ?? 2;
    const mod = await (SUBCOMMANDS[rest[0]] as Subcommand).load();
    return mod.main(['--help']);
  }
  if (name === undefined) {
    // No command is a usage error, but the help is what the user needs to see.
    program.outputHelp({ error: true });
    return 2;
  }
  // Only help, the version or an error (unknown command, with a did-you-mean) can come out of here.
  const code = parseCli(program, argv);
  return code ?? 2;
}
