// Fuzz over the predicate grammar against a real kernel BTF and the real clang: every frame that
// validation (the webhook's rules, then the BTF type check) accepts must compile in both attach
// modes, or be refused by the generator with a reason; a clang error is a bug. Frames that pass
// are compiled in batches (one program with several frames) and a failing batch is split to name
// the frame. KC_FUZZ_CASES and KC_FUZZ_SEED run more cases, or another seed, locally.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateKernelChaos } from '../../src/api/validate.js';
import { budgetProblem } from '../../src/api/predicate/budget.js';
import type { ParsedFailKernRequest, ParsedFrame, SitePredicate } from '../../src/api/predicate/ast.js';
import { BtfReader } from '../../src/bpf/btf-reader.js';
import { kernelBtf, requestTypeProblems } from '../../src/bpf/btf.js';
import { siteFor } from '../../src/bpf/sites.js';
import { compileProgram } from '../../src/bpf/compile.js';
import { generateProgram, GenerateError, type ProgramMode } from '../../src/bpf/generate.js';
import { EngineError } from '../../src/bpf/types.js';
import { KERNEL_BTF } from '../../src/bpf/vmlinux.js';
import { withSpec } from '../api/helpers.js';
import { fuzzCases, fuzzPool, type FuzzCase, type FuzzPool } from './predicate-fuzz.js';

const CACHE = resolve(import.meta.dirname, '..', '..', '.vmcache', 'engine-cache');
const BTF_PATH = process.env.KC_FUZZ_BTF ?? KERNEL_BTF;
const CASES = Number(process.env.KC_FUZZ_CASES ?? 200);
const SEED = Number(process.env.KC_FUZZ_SEED ?? 20261202);
const MODES: ProgramMode[] = ['trampoline', 'kprobe'];
/** Frames per compiled batch: one clang run checks this many accepted frames. */
const BATCH = 8;

function toolchainMissing(): string | null {
  if (!existsSync(BTF_PATH)) return `${BTF_PATH} is missing`;
  for (const tool of ['clang', 'bpftool']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return null;
}

type Verdict =
  | { kind: 'refused'; path: string; message: string }
  | { kind: 'generator-refused'; message: string }
  | { kind: 'accepted'; failtype: 0 | 1 | 2; frame: ParsedFrame | null; site: SitePredicate | null };

/** What kernelchaos does with one frame before clang: the webhook's validation, then the node's BTF check and the generator. */
function judge(c: FuzzCase): Verdict {
  const verdict = validateKernelChaos(withSpec({ failKernRequest: { failtype: c.failtype, times: 1, callchain: [c.frame] } }));
  if (!verdict.valid) {
    const e = verdict.errors[0];
    expect(e?.message ?? '').not.toMatch(/\n\s+at |internal error/i);
    return { kind: 'refused', path: e?.path ?? '', message: e?.message ?? '' };
  }
  // A kernel without the site (6.11+ without CONFIG_FAILSLAB) cannot run a site predicate: the engine refuses it (planForm).
  const site = siteFor(c.failtype).funcname;
  if (verdict.parsed.site && !kernelBtf(BTF_PATH)?.func(site)) return { kind: 'refused', path: 'site', message: `${site} is not in this kernel` };
  const types = requestTypeProblems(verdict.parsed, BTF_PATH);
  if (types.length > 0) return { kind: 'refused', path: types[0]?.path ?? '', message: types[0]?.message ?? '' };
  try {
    for (const mode of MODES) generateProgram(verdict.parsed, mode);
  } catch (e) {
    if (e instanceof GenerateError) return { kind: 'generator-refused', message: e.message };
    throw e;
  }
  return { kind: 'accepted', failtype: c.failtype, frame: verdict.parsed.callchain[0] ?? null, site: verdict.parsed.site ?? null };
}

function request(failtype: 0 | 1 | 2, frames: ParsedFrame[], site: SitePredicate | null): ParsedFailKernRequest {
  return { failtype, callchain: frames, ...(site ? { site } : {}), headers: [], probability: 0, times: 1 };
}

/** The clang error of a request, or null when it compiles in both modes. */
async function clangError(req: ParsedFailKernRequest): Promise<string | null> {
  for (const mode of MODES) {
    try {
      await compileProgram(generateProgram(req, mode).source, { cacheDir: CACHE, btfPath: BTF_PATH });
    } catch (e) {
      if (e instanceof EngineError) return `${mode}: ${e.message}\n${e.detail ?? ''}`;
      throw e;
    }
  }
  return null;
}

interface Accepted {
  index: number;
  failtype: 0 | 1 | 2;
  frame: ParsedFrame | null;
  site: SitePredicate | null;
}

/** Compiles the accepted cases in batches; returns the ones clang refuses, with its error. */
async function compileAll(accepted: readonly Accepted[]): Promise<{ index: number; error: string }[]> {
  const failures: { index: number; error: string }[] = [];
  for (const failtype of [0, 1, 2] as const) {
    const chain = accepted.filter((a) => a.failtype === failtype && a.frame);
    const sites = accepted.filter((a) => a.failtype === failtype && a.site);
    const batches: Accepted[][] = [];
    let current: Accepted[] = [];
    for (const a of chain) {
      const next = [...current, a];
      const costed = next.map((x, i) => ({ index: i, funcname: x.frame?.funcname ?? '', predicate: x.frame?.predicate ?? null }));
      if (current.length >= BATCH || budgetProblem(costed) !== null) {
        batches.push(current);
        current = [a];
      } else current = next;
    }
    if (current.length > 0) batches.push(current);
    // Each site predicate rides on a batch of chain frames (or alone).
    sites.forEach((s, i) => {
      if (batches[i]) batches[i]?.push(s);
      else batches.push([s]);
    });
    for (const batch of batches) {
      const frames = batch.flatMap((a) => (a.frame ? [a.frame] : []));
      const site = batch.find((a) => a.site)?.site ?? null;
      if ((await clangError(request(failtype, frames, site))) === null) continue;
      for (const a of batch) {
        const error = await clangError(request(failtype, a.frame ? [a.frame] : [], a.site));
        if (error !== null) failures.push({ index: a.index, error });
      }
    }
  }
  return failures;
}

const D_ALLOC = { funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name' };

/** Found by this fuzz (validation accepted them, clang refused the C): now refused with these reasons. */
const REGRESSIONS: { case: FuzzCase; refused: string }[] = [
  { case: { failtype: 1, frame: { funcname: 'kthread', parameters: 'void *_create', predicate: '((0356 * _create != 0) % 3)' } }, refused: "'*' needs numbers, but '_create' is a pointer" },
  { case: { failtype: 1, frame: { funcname: 'security_inode_create', parameters: 'struct inode *n, struct dentry *dentry, umode_t mode', predicate: '(n->i_sb << mode)' } }, refused: "'<<' needs numbers, but 'n->i_sb' is a pointer" },
  { case: { failtype: 2, frame: { funcname: 'vfs_read', parameters: 'struct file *file', predicate: '(~(2) * (0xecb4e0 ? file->f_flags : file))' } }, refused: "the two results of '? :' must both be numbers or both be pointers" },
  { case: { failtype: 0, frame: { ...D_ALLOC, predicate: '-parent == 0' } }, refused: "'-' needs a number, but 'parent' is a pointer" },
  { case: { failtype: 0, frame: { ...D_ALLOC, predicate: 'name->name == 5' } }, refused: "'==' compares a pointer with an expression, a number" },
  // A site predicate was not checked against BTF at all: a member the kernel lacks reached clang.
  { case: { failtype: 2, frame: { predicate: 'bio->no_such_member == 1' } }, refused: 'struct bio has no member' },
  { case: { failtype: 2, frame: { predicate: 'bio * 2' } }, refused: "'*' needs numbers, but 'bio' is a pointer" },
  // Refused by the generator (after the webhook admitted it), now by validation.
  { case: { failtype: 0, frame: { ...D_ALLOC, predicate: 'name->len / 0' } }, refused: "'/ 0' divides by zero" },
];

const missing = toolchainMissing();

describe.skipIf(missing !== null)(missing ? `predicate fuzz (skipped: ${missing})` : `predicate fuzz against ${BTF_PATH} and clang`, () => {
  let pool: FuzzPool;
  beforeAll(() => {
    pool = fuzzPool(new BtfReader(readFileSync(BTF_PATH)));
  });

  it('the same seed generates the same cases', () => {
    expect(fuzzCases(pool, 7, 20)).toEqual(fuzzCases(pool, 7, 20));
  });

  it.each(REGRESSIONS)('refuses $case.frame.predicate before clang: $refused', ({ case: c, refused }) => {
    const verdict = judge(c);
    expect(verdict.kind).toBe('refused');
    expect(verdict.kind === 'refused' ? verdict.message : '').toContain(refused);
  });

  it('a typedef-named struct pointer (wait_queue_head_t *wq) is read like a struct pointer: accepted, and it compiles', async () => {
    // The generator refused it after validation had admitted it.
    const verdict = judge({ failtype: 0, frame: { ...D_ALLOC, parameters: `${D_ALLOC.parameters}, wait_queue_head_t *wq`, predicate: 'wq->head.next != 0 && name->len > 1' } });
    expect(verdict.kind).toBe('accepted');
    if (verdict.kind === 'accepted' && verdict.frame) expect(await clangError(request(0, [verdict.frame], null))).toBeNull();
  }, 120_000);

  it(`${CASES} generated frames: what validation accepts compiles in both modes, everything else is refused with a reason`, async () => {
    const cases = fuzzCases(pool, SEED, CASES);
    const verdicts = cases.map(judge);
    const accepted: Accepted[] = verdicts.flatMap((v, index) => (v.kind === 'accepted' ? [{ index, failtype: v.failtype, frame: v.frame, site: v.site }] : []));
    const failures = await compileAll(accepted);
    const report = failures.map((f) => `${JSON.stringify(cases[f.index])}\n  ${f.error.split('\n').slice(0, 6).join('\n  ')}`);
    expect(report, `clang errors for accepted frames (seed ${SEED})`).toEqual([]);
    // The run means something only when a fair share of the frames gets through to clang.
    expect(accepted.length).toBeGreaterThan(cases.length / 5);
    for (const v of verdicts) if (v.kind === 'refused') expect(v.message.length).toBeGreaterThan(10);
    if (process.env.KC_FUZZ_VERBOSE) {
      const tally = new Map<string, number>();
      for (const v of verdicts) tally.set(v.kind, (tally.get(v.kind) ?? 0) + 1);
      console.log(`seed ${SEED}: ${[...tally].map(([k, n]) => `${k} ${n}`).join(', ')}`);
      for (const v of verdicts) if (v.kind === 'generator-refused') console.log(`generator: ${v.message}`);
    }
  }, 600_000);
});
