// BPF objects for the node's own architecture: clang gets __TARGET_ARCH_* from process.arch, and
// the generated C reads kprobe arguments only through libbpf's PT_REGS_PARMn (plus one macro for
// the sixth argument that libbpf 1.1 lacks). The arm64 expansion is checked with the preprocessor
// and libbpf's real headers; a full arm64 compile needs an arm64 kernel's BTF, which no test here has.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFailKernRequest } from '../../src/api/predicate/index.js';
import { bpfTargetArch, clangFlags } from '../../src/bpf/compile.js';
import { doctorChecks } from '../../src/bpf/doctor-report.js';
import { generateProgram } from '../../src/bpf/generate.js';
import { RUNTIME_HEADER_DIR } from '../../src/bpf/runtime-headers.js';
import { vm61 } from '../doctor/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'kc-arch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const request = parseFailKernRequest({
  failtype: 0,
  callchain: [{ funcname: 'six_args', parameters: 'long a, long b, long c, long d, long e, long f', predicate: 'a == 1 && f == 6' }],
});

/** The kprobe program after the preprocessor, for `arch` (an empty vmlinux.h: types are not needed to expand macros). */
function expanded(arch: string): string {
  const src = join(dir, `prog-${arch}.c`);
  // vmlinux.h defines this guard, which selects the kernel's own pt_regs field names in libbpf.
  writeFileSync(join(dir, 'vmlinux.h'), '#define __VMLINUX_H__\n');
  writeFileSync(src, generateProgram(request, 'kprobe').source);
  return execFileSync('clang', ['-E', '-P', ...clangFlags(arch).filter((f) => f.startsWith('-D') || f === '-target' || f === 'bpf'), '-I', dir, '-I', RUNTIME_HEADER_DIR, src], { encoding: 'utf8' });
}

describe('architecture', () => {
  it('passes the running machine\'s __TARGET_ARCH_ to clang, and refuses an unknown one', () => {
    expect(clangFlags('x64')).toContain('-D__TARGET_ARCH_x86');
    expect(clangFlags('arm64')).toContain('-D__TARGET_ARCH_arm64');
    expect(clangFlags('arm64')).not.toContain('-D__TARGET_ARCH_x86');
    expect(bpfTargetArch('mips')).toBeUndefined();
    expect(clangFlags('mips').some((f) => f.startsWith('-D__TARGET_ARCH_'))).toBe(false);
  });

  it('generates no register names: arguments go through the libbpf macros', () => {
    const source = generateProgram(request, 'kprobe').source;
    expect(source).toContain('PT_REGS_PARM1(ctx)');
    expect(source).toContain('KC_PT_REGS_PARM6(ctx)');
    expect(source).not.toMatch(/ctx->(r9|di|si|dx|cx|r8|regs)/);
  });

  // The predicate reads the first and the sixth argument; the site reads its second (gfp flags).
  it('arm64: first and sixth arguments from x0 and x5, the site\'s gfp from x1', () => {
    const out = expanded('arm64');
    expect(out).toContain('long kc_arg_a = (long)(((const struct user_pt_regs *)(ctx))->regs[0]);');
    expect(out).toContain('long kc_arg_f = (long)(((const struct user_pt_regs *)(ctx))->regs[5]);');
    expect(out).toContain('(((const struct user_pt_regs *)(ctx))->regs[1]) & 0x8000U');
    expect(out).not.toMatch(/->(di|si|r9)\b/);
  });

  it('x86-64: first and sixth arguments from di and r9, the site\'s gfp from si', () => {
    const out = expanded('x64');
    expect(out).toMatch(/long kc_arg_a = \(long\)\(\(ctx\)->di\);/);
    expect(out).toMatch(/long kc_arg_f = \(long\)\(\(\(const struct pt_regs \*\)\(ctx\)\)->r9\);/);
    expect(out).toMatch(/\(ctx\)->si\) & 0x8000U/);
    expect(out).not.toMatch(/regs\[\d\]/);
  });

  it('doctor names the architecture, what programs are built for, and what was tested there', () => {
    const row = (arch: string) => doctorChecks({ ...vm61(), arch }).find((r) => r.check === 'architecture');
    expect(row('x86_64')).toEqual({ check: 'architecture', status: 'ok', detail: expect.stringMatching(/^x86_64: programs built with __TARGET_ARCH_x86; faults tested in the x86-64 test VM/) });
    expect(row('aarch64')).toMatchObject({ status: 'warn', detail: expect.stringContaining('__TARGET_ARCH_arm64; code generation unit-tested only') });
    expect(row('mips')).toMatchObject({ status: 'missing', detail: expect.stringContaining('cannot build BPF programs') });
  });
});
