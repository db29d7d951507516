// Code generation for nodes whose targets are v1 cgroups of one controller hierarchy
// (src/bpf/kc_target_v1.bpf.h): what the generated C selects, its expansion on x86-64 and arm64
// with the real header and libbpf's headers. Whether it faults the right tasks is
// tested in the VM (test/vm/cgroup-v1.vm.test.ts); the compile against this machine's BTF is in
// compile.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clangFlags } from '../../src/bpf/compile.js';
import { generateProgram, type ProgramMode } from '../../src/bpf/generate.js';
import { RUNTIME_HEADER_DIR } from '../../src/bpf/runtime-headers.js';
import { parsed, SEED } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'kc-v1-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const PIDS = { kind: 'v1', controller: 'pids' } as const;
const MODES: ProgramMode[] = ['trampoline', 'kprobe'];

/** The program after the preprocessor for `arch`, with the real kernelchaos headers (an empty vmlinux.h: only macros expand). */
function expanded(source: string, arch: string): string {
  const src = join(dir, `prog-${arch}.c`);
  writeFileSync(join(dir, 'vmlinux.h'), '#define __VMLINUX_H__\n');
  writeFileSync(src, source);
  const defines = clangFlags(arch).filter((f) => f.startsWith('-D') || f === '-target' || f === 'bpf');
  return execFileSync('clang', ['-E', '-P', ...defines, '-I', dir, '-I', RUNTIME_HEADER_DIR, src], { encoding: 'utf8' });
}

describe('generateProgram for a v1 controller hierarchy', () => {
  it('selects the controller by its enum cgroup_subsys_id name; the v1 check replaces the v2 one', () => {
    for (const mode of MODES) {
      const source = generateProgram(parsed(SEED), mode, { target: PIDS }).source;
      expect(source).toContain('#define KC_TARGET_V1_SUBSYS pids_cgrp_id');
      // The define must precede the runtime include, which picks the target check by it.
      expect(source.indexOf('#define KC_TARGET_V1_SUBSYS')).toBeLessThan(source.indexOf('#include "kc_runtime.bpf.h"'));
      // The v2 helpers read the default hierarchy, which on a v1 node holds every task in its root.
      expect(expanded(source, 'x64')).not.toContain('bpf_get_current_cgroup_id()');
    }
    expect(generateProgram(parsed(SEED), 'kprobe', { target: { kind: 'v1', controller: 'blkio' } }).source).toContain('#define KC_TARGET_V1_SUBSYS io_cgrp_id');
  });

  it('the default hierarchy keeps bpf_get_current_cgroup_id', () => {
    const source = generateProgram(parsed(SEED), 'trampoline').source;
    expect(source).not.toContain('KC_TARGET_V1_SUBSYS');
    expect(expanded(source, 'x64')).toContain('bpf_get_current_cgroup_id()');
  });

  it("compares a bio's blkcg only when it is in the targets' hierarchy (ids repeat across hierarchies)", () => {
    for (const target of [PIDS, { kind: 'default' } as const]) {
      const out = expanded(generateProgram(parsed({ failtype: 2 }), 'kprobe', { target }).source, 'x64');
      expect(out).toContain('if (!cg || !kc_in_target_hierarchy(cg))');
    }
  });

  for (const arch of ['x64', 'arm64']) {
    it(`${arch}: reads the task's cgroup of the controller through CO-RE, walks its parents, arguments through the libbpf macros`, () => {
      const out = expanded(generateProgram(parsed(SEED), 'kprobe', { target: PIDS }).source, arch);
      expect(out).toContain('bpf_get_current_task()');
      expect(out).toMatch(/__builtin_preserve_enum_value\(.*pids_cgrp_id/);
      expect(out).toMatch(/bool kc_v1_under_target\(struct cgroup \*cg\)/);
      expect(out).toMatch(/kc_targets/);
      expect(out).not.toContain('bpf_get_current_cgroup_id()');
      if (arch === 'arm64') expect(out).not.toMatch(/->(di|si|r9)\b/);
    });
  }
});
