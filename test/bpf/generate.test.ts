import { describe, expect, it } from 'vitest';
import { ATTACH_ORDER, generateProgram, GenerateError, type ProgramMode } from '../../src/bpf/generate.js';
import { MAP_NAMES } from '../../src/bpf/layout.js';
import { inlineRuntimeHeaders } from '../../src/bpf/runtime-headers.js';
import { ast, BANANAS, COMPILE_CASES, oneFrame, param, parsed, SEED } from './fixtures.js';

const MODES: ProgramMode[] = ['trampoline', 'kprobe'];

/** The body of one program, from its SEC line to the closing brace. */
function programBody(source: string, name: string): string {
  const start = source.indexOf(`int ${name}(`);
  expect(start, `program ${name} exists`).toBeGreaterThan(0);
  const end = source.indexOf('\n}\n', start);
  return source.slice(start, end);
}

/** The generated file with kernelchaos's headers pasted in: the whole unit clang compiles. */
function unit(source: string): string {
  return inlineRuntimeHeaders(source);
}

/** The body of a static helper of the headers, from its signature to the closing brace. */
function helperBody(source: string, name: string): string {
  const text = unit(source);
  const start = text.search(new RegExp(`static __always_inline [\\w ]+?\\*?${name}\\(`));
  expect(start, `helper ${name} exists`).toBeGreaterThan(0);
  return text.slice(start, text.indexOf('\n}\n', start));
}

/** Asserts that the markers occur in this order. */
function expectOrder(text: string, markers: string[]): void {
  const positions = markers.map((m) => {
    const at = text.indexOf(m);
    expect(at, `'${m}' present`).toBeGreaterThanOrEqual(0);
    return at;
  });
  expect(positions).toEqual([...positions].sort((a, b) => a - b));
}

describe('generateProgram: the injection site', () => {
  it('checks cgroup, interrupt context, __GFP_NOFAIL, chain, probability, times, in that order', () => {
    const req = parsed({ ...SEED, probability: 10, times: 3 });
    const source = generateProgram(req, 'trampoline').source;
    expectOrder(programBody(source, 'kc_site'), [
      'if (kc_budget_spent())',
      'if (kc_chain_none_complete())',
      'kc_task_targeted()',
      'kc_in_task()',
      '& KC_GFP_NOFAIL',
      'kc_count(false)',
      'if (!kc_chain_holds(KC_FRAME_ADDR))',
      'if (!kc_roll() || !kc_claim())',
      'kc_count(true)',
      'return -KC_ENOMEM',
    ]);
    expect(helperBody(source, 'kc_roll')).toContain('bpf_get_prandom_u32() % 100 < p');
    expect(helperBody(source, 'kc_claim')).toContain('return __sync_fetch_and_add(&claims->claimed, 1) < times;');
  });

  it.each([
    [0, 'should_failslab', 'return -KC_ENOMEM', 'ctx[1] & KC_GFP_NOFAIL'],
    [1, 'should_fail_alloc_page', 'return 1;', 'ctx[0] & KC_GFP_NOFAIL'],
    [2, 'should_fail_bio', 'return -KC_EIO', null],
  ] as const)('failtype %i hooks %s with fmod_ret and fails it', (failtype, fn, ret, nofail) => {
    const program = generateProgram(parsed({ failtype }), 'trampoline');
    expect(program.source).toContain(`SEC("fmod_ret/${fn}")`);
    const site = programBody(program.source, 'kc_site');
    expect(site).toContain(ret);
    if (nofail) expect(site).toContain(nofail);
    else expect(site).not.toContain('KC_GFP_NOFAIL');
    expect(program.hooks).toEqual([{ program: 'kc_site', section: `fmod_ret/${fn}`, kind: 'fmod_ret', funcname: fn, role: 'site' }]);
  });

  it("evaluates a site predicate (a last frame without funcname) on the site's own arguments, after the chain, before probability", () => {
    for (const mode of MODES) {
      const req = parsed({ failtype: 0, probability: 10, callchain: [{ funcname: '__x64_sys_mount' }, { predicate: 's->size >= 256' }] });
      const program = generateProgram(req, mode);
      expect(program.hooks.map((h) => h.funcname).sort()).toEqual(['__x64_sys_mount', '__x64_sys_mount', 'sched_process_exit', 'should_failslab']);
      const site = programBody(program.source, 'kc_site');
      expectOrder(site, [
        'if (!kc_chain_holds(KC_FRAME_ADDR))',
        `struct kmem_cache * kc_arg_s = (struct kmem_cache *)${mode === 'trampoline' ? 'ctx[0]' : 'PT_REGS_PARM1(ctx)'};`,
        'if (!((BPF_CORE_READ(kc_arg_s, size) >= 256)))',
        'if (!kc_roll() || !kc_claim())',
        'kc_count(true)',
      ]);
    }
  });

  it('kprobe mode overrides the return value with bpf_override_return', () => {
    const program = generateProgram(parsed({ failtype: 1, callchain: [{ funcname: '__x64_sys_write' }] }), 'kprobe');
    expect(program.source).toContain('SEC("kprobe/should_fail_alloc_page")');
    expect(programBody(program.source, 'kc_site')).toContain('bpf_override_return(ctx, (unsigned long)(1));');
    expect(program.source).toContain('SEC("kprobe/__x64_sys_write")');
    expect(program.source).toContain('SEC("kretprobe/__x64_sys_write")');
    expect(program.source).toContain('int kc_site(struct pt_regs *ctx)');
    expect(program.source).not.toMatch(/fentry|fexit|fmod_ret/);
    expect(programBody(program.source, 'kc_site')).toContain('PT_REGS_PARM1(ctx) & KC_GFP_NOFAIL');
  });

  it('attributes bios by their own cgroup as well as the current task', () => {
    const source = generateProgram(parsed({ failtype: 2 }), 'trampoline').source;
    const site = programBody(source, 'kc_site');
    expect(site).toContain('if (!kc_task_targeted() && !kc_bio_targeted(bio))');
    expect(unit(source)).toContain('BPF_CORE_READ(bio, bi_blkg, blkcg, css.cgroup)');
    expect(unit(source)).toContain('bpf_core_field_exists(bio->bi_blkg)');
  });

  it('omits the chain when the spec has none; probability 0 and 100 and times 0 ask for nothing', () => {
    const program = generateProgram(parsed({ failtype: 0 }), 'trampoline');
    expect(programBody(program.source, 'kc_site')).not.toContain('kc_chain');
    expect(program.maps).not.toContain(MAP_NAMES.threads);
    expect(program.source).toContain('#define KC_CHAIN 0');
    expect(unit(program.source)).toMatch(/#if KC_CHAIN\n[^]*kc_threads SEC\(".maps"\)[^]*#endif \/\* KC_CHAIN \*\//);
    // probability 0 and 100 are "every call", times 0 is "no limit": neither rolls nor claims
    expect(helperBody(program.source, 'kc_roll')).toContain('return p == 0 || p >= 100 ||');
    expect(helperBody(program.source, 'kc_claim')).toMatch(/if \(!times\)\n\t\treturn true;/);
  });

  it('keeps probability, times and the chain length out of the source: the same C and settings that differ', () => {
    const a = generateProgram(parsed({ ...SEED, probability: 37, times: 4294967295 }), 'kprobe');
    const b = generateProgram(parsed({ ...SEED, probability: 5, times: 2 }), 'kprobe');
    expect(a.source).toBe(b.source);
    expect(a.settings).toEqual({ probability: 37, times: 4294967295, chainLength: 1 });
    expect(b.settings).toEqual({ probability: 5, times: 2, chainLength: 1 });
    expect(a.source).not.toMatch(/\b37\b|4294967295/);
    // read from the const volatile settings the loader writes before load
    expect(unit(a.source)).toContain('const volatile struct kc_settings kc_settings SEC(KC_SETTINGS_SECTION) = {};');
  });

  it('never puts a frame predicate into the site (bpfki pasted the last frame\'s predicate there)', () => {
    const program = generateProgram(parsed(BANANAS), 'trampoline');
    const site = programBody(program.source, 'kc_site');
    expect(site).not.toContain('kc_streq');
    expect(site).not.toContain('kc_arg_');
    expect(programBody(program.source, 'kc_enter_0')).toContain('kc_streq_0_0_0(');
  });
});

describe('generateProgram: the call chain', () => {
  it('hooks every frame with an entry and an exit program, site first in the hook list', () => {
    const req = parsed(COMPILE_CASES.deepChain!);
    const program = generateProgram(req, 'trampoline');
    expect(program.hooks.map((h) => `${h.kind}/${h.funcname}:${h.program}`)).toEqual([
      'fmod_ret/should_failslab:kc_site',
      'fentry/__x64_sys_openat:kc_enter_0',
      'fexit/__x64_sys_openat:kc_exit_0',
      'fentry/path_openat:kc_enter_1',
      'fexit/path_openat:kc_exit_1',
      'fentry/d_alloc_parallel:kc_enter_2',
      'fexit/d_alloc_parallel:kc_exit_2',
      'raw_tp/sched_process_exit:kc_thread_exit',
    ]);
    expect(program.functions).toEqual(['should_failslab', '__x64_sys_openat', 'path_openat', 'd_alloc_parallel']);
    expect(program.settings.chainLength).toBe(3);
    expect(program.source).toContain('#define KC_CHAIN 1');
    expect(program.maps).toContain(MAP_NAMES.threads);
  });

  it('a frame becomes active only when every outer frame is (active == its index) and its predicate holds', () => {
    const source = generateProgram(parsed(COMPILE_CASES.deepChain!), 'trampoline').source;
    const enter2 = programBody(source, 'kc_enter_2');
    expectOrder(enter2, ['kc_task_targeted()', 'kc_frame_begin(tid, here, &active)', 'if (active == 2) {', 'mark = (kc_streq_2_0_0(', 'kc_frame_mark(tid, st, active, here, mark);']);
    expectOrder(helperBody(source, 'kc_frame_mark'), ['if (!mark) {', 'st->sp[active & (KC_MAX_FRAMES - 1)] = here;', 'st->active = active + 1;']);
    expect(programBody(source, 'kc_enter_0')).toContain('if (active == 0) {\n\t\t/* frame 0 */\n\t\tmark = true;');
  });

  it('a function listed twice gets one program pair that handles both frames', () => {
    const program = generateProgram(parsed(COMPILE_CASES.repeatedFrame!), 'kprobe');
    expect(program.hooks.filter((h) => h.funcname === 'vfs_write').map((h) => h.program)).toEqual(['kc_enter_0', 'kc_exit_0']);
    const enter = programBody(program.source, 'kc_enter_0');
    expect(enter).toContain('if (active == 0) {');
    expect(enter).toContain('else if (active == 2) {');
    // the third frame's predicate reads `count`, the third argument, from the register
    expect(enter).toContain('size_t kc_arg_count = (size_t)PT_REGS_PARM3(ctx);');
    expect(enter).toContain('((__u64)kc_arg_count % (__u64)2)');
  });

  it('gates the site on a count of target threads whose whole chain is active, kept by the frame programs', () => {
    const source = generateProgram(parsed(SEED), 'kprobe').source;
    // the gates are the site's first statements: no helper call, no hashing before them
    expect(programBody(source, 'kc_site')).toMatch(/\{\n\t\/\* 0\. [^\n]*\*\/\n\tif \(kc_budget_spent\(\)\)\n\t\treturn 0;\n\t\/\* 0b\. [^\n]*\*\/\n\tif \(kc_chain_none_complete\(\)\)\n\t\treturn 0;/);
    // `times` used up is the other global gate: one array load, before any per-task work
    expect(helperBody(source, 'kc_budget_spent')).toMatch(/if \(!times\)\n\t\treturn false;\n\tclaims = bpf_map_lookup_elem\(&kc_claims, &zero\);\n\treturn !claims \|\| claims->claimed >= times;/);
    expect(helperBody(source, 'kc_chain_none_complete')).toContain('return !chain || !chain->complete;');
    expect(helperBody(source, 'kc_frame_mark')).toContain('if (active + 1 == kc_settings.chain_length)\n\t\tkc_chain_complete(1);');
    expect(helperBody(source, 'kc_heal')).toContain('if (active == kc_settings.chain_length)\n\t\t\tkc_chain_complete(-1);');
    // without a chain there is nothing to gate on
    expect(generateProgram(parsed({ failtype: 0 }), 'kprobe').source).not.toContain('kc_chain');
  });

  it('keeps chain state per thread (pid_tgid) in a HASH that never evicts live state, popped on exit', () => {
    const source = generateProgram(parsed(SEED), 'trampoline').source;
    expect(source).toContain('bpf_get_current_pid_tgid()');
    expect(unit(source)).toMatch(/BPF_MAP_TYPE_HASH\);\n\t__uint\(max_entries, KC_MAX_THREADS\);[^}]*struct kc_thread/);
    expect(unit(source)).not.toContain('LRU_HASH);\n\t__uint(max_entries, KC_MAX_THREADS)');
    expect(programBody(source, 'kc_exit_0')).toContain('kc_chain_leave(KC_EXIT_FRAME_ADDR);');
  });

  it.each(MODES)('%s: every program heals the state by stack address before using it', (mode) => {
    const source = generateProgram(parsed(COMPILE_CASES.deepChain!), mode).source;
    // a recorded call at or below the current stack address has returned (its exit was missed)
    expect(helperBody(source, 'kc_heal')).toContain('if (st->sp[(active - 1) & (KC_MAX_FRAMES - 1)] > here)\n\t\t\tbreak;');
    expectOrder(programBody(source, 'kc_enter_1'), ['__u64 here = KC_FRAME_ADDR;', 'kc_frame_begin(tid, here, &active);', 'kc_frame_mark(tid, st, active, here, mark);']);
    expectOrder(helperBody(source, 'kc_frame_begin'), ['kc_heal(st, here);', '*active = st ? st->active : 0;']);
    expectOrder(helperBody(source, 'kc_chain_holds'), ['kc_heal(st, here);', 'if (st->active != kc_settings.chain_length)', 'kc_drop_unhooked(st);']);
    expect(programBody(source, 'kc_site')).toContain('kc_chain_holds(KC_FRAME_ADDR)');
    expect(source).toContain(mode === 'trampoline' ? '#define KC_ATTACH_TRAMPOLINE 1' : '#define KC_ATTACH_KPROBE 1');
    expect(unit(source)).toContain('#ifdef KC_ATTACH_TRAMPOLINE\n/* fentry, fexit and fmod_ret get ctx on their trampoline\'s stack frame');
  });

  it('kprobe mode: at the site, a frame whose return slot no longer holds the kretprobe trampoline is dropped with every frame after it', () => {
    const source = generateProgram(parsed(COMPILE_CASES.deepChain!), 'kprobe').source;
    const kprobeHalf = unit(source).split('#ifdef KC_ATTACH_KPROBE\n/*\n * A kretprobe that had no free instance')[1] ?? '';
    const drop = kprobeHalf.slice(0, kprobeHalf.indexOf('#else'));
    expect(drop).toContain('if (!trampoline || !active || active > KC_MAX_FRAMES)\n\t\treturn;');
    expect(drop).toContain('bpf_probe_read_kernel(&ret, sizeof(ret), (const void *)st->sp[i & (KC_MAX_FRAMES - 1)]) == 0 && ret == trampoline');
    expect(drop).toContain('st->active = i;');
  });

  it('a thread that exits inside a frame is forgotten (sched_process_exit), and only chains get that hook', () => {
    const program = generateProgram(parsed(SEED), 'kprobe');
    expect(program.hooks.find((h) => h.role === 'thread-exit')).toEqual({
      program: 'kc_thread_exit',
      section: 'raw_tp/sched_process_exit',
      kind: 'raw_tp',
      funcname: 'sched_process_exit',
      role: 'thread-exit',
    });
    expect(programBody(program.source, 'kc_thread_exit')).toContain('kc_thread_gone();');
    expect(program.source).toContain('int kc_thread_exit(void *ctx)');
    expect(generateProgram(parsed({ failtype: 0 }), 'kprobe').hooks.map((h) => h.role)).toEqual(['site']);
  });

  it('attach order: exits before entries, the site last', () => {
    expect(ATTACH_ORDER).toEqual(['frame-exit', 'thread-exit', 'frame-entry', 'site']);
  });
});

describe('generateProgram: predicates are re-emitted from the AST', () => {
  it('reads members with BPF_CORE_READ and compares strings byte by byte', () => {
    const source = generateProgram(parsed(BANANAS), 'trampoline').source;
    expect(source).toContain('const struct qstr * kc_arg_name = (const struct qstr *)ctx[1];');
    expect(source).toContain('KC_STR_ADDR(kc_holder, name)');
    // "bananas" and its NUL: 8 bytes, each an immediate
    const bytes = [...'bananas'].map((c) => c.charCodeAt(0)).concat(0);
    bytes.forEach((b, i) => expect(source).toContain(`if (buf[${i}] != (char)${b})`));
    expect(source).not.toContain('buf[8] !=');
    expect(source).toContain('char buf[9] = {};');
  });

  it('escapes nothing because string literals never appear as text', () => {
    const source = generateProgram(parsed(COMPILE_CASES.deepChain!), 'kprobe').source;
    // the literal a"b\c*/d: quote, backslash and a comment terminator
    const code = source.replace(/^\/\/.*$/gm, '');
    expect(code).not.toContain('a"b');
    expect(code).not.toContain('*/d');
    expect(source).not.toMatch(/\*\/d/);
    const literal = [...Buffer.from('a"b\\c*/d')];
    literal.forEach((b, i) => expect(source).toContain(`if (buf[${i}] != (char)${b})`));
    // the header comment shows it hex-escaped
    expect(source).toContain('STRCMP(name->name, "a\\x22b\\x5cc\\x2a\\x2fd")');
  });

  it('STRNCMP compares at most n bytes; a shorter n than the literal is a prefix match', () => {
    const p = param('name', 1, 'qstr');
    const source = generateProgram(oneFrame(ast.strcmp(ast.arrow(ast.param(p), 'name'), 'bananas', 3), [p]), 'trampoline').source;
    expect(source).toContain('char buf[4] = {};');
    expect(source).toContain('if (buf[2] != (char)110)');
    expect(source).not.toContain('buf[3] !=');
  });

  it('prints integers from their value with a C suffix wide enough, and rejects > 64 bits', () => {
    const p = param('len', 0, null, 0);
    const big = generateProgram(oneFrame(ast.bin('==', ast.param(p), ast.int(2n ** 64n - 1n)), [p]), 'trampoline').source;
    expect(big).toContain('(kc_arg_len == 18446744073709551615ULL)');
    const mid = generateProgram(oneFrame(ast.bin('<', ast.param(p), ast.int(2n ** 40n)), [p]), 'trampoline').source;
    expect(mid).toContain('(kc_arg_len < 1099511627776LL)');
    expect(() => generateProgram(oneFrame(ast.bin('<', ast.param(p), ast.int(2n ** 64n)), [p]), 'trampoline')).toThrow(
      /callchain\[0\]\.predicate: integer literal 18446744073709551616 does not fit in 64 bits/,
    );
  });

  it('names only declared parameters, under a prefix no macro or keyword can clash with', () => {
    const declared = param('name', 1, 'qstr');
    const stranger = param('current', 0, 'task_struct');
    expect(() => generateProgram(oneFrame(ast.arrow(ast.param(stranger), 'pid'), [declared]), 'trampoline')).toThrow(
      /'current' is not a parameter of d_alloc_parallel/,
    );
  });

  it('refuses identifiers that are not plain C names, wherever they come from', () => {
    const p = param('name', 1, 'qstr');
    const hostile = [
      () => oneFrame(ast.arrow(ast.param(p), 'name); bpf_override_return(ctx, 0'), [p]),
      () => oneFrame(ast.arrow(ast.param(p), 'name'), [p], 'f")\nint x(void'),
      () => oneFrame(ast.arrow(ast.param({ ...p, name: 'a b' }), 'name'), [{ ...p, name: 'a b' }]),
      () => oneFrame(ast.arrow(ast.param(p), 'name'), [{ ...p, type: { ...p.type, base: { kind: 'struct', name: 'qstr {int x;}' } } }]),
      () => oneFrame(ast.arrow(ast.param(p), 'name'), [{ ...p, type: { ...p.type, base: { kind: 'name', name: 'int; int' } } }]),
    ];
    for (const make of hostile) {
      expect(() => generateProgram(make(), 'trampoline')).toThrow(GenerateError);
    }
  });

  it('refuses string literals outside STRCMP and member access not rooted at a parameter', () => {
    const p = param('name', 1, 'qstr');
    expect(() => generateProgram(oneFrame(ast.bin('==', ast.param(p), ast.str('x')), [p]), 'trampoline')).toThrow(/string literal may only appear/);
    expect(() => generateProgram(oneFrame(ast.arrow(ast.bin('+', ast.param(p), ast.int(1n)), 'len'), [p]), 'trampoline')).toThrow(
      /member access must start at a parameter/,
    );
    expect(() => generateProgram(oneFrame(ast.dot(ast.param(p), 'len'), [p]), 'trampoline')).toThrow(/use '->'/);
  });

  it('refuses division by a constant zero, and divides unsigned otherwise (BPF has no signed division)', () => {
    const p = param('len', 0, null, 0);
    expect(() => generateProgram(oneFrame(ast.bin('/', ast.param(p), ast.int(0n)), [p]), 'trampoline')).toThrow(/division by the constant 0/);
    expect(generateProgram(oneFrame(ast.bin('/', ast.param(p), ast.int(3n)), [p]), 'trampoline').source).toContain(
      '((__u64)kc_arg_len / (__u64)3)',
    );
  });

  it('kprobe mode refuses parameters past the sixth register', () => {
    const p = param('seventh', 6, null, 0);
    const req = oneFrame(ast.bin('==', ast.param(p), ast.int(1n)), [p]);
    expect(() => generateProgram(req, 'kprobe')).toThrow(/parameters: parameter 7 is passed on the stack/);
  });

  it('every quoted string in the output is one of ours', () => {
    for (const [name, spec] of Object.entries(COMPILE_CASES)) {
      for (const mode of MODES) {
        const program = generateProgram(parsed(spec), mode);
        // comments carry a hex-escaped rendering of the spec; code carries none of it
        const code = program.source.replace(/^\/\/.*$/gm, '').replace(/\/\*[^]*?\*\//g, '');
        const quoted = [...code.matchAll(/"([^"\n]*)"/g)].map((m) => m[1]);
        const allowed = new Set(['kc_runtime.bpf.h', ...program.hooks.map((h) => h.section)]);
        for (const q of quoted) expect(allowed.has(q ?? ''), `${name}/${mode}: "${q}"`).toBe(true);
      }
    }
  });
});

describe('generateProgram: variants and bad requests', () => {
  it('the empty-site variant is a single program that returns 0', () => {
    const program = generateProgram(parsed(SEED), 'trampoline', { variant: 'empty-site' });
    expect(program.hooks).toHaveLength(1);
    expect(programBody(program.source, 'kc_site')).toMatch(/\{\s*return 0;$/);
    expect(program.maps).toEqual([]);
  });

  it('names the field for out-of-range numbers', () => {
    const req = parsed(SEED);
    expect(() => generateProgram({ ...req, probability: 101 }, 'trampoline')).toThrow('spec.failKernRequest.probability: must be an integer 0..100, got 101');
    expect(() => generateProgram({ ...req, times: -1 }, 'trampoline')).toThrow('spec.failKernRequest.times');
    expect(() => generateProgram({ ...req, failtype: 3 as 0 }, 'trampoline')).toThrow('spec.failKernRequest.failtype');
  });

  it('the static C of the headers quotes only include names, sections and the licence', () => {
    const code = unit(generateProgram(parsed(SEED), 'kprobe').source).replace(/^\/\/.*$/gm, '').replace(/\/\*[^]*?\*\//g, '');
    const quoted = new Set([...code.matchAll(/"([^"\n]*)"/g)].map((m) => m[1]));
    expect([...quoted].sort()).toEqual(['.maps', '.rodata.kc_settings', 'GPL', 'kprobe/__x64_sys_mount', 'kprobe/should_failslab', 'kretprobe/__x64_sys_mount', 'license', 'raw_tp/sched_process_exit', 'vmlinux.h'].sort());
  });

  it('the same spec always gives the same source (the compile cache relies on it)', () => {
    expect(generateProgram(parsed(BANANAS), 'kprobe').source).toBe(generateProgram(parsed(BANANAS), 'kprobe').source);
    expect(generateProgram(parsed(BANANAS), 'kprobe').source).not.toBe(generateProgram(parsed({ ...BANANAS, failtype: 1 }), 'kprobe').source);
  });
});
