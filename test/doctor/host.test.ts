// `kernelchaos doctor` on the machine running the tests. Expectations are derived from what this
// host really has (read here independently of kernel-facts.ts), so the test holds on any host:
// on the build machine (no kprobes) it checks that doctor says precisely that.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/doctor.js';
import type { Diagnosis } from '../../src/bpf/doctor.js';
import type { CheckRow } from '../../src/bpf/doctor-report.js';

const SITES = ['should_failslab', 'should_fail_alloc_page', 'should_fail_bio'] as const;
const hostHasKprobes = existsSync('/sys/bus/event_source/devices/kprobe/type');
const kallsyms = (() => {
  try {
    return readFileSync('/proc/kallsyms', 'utf8');
  } catch {
    return null;
  }
})();
const siteInKallsyms = (site: string): boolean => kallsyms !== null && new RegExp(`^\\S+ [tT] ${site}$`, 'm').test(kallsyms);

async function runDoctor(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { stdout += String(chunk); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { stderr += String(chunk); return true; });
  const code = await main(args);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}
afterEach(() => { vi.restoreAllMocks(); });

describe('kernelchaos doctor on this host', () => {
  it('--output json: the exit status matches the verdicts, and missing sites are named', async () => {
    const { code, stdout } = await runDoctor(['--output', 'json']);
    const report = JSON.parse(stdout) as { diagnosis: Diagnosis; checks: CheckRow[] };
    const usable = report.diagnosis.failtypes.filter((f) => f.verdict !== 'fails');
    expect(code).toBe(usable.length > 0 ? 0 : 1);
    for (const f of report.diagnosis.failtypes) {
      expect(f.site).toBe(SITES[f.failtype]);
      if (f.verdict === 'fails') expect(f.remedies.length).toBeGreaterThan(0);
      if (kallsyms !== null && !siteInKallsyms(f.site)) {
        expect(f.verdict).toBe('fails');
        expect(f.problems.some((p) => p.includes(f.site) && /not in this kernel|not in \/proc\/kallsyms|compiler clone/.test(p))).toBe(true);
      }
    }
  });

  it.skipIf(hostHasKprobes)('without kprobes here, every failtype names the missing kprobes and the kprobes check says so', async () => {
    const { stdout } = await runDoctor(['--output', 'json']);
    const report = JSON.parse(stdout) as { diagnosis: Diagnosis; checks: CheckRow[] };
    expect(report.checks.find((c) => c.check === 'kprobes')).toMatchObject({ status: 'missing', detail: expect.stringContaining('no kprobe PMU') });
    for (const f of report.diagnosis.failtypes) {
      if (f.verdict === 'fails') {
        expect(f.problems.some((p) => /^kprobe: .*(CONFIG_KPROBE|kprobe PMU)/.test(p))).toBe(true);
        expect(f.remedies.some((r) => /CONFIG_KPROBE(S|_EVENTS)=y/.test(r))).toBe(true);
      } else {
        // Without kprobes only trampolines can work.
        expect(f.via).toBe('fmod_ret');
      }
    }
  });

  it('the text report has the table and one verdict line per failtype', async () => {
    const { stdout } = await runDoctor(['--no-probe']);
    expect(stdout).toMatch(/^CHECK\s+STATUS\s+DETAIL$/m);
    expect(stdout).toMatch(/^kprobes\s+(ok|missing)\s+/m);
    for (const [i, site] of SITES.entries()) expect(stdout).toMatch(new RegExp(`^failtype ${i} \\(${site}\\): (WORKS|FAILS)`, 'm'));
    expect(stdout).toMatch(/^verdict: /m);
  });

  it('-f SPEC: names a call-chain function this kernel lacks by its manifest field, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-doctor-spec-'));
    try {
      const file = join(dir, 'typo.yaml');
      writeFileSync(file, [
        'apiVersion: chaos-mesh.org/v1alpha1', 'kind: KernelChaos', 'metadata: {name: typo, namespace: t}',
        'spec:', '  mode: one', '  selector: {namespaces: [t]}', '  failKernRequest:', '    failtype: 2', '    callchain:',
        '      - funcname: no_such_kernel_function_xyz',
      ].join('\n'));
      const { code, stdout } = await runDoctor(['--no-probe', '-f', file]);
      expect(code).toBe(1);
      if (kallsyms !== null) {
        expect(stdout).toMatch(/^ {2}problem: spec\.failKernRequest\.callchain\[0\]\.funcname: no_such_kernel_function_xyz is not a function of this kernel/m);
      }
      const missing = await runDoctor(['-f', join(dir, 'absent.yaml')]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/absent\.yaml: \(file\): cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bad --output value is a clear usage error, exit 2', async () => {
    const { code, stderr } = await runDoctor(['--output', 'xml']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/'xml' is invalid.*text, json/);
  });
});
