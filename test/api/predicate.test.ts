import { describe, expect, it } from 'vitest';
import {
  parseFailKernRequest,
  parseFrame,
  parseParameters,
  parsePredicate,
  PredicateError,
  funcnameProblem,
  type Expr,
  type Parameter,
} from '../../src/api/predicate/index.js';

function errorOf(f: () => unknown): PredicateError {
  try {
    f();
  } catch (e) {
    if (e instanceof PredicateError) return e;
    throw new Error(`expected a PredicateError, got ${String(e)}`);
  }
  throw new Error('expected a PredicateError, but parsing succeeded');
}

/** Renders an AST back to fully parenthesised C, to assert structure compactly. */
function show(e: Expr): string {
  switch (e.kind) {
    case 'int': return e.value.toString();
    case 'char': return `'${String.fromCharCode(e.value)}'`;
    case 'string': return JSON.stringify(e.value);
    case 'param': return e.name;
    case 'member': return `${show(e.object)}${e.arrow ? '->' : '.'}${e.member}`;
    case 'unary': return `(${e.op}${show(e.operand)})`;
    case 'binary': return `(${show(e.left)} ${e.op} ${show(e.right)})`;
    case 'conditional': return `(${show(e.test)} ? ${show(e.then)} : ${show(e.otherwise)})`;
    case 'strcmp': return `${e.fn}(${show(e.subject)}, ${JSON.stringify(e.literal)}${e.length === null ? '' : `, ${e.length}`})`;
  }
}

const DENTRY: Parameter[] = parseParameters('struct dentry *parent, const struct qstr *name');

describe('parseParameters', () => {
  it('parses bcc d_alloc_parallel signature with struct tags, const and pointers', () => {
    expect(DENTRY).toEqual([
      { name: 'parent', index: 0, type: { qualifiers: [], base: { kind: 'struct', name: 'dentry' }, pointerDepth: 1 } },
      { name: 'name', index: 1, type: { qualifiers: ['const'], base: { kind: 'struct', name: 'qstr' }, pointerDepth: 1 } },
    ]);
  });

  it('treats empty, blank and void as no parameters', () => {
    expect(parseParameters('')).toEqual([]);
    expect(parseParameters('  \n ')).toEqual([]);
    expect(parseParameters('void')).toEqual([]);
  });

  it('normalises multi-word builtin types', () => {
    const ps = parseParameters('unsigned long int flags, long long n, signed int s, unsigned char c, short int h, signed char sc');
    expect(ps.map((p) => p.type.base)).toEqual([
      { kind: 'name', name: 'unsigned long' },
      { kind: 'name', name: 'long long' },
      { kind: 'name', name: 'int' },
      { kind: 'name', name: 'unsigned char' },
      { kind: 'name', name: 'short' },
      { kind: 'name', name: 'signed char' },
    ]);
  });

  it('accepts typedef names, unions, enums, double pointers and kernel annotations', () => {
    const ps = parseParameters('gfp_t gfp, union bpf_attr *attr, enum zone_type z, char const __user **argv, struct page * const page');
    expect(ps.map((p) => [p.name, p.type.base, p.type.pointerDepth, p.type.qualifiers])).toEqual([
      ['gfp', { kind: 'name', name: 'gfp_t' }, 0, []],
      ['attr', { kind: 'union', name: 'bpf_attr' }, 1, []],
      ['z', { kind: 'enum', name: 'zone_type' }, 0, []],
      ['argv', { kind: 'name', name: 'char' }, 2, ['const']],
      ['page', { kind: 'struct', name: 'page' }, 1, []],
    ]);
  });

  it.each([
    ['struct dentry *parent,', 22, 'expected a parameter type'],
    ['parent', 0, "'parent' has no type"],
    ['gfp_t', 0, "'gfp_t' has no type"],
    ['struct qstr name', 12, 'struct parameters must be pointers'],
    ['int a, int a', 11, "duplicate parameter name 'a'"],
    ['void x', 5, 'cannot have type void'],
    ['short long x', 0, "'short long' is not a C type"],
    ['unsigned signed x', 0, 'is not a C type'],
    ['int x[4]', 5, 'array indexing'],
    ['int (*fn)(int)', 4, 'function pointer'],
    ['double d', 0, 'floating point'],
    ['struct 9 *x', 7, 'expected a struct tag name'],
    ['int return', 4, 'reserved'],
    ['int STRCMP', 4, 'reserved'],
    ['int a; int b', 5, "';'"],
    ['int a, int b, int c, int d, int e, int f, int g', 40, 'at most 6 parameters'],
    ['struct x ******p', 13, "at most 4 levels of '*'"],
    ['int a int b', 6, "expected ',' or the end"],
  ])('rejects %j at column %i', (text, position, message) => {
    const e = errorOf(() => parseParameters(text));
    expect(e.message).toContain(message);
    expect(e.position).toBe(position);
  });
});

describe('parsePredicate', () => {
  it('parses the Chaos Mesh / bcc bananas predicate', () => {
    const e = parsePredicate('STRNCMP(name->name, "bananas", 8)', DENTRY);
    expect(show(e)).toBe('STRNCMP(name->name, "bananas", 8)');
    expect(e.span).toEqual({ start: 0, end: 33 });
    if (e.kind !== 'strcmp' || e.subject.kind !== 'member' || e.subject.object.kind !== 'param') throw new Error('shape');
    expect(e.subject.object.param).toBe(DENTRY[1]);
    expect(parsePredicate('STRCMP(name->name, "bananas")', DENTRY)).toMatchObject({ kind: 'strcmp', fn: 'STRCMP', length: null });
  });

  it('follows C precedence and associativity', () => {
    const ps = parseParameters('unsigned long a, unsigned long b, unsigned long c');
    expect(show(parsePredicate('a + b * c', ps))).toBe('(a + (b * c))');
    expect(show(parsePredicate('a - b - c', ps))).toBe('((a - b) - c)');
    expect(show(parsePredicate('a << 2 + 1', ps))).toBe('(a << (2 + 1))');
    expect(show(parsePredicate('a & b == c', ps))).toBe('(a & (b == c))');
    expect(show(parsePredicate('a | b ^ c & 1', ps))).toBe('(a | (b ^ (c & 1)))');
    expect(show(parsePredicate('a || b && c', ps))).toBe('(a || (b && c))');
    expect(show(parsePredicate('a < b != c >= 1', ps))).toBe('((a < b) != (c >= 1))');
    expect(show(parsePredicate('a ? b : c ? 1 : 2', ps))).toBe('(a ? b : (c ? 1 : 2))');
    expect(show(parsePredicate('!a && -b < ~c % 3 / 2', ps))).toBe('((!a) && ((-b) < (((~c) % 3) / 2)))');
    expect(show(parsePredicate('(a || b) && c', ps))).toBe('((a || b) && c)');
  });

  it('reads literals: decimal, hex, octal, binary, suffixed, char escapes, true/false', () => {
    const ps: Parameter[] = [];
    expect(parsePredicate('0x80000000', ps)).toMatchObject({ kind: 'int', value: 0x80000000n });
    expect(parsePredicate('0755', ps)).toMatchObject({ kind: 'int', value: 0o755n });
    expect(parsePredicate('0b101', ps)).toMatchObject({ kind: 'int', value: 5n });
    expect(parsePredicate('18446744073709551615ULL', ps)).toMatchObject({ kind: 'int', value: 18446744073709551615n });
    expect(parsePredicate("'\\n'", ps)).toMatchObject({ kind: 'char', value: 10 });
    expect(parsePredicate("'\\x41'", ps)).toMatchObject({ kind: 'char', value: 65 });
    expect(parsePredicate("'\\0'", ps)).toMatchObject({ kind: 'char', value: 0 });
    expect(parsePredicate('true', ps)).toMatchObject({ kind: 'int', value: 1n });
    expect(parsePredicate('(false)', ps)).toMatchObject({ kind: 'int', value: 0n });
  });

  it('decodes escapes in STRCMP literals', () => {
    const ps = parseParameters('const char *s');
    expect(parsePredicate('STRCMP(s, "a\\"b\\\\c\\x41\\101")', ps)).toMatchObject({ literal: 'a"b\\cAA' });
  });

  it('reads nested member access with -> and . (bio->bi_iter.bi_sector == 128)', () => {
    const ps = parseParameters('struct bio *bio');
    const e = parsePredicate('bio->bi_iter.bi_sector == 128', ps);
    expect(show(e)).toBe('(bio->bi_iter.bi_sector == 128)');
    if (e.kind !== 'binary' || e.left.kind !== 'member') throw new Error('shape');
    expect(e.left.arrow).toBe(false);
    expect(e.left.span).toEqual({ start: 0, end: 22 });
  });

  it('accepts multi-line predicates from YAML block scalars', () => {
    expect(show(parsePredicate('STRNCMP(name->name, "bananas", 8)\n  && parent != 0\n', DENTRY))).toBe(
      '(STRNCMP(name->name, "bananas", 8) && (parent != 0))',
    );
  });

  it.each([
    // Statements, blocks and bcc's statement-expression example.
    ['({struct gendisk *d = bio->bi_disk; d;})', 1, "'{' is not allowed"],
    ['parent != 0; return 1', 11, "';' is not allowed"],
    ['{ 1 }', 0, "'{' is not allowed"],
    ['if (parent) 1', 0, "C keyword 'if'"],
    ['return 1', 0, "C keyword 'return'"],
    // Assignments and side effects.
    ['parent = 0', 7, "assignment '=' is not allowed"],
    ['parent += 1', 7, "assignment '+=' is not allowed"],
    ['parent <<= 1', 7, "assignment '<<=' is not allowed"],
    ['parent++', 6, 'increment/decrement'],
    ['--parent', 0, 'increment/decrement'],
    // Calls, casts, other C.
    ['bpf_probe_read(parent)', 0, "calling 'bpf_probe_read' is not allowed"],
    ['parent->d_op->d_hash(parent)', 20, 'only STRCMP and STRNCMP can be called'],
    ['(struct dentry *)name', 0, 'casts are not allowed'],
    ['(unsigned long)parent', 0, 'casts are not allowed'],
    ['sizeof(parent)', 0, 'sizeof'],
    ['*parent', 0, "pointer dereference '*'"],
    ['&parent', 0, "address-of '&'"],
    ['+1', 0, "unary '+'"],
    ['parent->d_name.name[0] == 98', 19, 'array indexing'],
    ['1.5 > 0', 1, 'floating-point'],
    // Preprocessor and comments.
    ['#include <linux/fs.h>', 0, "'#' is not allowed"],
    ['1 // always', 2, 'comments are not allowed'],
    ['1 /* always */', 2, 'comments are not allowed'],
    ['parent \\\n', 7, "'\\' is only allowed inside"],
    // Names.
    ['current->pid == 1', 0, "'current' is not a parameter (declared: parent, name)"],
    ['name->name == parent->', 22, 'expected a field name'],
    ['parent->if', 8, 'expected a field name'],
    ['parent.d_name', 6, "use '->' instead of '.'"],
    ['(1)->x', 3, "can only follow a parameter or a field"],
    // Syntax.
    ['', 0, 'empty predicate'],
    ['(parent != 0', 12, "expected ')' to close the parenthesis, found the end"],
    ['parent != 0)', 11, "expected an operator or the end of the predicate, found ')'"],
    ['parent !=', 9, 'expected an expression, found the end'],
    ['parent ? 1', 10, "expected ':'"],
    ['parent parent', 7, 'expected an operator'],
    ['"bananas"', 0, 'string literal can only be the second argument'],
    ["STRCMP(name->name, 'bananas')", 19, 'write strings in double quotes'],
    ['"unterminated', 13, 'unterminated string literal'],
    ['STRCMP(name->name, "a\nb")', 21, 'unterminated string literal'],
    ['STRCMP(name->name, "\\q")', 20, "unknown escape '\\q'"],
    ['STRCMP(name->name, "caf\u00e9")', 23, 'only ASCII'],
    ['0x', 2, 'expected hex digits'],
    ['09', 0, 'invalid octal literal'],
    ['123abc', 3, "invalid character 'a' in number"],
    ['99999999999999999999999', 0, 'does not fit in 64 bits'],
    ["''", 0, 'empty character literal'],
    ['parent @ 1', 7, "unexpected character '@'"],
    ['parent \u0000', 7, 'unexpected character U+0000'],
    ['parent $ 1', 7, "unexpected character '$'"],
    ['parent \u200b== 0', 7, 'unexpected character'],
    // STRCMP / STRNCMP shapes.
    ['STRCMP', 6, "expected '(' after STRCMP"],
    ['STRCMP(name->name)', 17, "expected ',' after the first argument of STRCMP"],
    ['STRCMP(name->name, 5)', 19, 'must be a string literal'],
    ['STRCMP(1, "x")', 7, 'must be a parameter or a field'],
    ['STRNCMP(name->name, "bananas")', 29, 'STRNCMP takes a length'],
    ['STRNCMP(name->name, "bananas", 0)', 31, 'STRNCMP length must be 1..256, got 0'],
    ['STRNCMP(name->name, "bananas", 1000)', 31, 'got 1000'],
    ['STRNCMP(name->name, "bananas", parent)', 31, 'must be an integer length'],
    ['STRCMP(name->name, "x", 3)', 22, "expected ')' to close STRCMP("],
  ])('rejects %j at column %i', (text, position, message) => {
    const e = errorOf(() => parsePredicate(text, DENTRY));
    expect(e.message).toContain(message);
    expect(e.position).toBe(position);
  });

  it('says that parameters are needed when a predicate names something without them', () => {
    const e = errorOf(() => parsePredicate('STRNCMP(name->name, "bananas", 8)', []));
    expect(e.message).toMatch(/'name' is not declared: set parameters to the function's C parameter list/);
    expect(e.position).toBe(8);
  });

  it('type-checks how parameters themselves are accessed', () => {
    const ps = parseParameters('unsigned long flags, char *s, struct dentry **pp, void *v');
    expect(errorOf(() => parsePredicate('flags->x', ps)).message).toContain("parameter 'flags' is not a pointer");
    expect(errorOf(() => parsePredicate('s->x', ps)).message).toContain('is char *');
    expect(errorOf(() => parsePredicate('pp->x', ps)).message).toContain('pointer to a pointer');
    expect(errorOf(() => parsePredicate('v->x', ps)).message).toContain('is void *');
    expect(errorOf(() => parsePredicate('flags.x', ps)).message).toContain("'.' cannot be used");
    expect(errorOf(() => parsePredicate('STRCMP(flags, "x")', ps)).message).toContain("'flags' is not a pointer");
    expect(show(parsePredicate('STRCMP(s, "x") && flags & 0x400', ps))).toBe('(STRCMP(s, "x") && (flags & 1024))');
  });

  it('refuses to read user-space (__user) pointers as kernel memory', () => {
    const ps = parseParameters('int dfd, const char __user *filename, struct sockaddr __user *addr, struct filename *pathname');
    expect(ps[1]?.type).toEqual({ qualifiers: ['const'], base: { kind: 'name', name: 'char' }, pointerDepth: 1, annotations: ['__user'] });
    expect(ps[3]?.type.annotations).toBeUndefined();
    expect(errorOf(() => parsePredicate('STRCMP(filename, "/etc/passwd")', ps)).message).toContain("'filename' is a user-space pointer (__user)");
    expect(errorOf(() => parsePredicate('addr->sa_family == 2', ps)).message).toContain("'addr' is a user-space pointer");
    expect(parsePredicate('STRCMP(pathname->name, "/etc/passwd")', ps).kind).toBe('strcmp');
  });

  it('says to use STRCMP when a string is compared with ==', () => {
    const ps = parseParameters('struct filename *pathname');
    const e = errorOf(() => parsePredicate('pathname->name == "/etc/passwd"', ps));
    expect(e.message).toBe(`compare strings with STRCMP(x, "/etc/passwd"), not '==' (that would compare addresses)`);
    expect(e.position).toBe(18);
  });

  it('rejects absurd depth and length without overflowing the stack', () => {
    expect(errorOf(() => parsePredicate(`${'('.repeat(5000)}1${')'.repeat(5000)}`, [])).message).toMatch(/too long|nests too deeply/);
    expect(errorOf(() => parsePredicate(`${'('.repeat(1000)}1${')'.repeat(1000)}`, [])).message).toContain('nests too deeply');
    expect(errorOf(() => parsePredicate(`${'!'.repeat(2000)}1`, [])).message).toContain('nests too deeply');
    expect(errorOf(() => parsePredicate(`1${' + 1'.repeat(500)}`, [])).message).toContain('nests too deeply');
    expect(errorOf(() => parsePredicate('1 '.repeat(3000), [])).message).toContain('too long: 6000 characters, at most 4096');
    expect(errorOf(() => parsePredicate(`STRCMP(name->name, "${'a'.repeat(300)}")`, DENTRY)).message).toContain('string literal too long');
    // A long but flat, realistic disjunction is fine.
    const ps = parseParameters('unsigned long a');
    const many = Array.from({ length: 60 }, (_, i) => `a == ${i}`).join(' || ');
    expect(parsePredicate(many, ps).kind).toBe('binary');
  });
});

describe('funcnameProblem', () => {
  it('accepts kernel symbols', () => {
    for (const name of ['__x64_sys_mount', 'd_alloc_parallel', 'ext4_mount', 'btrfs_close_devices', '_raw_spin_lock']) {
      expect(funcnameProblem(name)).toBeNull();
    }
  });
  it.each([
    ['', 'must name a kernel function'],
    ['SyS_mount()', 'must be a C identifier'],
    ['9lives', 'must be a C identifier'],
    ['ext4 mount', 'must be a C identifier'],
    ['foo;system("x")', 'must be a C identifier'],
    ['ext4_find_entry.constprop.0', "use the original function 'ext4_find_entry'"],
    ['foo.isra.0', "'foo'"],
    ['foo.cold', "'foo'"],
    ['return', 'C keyword'],
    ['should_failslab', 'injection site itself'],
    ['a'.repeat(128), 'at most 127 characters'],
  ])('rejects %j', (name, message) => {
    expect(funcnameProblem(name)).toContain(message);
  });
});

describe('parseFrame and parseFailKernRequest (bcc inject_example.txt chains)', () => {
  it('parses the chains of inject_example.txt rewritten as KernelChaos frames', () => {
    // inject.py 'SyS_mount()' on a 4.17+ x86-64 kernel.
    expect(parseFrame({ funcname: '__x64_sys_mount' })).toEqual({ funcname: '__x64_sys_mount', parameters: [], predicate: null });
    // '(true) => SyS_mount()(true)'.
    expect(parseFrame({ funcname: '__x64_sys_mount', predicate: 'true' }).predicate).toMatchObject({ kind: 'int', value: 1n });
    // 'mount_subtree() => btrfs_mount()': outermost first in a KernelChaos callchain.
    const btrfs = parseFailKernRequest({ failtype: 0, callchain: [{ funcname: 'btrfs_mount' }, { funcname: 'mount_subtree' }] });
    expect(btrfs.callchain.map((f) => f.funcname)).toEqual(['btrfs_mount', 'mount_subtree']);
    expect(btrfs).toMatchObject({ failtype: 0, headers: [], probability: 0, times: 0 });
    // 'd_alloc_parallel(struct dentry *parent, const struct qstr *name)(STRCMP(name->name, 'bananas'))'.
    const bananas = parseFailKernRequest({
      failtype: 0,
      probability: 100,
      times: 3,
      callchain: [
        {
          funcname: 'd_alloc_parallel',
          parameters: 'struct dentry *parent, const struct qstr *name',
          predicate: 'STRNCMP(name->name, "bananas", 8)',
        },
      ],
    });
    expect(bananas.probability).toBe(100);
    expect(bananas.times).toBe(3);
    expect(bananas.callchain[0]?.parameters.map((p) => p.name)).toEqual(['parent', 'name']);
    expect(bananas.callchain[0]?.predicate?.kind).toBe('strcmp');
    // The bio example's second half (the first half is a statement expression, rejected above).
    const bio = parseFailKernRequest({
      failtype: 2,
      headers: ['linux/blkdev.h'],
      callchain: [{ funcname: 'submit_bio', parameters: 'struct bio *bio', predicate: 'bio->bi_iter.bi_sector == 128' }],
    });
    expect(bio.headers).toEqual(['linux/blkdev.h']);
    expect(bio.failtype).toBe(2);
  });

  it('names the field of the first error', () => {
    const e = errorOf(() =>
      parseFailKernRequest({
        failtype: 0,
        callchain: [{ funcname: 'a' }, { funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent', predicate: 'name == 0' }],
      }),
    );
    expect(e.field).toBe('callchain[1].predicate');
    expect(e.position).toBe(0);
    expect(e.describe()).toBe("'name' is not a parameter (declared: parent) (column 0)");
    expect(errorOf(() => parseFrame({ funcname: 'x', parameters: 'int' })).field).toBe('parameters');
    expect(errorOf(() => parseFrame({ parameters: 'int x' })).field).toBe('funcname');
  });
});

describe('identifiers the preprocessor would rewrite', () => {
  it('refuses member names, tags and typedef names spelled like macros of the generated unit, with their column', () => {
    const params = parseParameters('struct dentry *parent');
    const cases: Array<[string, RegExp]> = [
      ['parent->__PT_PARM1_REG == 1', /'__PT_PARM1_REG' starts with '__'/],
      ['parent->KC_TIMES == 1', /'KC_TIMES' starts with 'KC_'/],
      ['parent->_Pragma == 1', /'_Pragma' is a macro or reserved word/],
      ['parent->PT_REGS_RC == 1', /starts with 'PT_REGS_'/],
      ['parent->d_name.NULL == 0', /'NULL' is a macro/],
    ];
    for (const [text, message] of cases) {
      expect(() => parsePredicate(text, params)).toThrow(message);
    }
    expect(() => parseParameters('struct KC_TIMES *x')).toThrow(/starts with 'KC_'/);
    expect(() => parseParameters('__asm x')).toThrow(/starts with '__'/);
    expect(() => parseParameters('_Foo x')).toThrow(/reserved by C/);
    // Real kernel names still parse.
    expect(parsePredicate('parent->d_name.len > 0', params).kind).toBe('binary');
    expect(parseParameters('union bpf_attr *attr, gfp_t gfp')).toHaveLength(2);
  });
});
