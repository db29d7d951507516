// `kernelchaos completion bash|zsh`: a completion script generated from the commander tree of every
// subcommand, so a new option completes without editing this file.
//   bash: source <(kernelchaos completion bash)     zsh: source <(kernelchaos completion zsh)
import { Argument, type Command } from 'commander';
import { parseCli, processIo, subcommand, usageError, type CliIo } from './commander.js';

export interface CompletionTree {
  name: string;
  summary: string;
  /** Long and short flags, visible options only. */
  flags: string[];
  /** Flags whose value is a file or directory. */
  fileFlags: string[];
  /** Flags with a fixed set of values. */
  choices: Record<string, string[]>;
  /** Nested subcommands (certs ca, certs serve, ...). */
  subcommands: CompletionTree[];
}

const FILE_VALUE = /<(path|file|dir|spec|files?)>|FILE|DIR/i;

export function completionTree(name: string, summary: string, command: Command): CompletionTree {
  const flags: string[] = [];
  const fileFlags: string[] = [];
  const choices: Record<string, string[]> = {};
  const help = command.createHelp();
  for (const o of help.visibleOptions(command)) {
    const names = [o.short, o.long].filter((x): x is string => x !== undefined);
    flags.push(...names);
    if (o.argChoices) for (const n of names) choices[n] = o.argChoices;
    else if (FILE_VALUE.test(o.flags) || /file|dir|path|manifest|kubeconfig|cert|key|ca\b/i.test(o.long ?? '')) {
      if (o.required || o.optional) fileFlags.push(...names);
    }
  }
  return {
    name,
    summary,
    flags,
    fileFlags,
    choices,
    subcommands: command.commands.map((c) => completionTree(c.name(), c.description(), c)),
  };
}

function shellWords(words: readonly string[]): string {
  return words.map((w) => w.replace(/[^\w@%+=:,./-]/g, '')).join(' ');
}

function bashCase(tree: CompletionTree, depth: number): string {
  const lines: string[] = [];
  const fileCase = tree.fileFlags.length > 0 ? `        ${tree.fileFlags.join('|')}) COMPREPLY=( $(compgen -f -- "$cur") ); compopt -o filenames 2>/dev/null; return ;;` : '';
  const choiceCases = Object.entries(tree.choices).map(([flag, values]) => `        ${flag}) COMPREPLY=( $(compgen -W "${shellWords(values)}" -- "$cur") ); return ;;`);
  lines.push(`      case "$prev" in`, ...choiceCases, ...(fileCase ? [fileCase] : []), '      esac');
  if (tree.subcommands.length > 0) {
    lines.push(
      `      if [ "$COMP_CWORD" -eq ${depth + 1} ]; then COMPREPLY=( $(compgen -W "${shellWords(tree.subcommands.map((s) => s.name))}" -- "$cur") ); return; fi`,
      `      case "\${COMP_WORDS[${depth + 1}]}" in`,
      ...tree.subcommands.map((s) => `      ${s.name})\n  ${bashCase(s, depth + 1).replace(/\n/g, '\n  ')}\n        ;;`),
      '      esac',
    );
  }
  lines.push(`      COMPREPLY=( $(compgen -W "${shellWords(tree.flags)}" -- "$cur") )`);
  return lines.join('\n');
}

export function bashScript(trees: readonly CompletionTree[]): string {
  return `# bash completion for kernelchaos; load with: source <(kernelchaos completion bash)
_kernelchaos() {
  local cur prev
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${shellWords([...trees.map((t) => t.name), 'help', '--help', '--version'])}" -- "$cur") )
    return
  fi
  case "\${COMP_WORDS[1]}" in
    help) COMPREPLY=( $(compgen -W "${shellWords(trees.map((t) => t.name))}" -- "$cur") ) ;;
${trees.map((t) => `    ${t.name})\n${bashCase(t, 1)}\n      ;;`).join('\n')}
  esac
}
complete -F _kernelchaos kernelchaos
`;
}

function zshQuote(s: string): string {
  return s.replace(/'/g, "'\\''").replace(/[[\]:]/g, (c) => `\\${c}`);
}

function zshSpecs(tree: CompletionTree): string[] {
  return tree.flags.map((f) => {
    const action = tree.choices[f] ? `:value:(${shellWords(tree.choices[f] ?? [])})` : tree.fileFlags.includes(f) ? ':file:_files' : '';
    return `'${f}[${zshQuote(f)}]${action}'`;
  });
}

export function zshScript(trees: readonly CompletionTree[]): string {
  const commands = trees.map((t) => `'${t.name}:${zshQuote(t.summary)}'`).join(' ');
  const cases = trees
    .map((t) => {
      const nested = t.subcommands.length > 0 ? ` '1:subcommand:(${shellWords(t.subcommands.map((s) => s.name))})'` : '';
      return `    ${t.name}) _arguments ${zshSpecs(t).join(' ')}${nested} '*:file:_files' ;;`;
    })
    .join('\n');
  return `#compdef kernelchaos
# zsh completion for kernelchaos; load with: source <(kernelchaos completion zsh)
_kernelchaos() {
  local -a commands
  commands=(${commands})
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  local cmd=\${words[2]}
  shift words; (( CURRENT-- ))
  case $cmd in
    help) _describe 'command' commands ;;
${cases}
  esac
}
compdef _kernelchaos kernelchaos
`;
}

export const EXIT_CODES = [{ code: 0, meaning: 'the script was printed' }];

export function command(io: CliIo = processIo): Command {
  return subcommand({
    name: 'completion',
    description: 'Print a shell completion script for every kernelchaos command and option.\n' +
      'bash: source <(kernelchaos completion bash)   zsh: source <(kernelchaos completion zsh)',
    exitCodes: EXIT_CODES,
    io,
  }).addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']));
}

/** Every subcommand's tree, from the commands the modules build. */
export async function allTrees(): Promise<CompletionTree[]> {
  const { SUBCOMMANDS } = await import('./main.js');
  const trees: CompletionTree[] = [];
  for (const [name, sub] of Object.entries(SUBCOMMANDS)) {
    const mod = await sub.load();
    if (mod.command) trees.push(completionTree(name, sub.summary, mod.command()));
  }
  return trees;
}

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const cmd = command(io);
  const parsed = parseCli(cmd, argv);
  if (parsed !== null) return parsed;
  const shell = cmd.args[0];
  if (shell !== 'bash' && shell !== 'zsh') return usageError(cmd, 'give bash or zsh');
  const trees = await allTrees();
  io.stdout(shell === 'bash' ? bashScript(trees) : zshScript(trees));
  return 0;
}
