// Proves the generated C builds: every spec in both modes, with clang, against a vmlinux.h made
// from this machine's kernel BTF.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileCacheKey, compileProgram, trimCompilerOutput } from '../../src/bpf/compile.js';
import { generateProgram, type ProgramMode } from '../../src/bpf/generate.js';
import { EngineError } from '../../src/bpf/types.js';
import { ensureVmlinuxHeader, gfpNofailFromHeader, KERNEL_BTF } from '../../src/bpf/vmlinux.js';
import { ast, BANANAS, COMPILE_CASES, oneFrame, param, parsed } from './fixtures.js';

const CACHE = resolve(import.meta.dirname, '..', '..', '.vmcache', 'engine-cache');

function toolchainMissing(): string | null {
  if (!existsSync(KERNEL_BTF)) return `${KERNEL_BTF} is missing`;
  for (const tool of ['clang', 'bpftool', 'llvm-objdump']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return null;
}
const missing = toolchainMissing();
const MODES: ProgramMode[] = ['trampoline', 'kprobe'];

/** Section names in the object, from llvm-objdump. */
function sections(objectPath: string): string[] {
  const out = spawnSync('llvm-objdump', ['-h', objectPath], { encoding: 'utf8' }).stdout;
  return [...out.matchAll(/^\s*\d+\s+(\S+)/gm)].map((m) => m[1] ?? '');
}

describe.skipIf(missing !== null)(missing ? `compile (skipped: ${missing})` : 'compile with clang', () => {
  it('makes vmlinux.h from the kernel BTF once and reads ___GFP_NOFAIL from it when present', async () => {
    const header = await ensureVmlinuxHeader(CACHE);
    const text = readFileSync(join(header.includeDir, 'vmlinux.h'), 'utf8');
    expect(text).toContain('struct task_struct {');
    expect(header.gfpNofail === null || header.gfpNofail === 0x8000).toBe(true);
    expect(gfpNofailFromHeader('enum {\n\t___GFP_NOFAIL_BIT = 15,\n')).toBe(0x8000);
    expect(gfpNofailFromHeader('#define ___GFP_NOFAIL 0x8000u')).toBeNull();
  });

  for (const [name, spec] of Object.entries(COMPILE_CASES)) {
    for (const mode of MODES) {
      it(`${name} (${mode}) compiles, with one section per hook`, async () => {
        const program = generateProgram(parsed(spec), mode);
        const compiled = await compileProgram(program.source, { cacheDir: CACHE });
        const found = sections(compiled.objectPath);
        for (const hook of program.hooks) expect(found).toContain(hook.section);
        expect(found).toContain('.maps');
      }, 60_000);
    }
  }

  // CO-RE fixes up the controller's enum cgroup_subsys_id value for the running kernel.
  for (const failtype of [0, 2] as const) {
    for (const mode of MODES) {
      it(`failtype ${failtype} (${mode}) for a v1 pids hierarchy compiles`, async () => {
        const program = generateProgram(parsed({ failtype, callchain: [{ funcname: '__x64_sys_mount' }] }), mode, { target: { kind: 'v1', controller: 'pids' } });
        const compiled = await compileProgram(program.source, { cacheDir: CACHE });
        const found = sections(compiled.objectPath);
        for (const hook of program.hooks) expect(found).toContain(hook.section);
        expect(found).toContain('.BTF.ext');
      }, 60_000);
    }
  }

  it('the empty-site variant compiles', async () => {
    const program = generateProgram(parsed(BANANAS), 'trampoline', { variant: 'empty-site' });
    const compiled = await compileProgram(program.source, { cacheDir: CACHE });
    expect(sections(compiled.objectPath)).toContain('fmod_ret/should_failslab');
  });

  it('compiles a chain shape once: specs that differ only in probability and times share the object', async () => {
    const a = generateProgram(parsed({ ...BANANAS, probability: 10, times: 11 }), 'kprobe');
    const b = generateProgram(parsed({ ...BANANAS, probability: 75, times: 2 }), 'kprobe');
    expect(b.source).toBe(a.source);
    const first = await compileProgram(a.source, { cacheDir: CACHE });
    const second = await compileProgram(b.source, { cacheDir: CACHE });
    expect(second).toEqual({ ...first, cached: true });
    // the settings travel beside the object, not in it
    expect([a.settings, b.settings]).toEqual([
      { probability: 10, times: 11, chainLength: 1 },
      { probability: 75, times: 2, chainLength: 1 },
    ]);
    const otherShape = generateProgram(parsed({ ...BANANAS, callchain: [{ funcname: '__x64_sys_openat' }, ...(BANANAS.callchain ?? [])] }), 'kprobe');
    expect((await compileProgram(otherShape.source, { cacheDir: CACHE })).key).not.toBe(first.key);
  }, 60_000);

  it('a predicate on a member the kernel does not have is a compile-failed EngineError naming it', async () => {
    const p = param('name', 1, 'qstr');
    const program = generateProgram(oneFrame(ast.bin('==', ast.arrow(ast.param(p), 'no_such_member'), ast.int(1n)), [p]), 'trampoline');
    const error = await compileProgram(program.source, { cacheDir: CACHE }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EngineError);
    const e = error as EngineError;
    expect(e.reason).toBe('compile-failed');
    expect(e.detail).toMatch(/no member named 'no_such_member' in 'struct qstr'/);
    expect(e.detail?.split('\n')[0]).toMatch(/error:/);
  }, 60_000);
});

describe('compileCacheKey', () => {
  const inputs = { source: 'int x;', headersHash: 'h', btfHash: 'b', clang: 'c', flags: ['-O2'] };
  it('is the same for two specs that differ only in probability and times (the same C), and changes with headers, BTF, clang, flags', () => {
    const a = generateProgram(parsed({ ...BANANAS, probability: 1, times: 1 }), 'trampoline').source;
    const b = generateProgram(parsed({ ...BANANAS, probability: 99, times: 4294967295 }), 'trampoline').source;
    expect(compileCacheKey({ ...inputs, source: a })).toBe(compileCacheKey({ ...inputs, source: b }));
    const key = compileCacheKey(inputs);
    for (const changed of [{ source: 'int y;' }, { headersHash: 'h2' }, { btfHash: 'b2' }, { clang: 'c2' }, { flags: ['-O1'] }]) {
      expect(compileCacheKey({ ...inputs, ...changed })).not.toBe(key);
    }
  });
});

describe('trimCompilerOutput', () => {
  it('starts at the first error and drops include chains', () => {
    const stderr = 'In file included from x.c:1:\nwarning: w\nx.c:5:3: error: boom\n  5 | y\n';
    expect(trimCompilerOutput(stderr)).toBe('x.c:5:3: error: boom\n  5 | y');
  });
});
