// `kernelchaos doctor`: what this kernel offers for fault injection and, per failtype, whether it
// works here and what to change if not. Exit 0 if at least one failtype can work, 1 if none.
import { Command, Option } from 'commander';
import { gatherKernelFacts } from '../bpf/kernel-facts.js';
import { diagnose } from '../bpf/doctor.js';
import { doctorChecks, formatDoctorReport } from '../bpf/doctor-report.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('kernelchaos doctor')
    .description("report which failtypes this kernel can inject, and what's missing")
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--no-probe', 'do not attach throwaway test programs to the injection sites')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : 2;
  }
  const opts = program.opts<{ output: 'text' | 'json'; probe: boolean }>();
  const facts = await gatherKernelFacts({ liveProbes: opts.probe });
  const diagnosis = diagnose(facts);
  const checks = doctorChecks(facts);
  if (opts.output === 'json') {
    process.stdout.write(JSON.stringify({ facts, checks, diagnosis }, null, 2) + '\n');
  } else {
    process.stdout.write(formatDoctorReport(checks, diagnosis) + '\n');
  }
  return diagnosis.overall.usable.length > 0 ? 0 : 1;
}
