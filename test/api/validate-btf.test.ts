// `kernelchaos validate --btf FILE`: the kernel-read manifests of issue 11 are refused offline
// against the test kernel's BTF, with the function's real prototype in the message.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runValidate } from '../../src/cli/validate.js';
import { KERNEL_READ_REQUESTS, MMAP_PROTOTYPE } from '../fixtures/kernel-read.js';
import { testKernelBtf, type TestBtf } from '../bpf/kernel-btf.js';
import { withSpec } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kc-validate-btf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let btf: TestBtf | { skip: string };
beforeAll(async () => {
  btf = await testKernelBtf();
}, 300_000);

async function validate(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runValidate(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

describe('kernelchaos validate --btf', () => {
  it('refuses both kernel-read manifests with the real prototype, and accepts a real chain', async (ctx) => {
    if ('skip' in btf) return ctx.skip(btf.skip);
    const path = join(dir, 'read.yaml');
    writeFileSync(path, [
      stringify(withSpec({ failKernRequest: KERNEL_READ_REQUESTS.qstr })),
      stringify(withSpec({ failKernRequest: KERNEL_READ_REQUESTS.strncmp })),
      stringify(withSpec({ failKernRequest: { failtype: 0, times: 1, callchain: [{ funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name', predicate: 'STRCMP(name->name, "bananas")' }] } })),
    ].join('---\n'));
    // Without --btf both pass: the parsers alone cannot know the prototype.
    expect((await validate(['-f', path])).code).toBe(0);
    const r = await validate(['-f', path, '--btf', btf.path]);
    expect(r.code).toBe(1);
    const lines = r.out.trim().split('\n');
    expect(lines.filter((l) => l.includes(`spec.failKernRequest.callchain[0].parameters: parameter 1 'addr' is declared`) && l.includes(MMAP_PROTOTYPE))).toHaveLength(2);
    expect(lines.at(-1)).toMatch(/^1 valid, 2 invalid/);
  });

  it('exits 2 for a file that is not BTF', async () => {
    const path = join(dir, 'not-btf');
    writeFileSync(path, 'hello');
    const r = await validate(['-f', path, '--btf', path]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('not a readable BTF file');
  });
});
