// `kernelchaos render -f SPEC [--mode trampoline|kprobe]`: prints the BPF C program a KernelChaos
// compiles to, exactly as `run` and the companion would compile it.
import { Command, Option } from 'commander';
import { commanderExitCode, forCli } from './commander.js';
import { generateProgram, GenerateError, type ProgramMode } from '../bpf/generate.js';
import { loadSpecFile, SpecFileError } from '../bpf/spec-file.js';

export async function main(argv: string[]): Promise<number> {
  const out: string[] = [];
  const command = forCli(
    new Command('kernelchaos render')
      .description('Print the BPF C program that a KernelChaos manifest compiles to.')
      .requiredOption('-f, --file <spec>', 'the KernelChaos manifest (YAML or JSON)')
      .addOption(new Option('--mode <mode>', 'how frames and the site are hooked').choices(['trampoline', 'kprobe']).default('trampoline'))
      .option('--hooks', 'print the programs and the functions they hook instead of the source')
  );
  try {
    command.parse(argv, { from: 'user' });
  } catch (err) {
    const code = commanderExitCode(err);
    if (code !== null) return code;
    throw err;
  }
  const opts = command.opts<{ file: string; mode: ProgramMode; hooks?: boolean }>();
  try {
    const spec = loadSpecFile(opts.file);
    for (const w of spec.warnings) process.stderr.write(`kernelchaos render: warning: ${w}\n`);
    const program = generateProgram(spec.request, opts.mode);
    if (opts.hooks) {
      for (const h of program.hooks) out.push(`${h.program}\t${h.section}\t${h.role}`);
      process.stdout.write(out.join('\n') + '\n');
    } else {
      process.stdout.write(program.source);
    }
    return 0;
  } catch (err) {
    if (err instanceof SpecFileError) {
      process.stderr.write(`kernelchaos render: ${err.message}\n`);
      return 1;
    }
    if (err instanceof GenerateError) {
      process.stderr.write(`kernelchaos render: ${opts.file}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
