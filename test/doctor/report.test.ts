import { describe, expect, it } from 'vitest';
import { doctorChecks, formatDoctorReport } from '../../src/bpf/doctor-report.js';
import { diagnose } from '../../src/bpf/doctor.js';
import { host618, vm61 } from './fixtures.js';

const row = (rows: ReturnType<typeof doctorChecks>, check: string) => rows.find((r) => r.check === check);

describe('doctor report', () => {
  it('the test VM: the key checks are ok and each failtype prints WORKS via fmod_ret', () => {
    const facts = vm61();
    const rows = doctorChecks(facts);
    for (const check of ['BTF', 'kprobes', 'bpf_override_return', 'error injection', 'site should_failslab', 'site should_fail_alloc_page', 'site should_fail_bio', 'cgroup targets', 'lockdown', 'capabilities', 'clang', 'bpftool', 'libbpf']) {
      expect(row(rows, check)?.status, check).toBe('ok');
    }
    expect(row(rows, 'site should_fail_alloc_page')?.detail).toBe('in kallsyms; BTF id 18455; error-injectable (TRUE)');
    const text = formatDoctorReport(rows, diagnose(facts), facts);
    expect(text.split('\n')[0]).toBe('verdict: all three failtypes can be injected on this kernel (kernel 6.1.192, x86_64)');
    // Nothing to do: no "first" line, no problems.
    expect(text).not.toMatch(/^first:/m);
    expect(text).not.toContain('problem:');
    expect(text).toContain('failtype 0 (should_failslab): WORKS via fmod_ret');
    expect(text).toContain('failtype 2 (should_fail_bio): WORKS via fmod_ret');
    expect(text).toContain('verdict: all three failtypes can be injected on this kernel');
  });

  it('the build host: missing kprobes, missing sites and the refused fmod_ret load are shown as missing, with remedies', () => {
    const facts = host618();
    const rows = doctorChecks(facts);
    expect(row(rows, 'kprobes')).toEqual({ check: 'kprobes', status: 'missing', detail: 'CONFIG_KPROBES=not set; no kprobe PMU; tracefs not mounted; debugfs not mounted' });
    expect(row(rows, 'site should_failslab')).toMatchObject({ status: 'missing', detail: 'NOT in kallsyms; not in BTF' });
    expect(row(rows, 'probe fmod_ret should_fail_bio')).toMatchObject({ status: 'missing', detail: 'load refused: EPERM (operation not permitted)' });
    expect(row(rows, 'lockdown')).toMatchObject({ status: 'warn', detail: 'integrity (from config)' });
    expect(row(rows, 'cgroup targets')).toMatchObject({ status: 'warn' });
    const text = formatDoctorReport(rows, diagnose(facts), facts);
    expect(text).toMatch(/^failtype 1 \(should_fail_alloc_page\): FAILS$/m);
    expect(text).toMatch(/^ {2}remedy: {2}use a kernel built with CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y$/m);
    expect(text).toContain('verdict: no failtype can be injected on this kernel');
  });

  it('puts the verdict and the one remedy every failing failtype needs on top, and each remedy under its problem', () => {
    const facts = host618();
    const text = formatDoctorReport(doctorChecks(facts), diagnose(facts), facts);
    const lines = text.split('\n');
    expect(lines[0]).toBe(`verdict: no failtype can be injected on this kernel (kernel ${facts.release}, x86_64)`);
    expect(lines[1]).toBe('first:   use a kernel built with CONFIG_FUNCTION_ERROR_INJECTION=y (needed by failtypes 0, 1, 2)');
    // Within each failtype the first-step problem comes first, its remedy on the next line.
    const ft2 = lines.indexOf('failtype 2 (should_fail_bio): FAILS');
    expect(lines[ft2 + 1]).toMatch(/^ {2}problem: kernel built without CONFIG_FUNCTION_ERROR_INJECTION/);
    expect(lines[ft2 + 2]).toBe('  remedy:  use a kernel built with CONFIG_FUNCTION_ERROR_INJECTION=y');
    // Every problem is followed by its own remedy before the next problem of another remedy.
    const pairs = new Map<string, string>();
    lines.forEach((l, i) => {
      if (l.startsWith('  problem: ') && lines[i + 1]?.startsWith('  remedy:  ')) pairs.set(l.slice(11), (lines[i + 1] as string).slice(11));
    });
    expect(pairs.get('kprobe: kernel built without CONFIG_BPF_KPROBE_OVERRIDE: kprobe programs cannot call bpf_override_return')).toBe('use a kernel built with CONFIG_BPF_KPROBE_OVERRIDE=y');
    expect(pairs.get("kprobe: kernel lockdown is 'integrity' (from config): kprobes are forbidden")).toBe('boot with lockdown=none (or disable Secure Boot enforcement of lockdown)');
    // The alternatives are labelled as such.
    expect(text).toContain('  then either, for trampolines (preferred):');
    expect(text).toContain('  or, for kprobes:');
    // The table of checks comes after the advice.
    expect(text.indexOf('CHECK ')).toBeGreaterThan(text.indexOf('failtype 2'));
  });

  it('a kernel with kprobes but no trampolines: works, with what trampolines would need as a side note', () => {
    const facts = vm61();
    facts.config = { ...facts.config, options: { ...(facts.config.known ? facts.config.options : {}), CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS: undefined } } as typeof facts.config;
    const diagnosis = diagnose(facts);
    const text = formatDoctorReport(doctorChecks(facts), diagnosis, facts);
    expect(diagnosis.failtypes[0].verdict).toBe('kprobe-only');
    expect(text).not.toMatch(/^first:/m);
    expect(text).toContain('failtype 0 (should_failslab): WORKS (kprobe only) via kprobe');
    expect(text).toContain('  works with kprobes; for trampolines (faster):');
  });
});
