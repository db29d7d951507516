import { describe, expect, it } from 'vitest';
import { BpfFaultEngine, functionsMissingFromKernel, planAttachMode, planForm, siteFactsFromKallsyms } from '../../src/bpf/engine.js';
import { generateProgram } from '../../src/bpf/generate.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../../src/bpf/types.js';
import { ast, oneFrame, param } from './fixtures.js';
import { BANANAS, parsed, SEED } from './fixtures.js';

const ALL = new Set(['should_failslab', 'should_fail_alloc_page', 'should_fail_bio', '__x64_sys_mount', 'd_alloc_parallel']);

describe('planAttachMode (auto)', () => {
  it('uses trampolines when BTF covers the site and every frame and the site is on the error-injection list', () => {
    expect(planAttachMode(parsed(SEED), { btfFunctions: ALL, errorInjection: new Set(['should_failslab']) })).toEqual({
      mode: 'trampoline',
      reason: 'BTF covers the site and every frame',
    });
    // debugfs unreadable: trust BTF (arm falls back to kprobes if the kernel refuses)
    expect(planAttachMode(parsed(SEED), { btfFunctions: ALL, errorInjection: null }).mode).toBe('trampoline');
  });

  it('falls back to kprobes without BTF, for a frame without a BTF entry, or a site off the list', () => {
    expect(planAttachMode(parsed(SEED), { btfFunctions: null, errorInjection: null }).mode).toBe('kprobe');
    const noFrame = planAttachMode(parsed(BANANAS), { btfFunctions: new Set(['should_failslab']), errorInjection: null });
    expect(noFrame).toEqual({ mode: 'kprobe', reason: 'no BTF entry for d_alloc_parallel (inlined or static)' });
    // 6.11+ kernels without CONFIG_FAILSLAB have no should_failslab at all
    expect(planAttachMode(parsed(SEED), { btfFunctions: new Set(['__x64_sys_mount']), errorInjection: null }).reason).toContain('should_failslab');
    expect(planAttachMode(parsed(SEED), { btfFunctions: ALL, errorInjection: new Set(['should_fail_bio']) }).mode).toBe('kprobe');
  });
});

describe('kernels without should_failslab / should_fail_alloc_page (>= 6.11): the syscall-entry form', () => {
  const k612 = { btfFunctions: new Set(['__x64_sys_mount', 'should_fail_bio', 'd_alloc_parallel']), errorInjection: new Set(['__x64_sys_mount', 'should_fail_bio']), siteMissing: true };

  it('fails the error-injectable outermost frame with ENOMEM and says so', () => {
    const plan = planForm(parsed(SEED), k612, true, 'trampoline');
    expect(plan.form).toBe('syscall-entry');
    expect(plan.mechanism).toBe(
      'syscall-entry form: __x64_sys_mount (fmod_ret) fails with ENOMEM at entry, because should_failslab is not in this kernel (not in BTF nor /proc/kallsyms; kernels from 6.11 build it only with CONFIG_FAILSLAB=y)',
    );
    expect(planAttachMode(parsed(SEED), k612, 'syscall-entry').mode).toBe('trampoline');
    // the kernel with the site keeps the site
    expect(planForm(parsed(SEED), { btfFunctions: ALL, errorInjection: null }, true, 'kprobe')).toEqual({ form: 'site', mechanism: 'should_failslab (kprobe + bpf_override_return)' });
  });

  it('names what is missing and what would work when it cannot be used', () => {
    expect(() => planForm(parsed(SEED), k612, false)).toThrow(/should_failslab is not in this kernel.*CONFIG_FAILSLAB=y.*syscall-entry form, which would fail __x64_sys_mount with ENOMEM at entry, is turned off \(--no-syscall-entry\)/);
    expect(() => planForm(parsed({ failtype: 1 }), { ...k612 }, true)).toThrow(/should_fail_alloc_page is not in this kernel.*CONFIG_FAIL_PAGE_ALLOC=y.*a call chain whose outermost frame is error-injectable/);
    expect(() => planForm(parsed(BANANAS), k612, true)).toThrow(/callchain\[0\]\.funcname: d_alloc_parallel is not on the error-injection list/);
    expect(() => planForm(parsed({ failtype: 2 }), k612, true)).toThrow(/failtype 2 cannot work on this kernel/);
  });

  it.each(['trampoline', 'kprobe'] as const)('%s: one program on the outermost frame, probability and times as at the site', (mode) => {
    const program = generateProgram(parsed({ ...SEED, probability: 50, times: 3 }), mode, { form: 'syscall-entry' });
    expect(program.hooks.map((h) => h.section)).toEqual([mode === 'trampoline' ? 'fmod_ret/__x64_sys_mount' : 'kprobe/__x64_sys_mount']);
    expect(program.site.form).toBe('syscall-entry');
    expect(program.source).toContain('if (!kc_roll() || !kc_claim())');
    expect(program.settings).toEqual({ probability: 50, times: 3, chainLength: 0 });
    expect(program.source).toContain(mode === 'trampoline' ? 'return -KC_ENOMEM;' : 'bpf_override_return(ctx, (unsigned long)(-KC_ENOMEM));');
    // the syscall's whole 64-bit result: an int -ENOMEM would reach user space as 4294967284
    expect(program.source).toContain(mode === 'trampoline' ? 'long kc_site(unsigned long long *ctx)' : 'int kc_site(struct pt_regs *ctx)');
    expect(program.source).not.toContain('kc_threads');
  });

  it('refuses a predicate on an inner frame, with the reason; checks one on the outermost frame', () => {
    const inner = parsed({ failtype: 0, callchain: [{ funcname: '__x64_sys_openat' }, { funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name', predicate: 'STRCMP(name->name, "bananas")' }] });
    expect(() => generateProgram(inner, 'trampoline', { form: 'syscall-entry' })).toThrow(
      /callchain\[1\]\.predicate: cannot be honoured by the syscall-entry form: __x64_sys_openat fails at entry, before d_alloc_parallel runs/,
    );
    const outer = parsed({ failtype: 0, callchain: [{ funcname: '__x64_sys_write', parameters: 'const struct pt_regs *regs', predicate: 'regs->di == 1' }] });
    const source = generateProgram(outer, 'trampoline', { form: 'syscall-entry' }).source;
    expect(source).toMatch(/if \(!\(.*kc_arg_regs.*\)\)\n\t\treturn 0;/);
    // the call's own arguments are read before the target check every caller would pay for
    const site = source.slice(source.indexOf('long kc_site('));
    expect(site.indexOf('kc_arg_regs')).toBeGreaterThan(site.indexOf('kc_budget_spent()'));
    expect(site.indexOf('kc_arg_regs')).toBeLessThan(site.indexOf('kc_task_targeted()'));
  });
});

describe('6.8-6.10: should_failslab called through its .constprop clone', () => {
  const kallsyms = [
    'ffffffff81234000 T should_failslab',
    'ffffffff81234560 t should_failslab.constprop.0',
    'ffffffff81234600 t should_failslab.cold',
    'ffffffff81300000 T __x64_sys_mount',
  ].join('\n');

  it('finds the clone beside the plain name', () => {
    expect(siteFactsFromKallsyms(kallsyms, 'should_failslab', new Set(['should_failslab']))).toEqual({ siteMissing: false, siteClones: ['should_failslab.constprop.0'] });
    expect(siteFactsFromKallsyms('ffffffff81234000 T should_failslab\n', 'should_failslab', null)).toEqual({ siteMissing: false, siteClones: [] });
    expect(siteFactsFromKallsyms('ffffffff81300000 T __x64_sys_mount\n', 'should_failslab', null)).toEqual({ siteMissing: true, siteClones: [] });
  });

  it('never hooks the plain name that would attach and not fire: the syscall-entry form, or a refusal naming the clone', () => {
    const facts = { btfFunctions: ALL, errorInjection: new Set(['should_failslab', '__x64_sys_mount']), ...siteFactsFromKallsyms(kallsyms, 'should_failslab', ALL) };
    const plan = planForm(parsed(SEED), facts, true, 'trampoline');
    expect(plan.form).toBe('syscall-entry');
    expect(plan.mechanism).toContain('this kernel calls should_failslab through its compiler clone should_failslab.constprop.0, which no hook on should_failslab sees');
    expect(() => planForm(parsed(SEED), facts, false)).toThrow(/compiler clone should_failslab\.constprop\.0.*--no-syscall-entry/);
  });
});

describe('BpfFaultEngine.arm', () => {
  it('a request C cannot express is an EngineError before anything reaches the compiler or the kernel', async () => {
    const seventh = param('seventh', 6, null, 0);
    const req = oneFrame(ast.bin('==', ast.param(seventh), ast.int(1n)), [seventh]);
    const error = await new BpfFaultEngine().arm(req, [1n], { attachMode: 'kprobe', cacheDir: '/nonexistent/never-created' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EngineError);
    // The BTF check comes first (or, without a BTF to check against, refuses any typed frame).
    expect((error as EngineError).reason).toBe('invalid-request');
    expect((error as EngineError).message).toMatch(/spec\.failKernRequest\.callchain\[0\]\.parameters: |need the kernel's BTF/);
  });
});

describe('functionsMissingFromKernel', () => {
  it('looks up BTF misses in kallsyms and reports only names the kernel has nowhere', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-kallsyms-'));
    const kallsyms = join(dir, 'kallsyms');
    writeFileSync(kallsyms, '0000000000000000 T should_fail_bio\n0000000000000000 t ext4_fill_super\t[ext4]\n0000000000000000 T __x64_sys_mount\n');
    expect(functionsMissingFromKernel(['__x64_sys_mount'], new Set(['__x64_sys_mount']), kallsyms)).toEqual([]);
    expect(functionsMissingFromKernel(['should_failslab', 'ext4_fill_super', 'should_fail_bio'], new Set(), kallsyms)).toEqual(['should_failslab']);
    expect(functionsMissingFromKernel(['x'], null, join(dir, 'absent'))).toBeNull();
  });
});
