import { describe, expect, it } from 'vitest';
import { doctorChecks, formatDoctorReport } from '../../src/bpf/doctor-report.js';
import { diagnose } from '../../src/bpf/doctor.js';
import { host618, vm61 } from './fixtures.js';

const row = (rows: ReturnType<typeof doctorChecks>, check: string) => rows.find((r) => r.check === check);

describe('doctor report', () => {
  it('the test VM: the key checks are ok and each failtype prints WORKS via fmod_ret', () => {
    const facts = vm61();
    const rows = doctorChecks(facts);
    for (const check of ['BTF', 'kprobes', 'bpf_override_return', 'error injection', 'site should_failslab', 'site should_fail_alloc_page', 'site should_fail_bio', 'cgroup v2', 'lockdown', 'capabilities', 'clang', 'bpftool', 'libbpf']) {
      expect(row(rows, check)?.status, check).toBe('ok');
    }
    expect(row(rows, 'site should_fail_alloc_page')?.detail).toBe('in kallsyms; BTF id 18455; error-injectable (TRUE)');
    const text = formatDoctorReport(rows, diagnose(facts));
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
    expect(row(rows, 'cgroup v2')).toMatchObject({ status: 'warn' });
    const text = formatDoctorReport(rows, diagnose(facts));
    expect(text).toMatch(/^failtype 1 \(should_fail_alloc_page\): FAILS$/m);
    expect(text).toMatch(/^ {2}remedy: {2}use a kernel built with CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y$/m);
    expect(text).toContain('verdict: no failtype can be injected on this kernel');
  });
});
