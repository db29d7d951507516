// `kernelchaos doctor`: what this kernel offers for fault injection and, per failtype, whether it
// works here and what to change if not. Exit 0 if at least one failtype can work, 1 if none.
// With -f SPEC it also checks that manifest's failtype and call-chain functions on this kernel,
// and the exit status is about that spec.
import { Option, type Command } from 'commander';
import { addFilenameOption, filenames, parseCli, processIo, readStdinIfDash, subcommand, type CliIo } from './commander.js';
import { gatherKernelFacts } from '../bpf/kernel-facts.js';
import { diagnose, diagnoseChain } from '../bpf/doctor.js';
import { doctorChecks, formatDoctorReport } from '../bpf/doctor-report.js';
import { loadSpecFile, SpecFileError, type LocalSpec } from '../bpf/spec-file.js';
import { KERNEL_BTF_PATH, requestTypeProblems } from '../bpf/btf.js';
import { planForm, readKernelFacts } from '../bpf/engine.js';

export const EXIT_CODES = [
  { code: 0, meaning: 'at least one failtype can be injected here (with -f: that manifest can work here)' },
  { code: 1, meaning: 'no failtype can be injected here (with -f: that manifest cannot work here)' },
  { code: 2, meaning: 'usage error, or the -f manifest is unreadable or invalid' },
];

export function command(io: CliIo = processIo): Command {
  const cmd = subcommand({ name: 'doctor', description: "Report which failtypes this kernel can inject, and what's missing.", exitCodes: EXIT_CODES, io })
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--btf <file>', "check the spec's parameters and predicates against this BTF instead of the running kernel's", KERNEL_BTF_PATH)
    .option('--no-probe', 'do not attach throwaway test programs to the injection sites');
  return addFilenameOption(cmd, { what: 'also check a KernelChaos manifest: its failtype and each call-chain function on this kernel' });
}

export async function main(argv: string[]): Promise<number> {
  const program = command();
  const parsed = parseCli(program, argv);
  if (parsed !== null) return parsed;
  const files = filenames(program);
  const opts = { ...program.opts<{ output: 'text' | 'json'; probe: boolean; btf: string }>(), file: files[files.length - 1] };

  let spec: LocalSpec | null = null;
  if (opts.file !== undefined) {
    try {
      spec = loadSpecFile(opts.file, readStdinIfDash(opts.file) ?? undefined);
    } catch (err) {
      if (err instanceof SpecFileError) {
        process.stderr.write(`kernelchaos doctor: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
  }
  const chain = spec ? spec.request.callchain.map((f) => f.funcname) : [];
  const facts = await gatherKernelFacts({ liveProbes: opts.probe, functions: chain });
  const diagnosis = diagnose(facts);
  const checks = doctorChecks(facts);
  const specCheck = spec
    ? (() => {
        const failtype = diagnosis.failtypes[spec.request.failtype];
        const frames = diagnoseChain(facts, spec.request.failtype, chain, failtype.via);
        const frameProblems = [...frames.problems, ...requestTypeProblems(spec.request, opts.btf)];
        // Without its site, failtype 0/1 may still work in the syscall-entry form, as `run` and the companion arm it.
        let mechanism: string | null = null;
        let formProblem: string | null = null;
        if (failtype.verdict === 'fails' && spec.request.failtype !== 2) {
          try {
            const plan = planForm(spec.request, readKernelFacts(spec.request), true);
            if (plan.form === 'syscall-entry') mechanism = plan.mechanism;
          } catch (err) {
            formProblem = err instanceof Error ? err.message : String(err);
          }
        }
        const verdict = mechanism !== null ? ('works' as const) : failtype.verdict;
        return { name: spec.name, failtype: spec.request.failtype, verdict, via: mechanism ?? failtype.via, formProblem, frameProblems, frameWarnings: frames.warnings };
      })()
    : null;

  if (opts.output === 'json') {
    process.stdout.write(JSON.stringify({ facts, checks, diagnosis, ...(specCheck ? { spec: specCheck } : {}) }, null, 2) + '\n');
  } else {
    process.stdout.write(formatDoctorReport(checks, diagnosis, facts) + '\n');
    if (specCheck) {
      const usable = specCheck.verdict !== 'fails' && specCheck.frameProblems.length === 0;
      const lines = [
        '',
        `spec ${specCheck.name} (${opts.file}): failtype ${specCheck.failtype} ${specCheck.verdict === 'fails' ? `cannot work here (${specCheck.formProblem ?? 'see above'})` : `works via ${specCheck.via}`}; ` +
          `call chain ${chain.length === 0 ? '(empty)' : chain.join(' -> ')}: ${usable ? 'OK' : specCheck.frameProblems.length > 0 ? 'PROBLEMS' : 'not checked further'}`,
        ...specCheck.frameProblems.map((p) => `  problem: ${p.path}: ${p.message}`),
        ...specCheck.frameWarnings.map((w) => `  note:    ${w}`),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    }
  }
  if (specCheck) return specCheck.verdict !== 'fails' && specCheck.frameProblems.length === 0 ? 0 : 1;
  return diagnosis.overall.usable.length > 0 ? 0 : 1;
}
