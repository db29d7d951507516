// clang runs under a timeout and a memory cap, one at a time, and a request over the predicate
// budget is refused at validation with its cost (issue 11's 16 x 13 STRCMP manifest).
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileProgram } from '../../src/bpf/compile.js';
import { generateProgram } from '../../src/bpf/generate.js';
import { EngineError } from '../../src/bpf/types.js';
import { KERNEL_BTF } from '../../src/bpf/vmlinux.js';
import { validateKernelChaos } from '../../src/api/validate.js';
import { MAX_PROGRAM_COST, MAX_REQUEST_COST, predicateCost, STRCMP_COST } from '../../src/api/predicate/budget.js';
import { parseParameters, parsePredicate } from '../../src/api/predicate/index.js';
import { withSpec } from '../api/helpers.js';
import { BANANAS, parsed } from './fixtures.js';

const CACHE = resolve(import.meta.dirname, '..', '..', '.vmcache', 'engine-cache');
const toolchain = existsSync(KERNEL_BTF) && spawnSync('sh', ['-c', 'command -v clang && command -v bpftool']).status === 0;

/** A source no cache has seen, so clang really runs. */
function freshSource(): string {
  return `${generateProgram(parsed(BANANAS), 'kprobe').source}\n/* ${randomUUID()} */\n`;
}

async function failure(p: Promise<unknown>): Promise<EngineError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(EngineError);
  return e as EngineError;
}

describe.skipIf(!toolchain)('clang limits', () => {
  it('stops clang at its timeout and says so', async () => {
    const e = await failure(compileProgram(freshSource(), { cacheDir: CACHE, timeoutMs: 50 }));
    expect(e.message).toMatch(/clang did not finish within 0 s and was stopped/);
  }, 60_000);

  it('caps clang memory and says so', async () => {
    const e = await failure(compileProgram(freshSource(), { cacheDir: CACHE, memoryBytes: 48 * 1024 * 1024 }));
    expect(e.message).toMatch(/clang ran out of its 48 MiB memory cap/);
  }, 60_000);

  it('compiles within the default caps, one compile at a time', async () => {
    const results = await Promise.all([compileProgram(freshSource(), { cacheDir: CACHE }), compileProgram(freshSource(), { cacheDir: CACHE })]);
    expect(results.map((r) => r.cached)).toEqual([false, false]);
  }, 120_000);
});

const literal = 'a'.repeat(255);
const thirteen = Array.from({ length: 13 }, (_, i) => `STRCMP(name->name, "${literal.slice(0, 254)}${String.fromCharCode(97 + i)}")`).join(' || ');

describe('predicate budget at validation', () => {
  it('refuses the 16-frame x 13 STRCMP of 255-byte literals manifest with its cost', () => {
    const callchain = Array.from({ length: 16 }, (_, i) => ({ funcname: `fn_${i}`, parameters: 'const struct qstr *name', predicate: thirteen }));
    const v = validateKernelChaos(withSpec({ failKernRequest: { failtype: 0, callchain } }));
    expect(v.valid).toBe(false);
    const message = v.valid ? '' : v.errors.map((e) => `${e.path}: ${e.message}`).join('\n');
    // Each frame is one program under its budget; together they are over the request's.
    expect(message).toMatch(new RegExp(`^spec\\.failKernRequest\\.callchain: the predicates cost \\d+ .* over 16 frames; a request may cost at most ${MAX_REQUEST_COST}`));
  });

  it('refuses the 16 frames on one function (one program) with its cost', () => {
    const three = thirteen.split(' || ').slice(0, 3).join(' || ');
    const callchain = Array.from({ length: 16 }, () => ({ funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name', predicate: three }));
    const v = validateKernelChaos(withSpec({ failKernRequest: { failtype: 0, callchain } }));
    const message = v.valid ? '' : v.errors.map((e) => e.message).join('\n');
    expect(message).toMatch(new RegExp(`frames 0, 1, .*15 \\(all on d_alloc_parallel, one BPF program\\) cost \\d+ .*at most ${MAX_PROGRAM_COST}`));
    // One 255-byte STRCMP alone is far under it.
    expect(predicateCost(parsePredicate(`STRCMP(name->name, "${literal}")`, parseParameters('const struct qstr *name')))).toBe(3 + STRCMP_COST + 256);
  });

  it('admits real predicates well inside the budget', () => {
    expect(validateKernelChaos(withSpec({ failKernRequest: { ...BANANAS, times: 1 } })).valid).toBe(true);
    const callchain = Array.from({ length: 4 }, (_, i) => ({ funcname: `fn_${i}`, parameters: 'const struct qstr *name', predicate: thirteen }));
    expect(validateKernelChaos(withSpec({ failKernRequest: { failtype: 0, times: 1, callchain } })).valid).toBe(true);
  });
});
