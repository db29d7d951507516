// `kernelchaos render -f SPEC|- [--mode trampoline|kprobe]`: prints the BPF C program a KernelChaos
// compiles to, as `run` and the companion compile it, with kernelchaos's headers (src/bpf/*.h)
// pasted in: one complete unit that needs only vmlinux.h and libbpf's headers.
import { Option, type Command } from 'commander';
import { addFilenameOption, oneFilename, parseCli, processIo, readStdinIfDash, subcommand, type CliIo } from './commander.js';
import { generateProgram, GenerateError, type ProgramMode } from '../bpf/generate.js';
import { CLANG_FLAGS } from '../bpf/compile.js';
import { SETTINGS_SECTION } from '../bpf/layout.js';
import { inlineRuntimeHeaders, RUNTIME_HEADERS } from '../bpf/runtime-headers.js';
import { loadSpecFile, SpecFileError } from '../bpf/spec-file.js';
import { EngineError } from '../bpf/types.js';

export const EXIT_CODES = [
  { code: 0, meaning: 'the program (or with --hooks its hooks) was printed' },
  { code: 1, meaning: 'the manifest is unreadable or invalid, or cannot be compiled' },
];

export function command(io: CliIo = processIo): Command {
  return addFilenameOption(
    subcommand({ name: 'render', description: 'Print the BPF C program that a KernelChaos manifest compiles to.', exitCodes: EXIT_CODES, io }),
    { what: 'the KernelChaos manifest (YAML or JSON)' },
  )
    .addOption(new Option('--mode <mode>', 'how frames and the site are hooked').choices(['trampoline', 'kprobe']).default('trampoline'))
    .option('--hooks', 'print the programs and the functions they hook instead of the source');
}

export async function main(argv: string[]): Promise<number> {
  const out: string[] = [];
  const cmd = command();
  const parsed = parseCli(cmd, argv);
  if (parsed !== null) return parsed;
  const file = oneFilename(cmd);
  if (typeof file === 'number') return file;
  const opts = { ...cmd.opts<{ mode: ProgramMode; hooks?: boolean }>(), file };
  try {
    const spec = loadSpecFile(opts.file, readStdinIfDash(opts.file) ?? undefined);
    for (const w of spec.warnings) process.stderr.write(`kernelchaos render: warning: ${w}\n`);
    const program = generateProgram(spec.request, opts.mode);
    if (opts.hooks) {
      for (const h of program.hooks) out.push(`${h.program}\t${h.section}\t${h.role}`);
      process.stdout.write(out.join('\n') + '\n');
    } else {
      const s = program.settings;
      process.stdout.write(
        [
          `// kernelchaos render: one complete unit: the generated file with ${RUNTIME_HEADERS.join(', ')} pasted in`,
          `// where it includes them. Build: clang ${CLANG_FLAGS.join(' ')} -I DIR_WITH_VMLINUX_H -c FILE (vmlinux.h: bpftool btf dump file /sys/kernel/btf/vmlinux format c).`,
          `// Load-time settings (kc_settings in ${SETTINGS_SECTION}): probability ${s.probability}, times ${s.times}, chain length ${s.chainLength}.`,
          '',
        ].join('\n') + inlineRuntimeHeaders(program.source),
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof SpecFileError || err instanceof EngineError) {
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
