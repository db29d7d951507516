// Generates call-chain frames (funcname, parameters, predicate) from the predicate grammar and a
// kernel's BTF, and near-misses of them: real functions with their real prototypes (or a wrong
// type, an extra `*`, a reserved name), predicates over real member paths (or a member that does
// not exist, `.` for `->`, a pointer in arithmetic), literals in every form the lexer reads, and
// text mutations (`;`, `#`, casts, calls). Randomness comes from fast-check, so a seed reproduces
// a run exactly.
import fc from 'fast-check';
import { resolveType, type BtfReader, type BtfType } from '../../src/bpf/btf-reader.js';
import { funcnameProblem } from '../../src/api/predicate/index.js';
import { reservedIdentifierProblem } from '../../src/api/predicate/c-names.js';
import type { Frame } from '../../src/api/types.js';

export interface FuzzCase {
  failtype: 0 | 1 | 2;
  /** A chain frame, or (no funcname) a predicate on the failtype's injection site. */
  frame: Frame;
}

interface Rng {
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

interface FunctionEntry {
  name: string;
  params: { name: string; type: number }[];
}

/** What the generator knows of a kernel: its functions with usable prototypes. */
export interface FuzzPool {
  btf: BtfReader;
  functions: FunctionEntry[];
  /** Functions with at least one pointer-to-struct parameter: the ones predicates read most. */
  structFunctions: FunctionEntry[];
}

/** Functions of every kind that real manifests use, tried first so every run covers them. */
const KNOWN_FUNCTIONS = ['d_alloc_parallel', 'do_filp_open', 'vfs_read', 'vfs_write', 'submit_bio', 'do_sys_openat2', 'path_openat', 'kmem_cache_alloc', '__x64_sys_mount', 'ksys_mmap_pgoff', 'security_inode_create', 'vfs_mkdir', 'do_mkdirat', 'getname_flags', 'alloc_pages'];

export function fuzzPool(btf: BtfReader): FuzzPool {
  const functions: FunctionEntry[] = [];
  for (let id = 1; ; id++) {
    let t: BtfType;
    try {
      t = btf.type(id);
    } catch {
      break;
    }
    if (t.kind !== 'func' || funcnameProblem(t.name) !== null) continue;
    const proto = btf.type(t.type);
    if (proto.kind !== 'func_proto' || proto.params.length === 0 || proto.params.length > 6) continue;
    if (proto.params.some((p) => p.type === 0)) continue;
    functions.push({ name: t.name, params: proto.params });
  }
  functions.sort((a, b) => (a.name < b.name ? -1 : 1));
  const structFunctions = functions.filter((f) => f.params.some((p) => pointee(btf, p.type)?.kind === 'struct'));
  return { btf, functions, structFunctions };
}

function pointee(btf: BtfReader, id: number): BtfType | null {
  const t = resolveType(btf, id).type;
  return t.kind === 'ptr' ? resolveType(btf, t.type).type : null;
}

/** `count` cases from `seed`: the same seed gives the same cases. */
export function fuzzCases(pool: FuzzPool, seed: number, count: number): FuzzCase[] {
  // Unbiased integers: fast-check's bias towards small values would make every `chance` likelier.
  const uniform = (range: { min: number; max: number }): fc.Arbitrary<number> => fc.noBias(fc.integer(range));
  const arb = fc.gen().map((g) => makeCase(pool, {
    int: (min, max) => g(uniform, { min, max }),
    pick: <T,>(items: readonly T[]): T => items[g(uniform, { min: 0, max: items.length - 1 })] as T,
    chance: (p) => g(uniform, { min: 0, max: 9999 }) < p * 10_000,
  }));
  return fc.sample(arb, { seed, numRuns: count });
}

const BUILTIN_BY_SIZE: Record<number, [signed: string, unsigned: string]> = {
  1: ['signed char', 'unsigned char'],
  2: ['short', 'unsigned short'],
  4: ['int', 'unsigned int'],
  8: ['long', 'unsigned long'],
};

/** The type as a manifest writes it (`const struct qstr *`, `gfp_t`, `unsigned long`), or null when it cannot be written. */
function declText(btf: BtfReader, id: number, r: Rng, depth = 0): string | null {
  if (depth > 6) return null;
  const t = btf.type(id);
  switch (t.kind) {
    case 'void': return 'void';
    case 'const': {
      const inner = declText(btf, t.type, r, depth + 1);
      if (inner === null) return null;
      return btf.type(t.type).kind === 'ptr' ? inner : `const ${inner}`;
    }
    case 'volatile': case 'restrict': return declText(btf, t.type, r, depth + 1);
    case 'type_tag': {
      const inner = declText(btf, t.type, r, depth + 1);
      return inner === null ? null : t.name === 'user' ? `__user ${inner}` : inner;
    }
    case 'typedef':
      if (reservedIdentifierProblem(t.name) === null && r.chance(0.7)) return t.name;
      return declText(btf, t.type, r, depth + 1);
    case 'int':
      if (t.bool) return '_Bool';
      if (t.name === 'char') return 'char';
      return BUILTIN_BY_SIZE[t.size]?.[t.signed ? 0 : 1] ?? null;
    case 'enum':
      return t.name && reservedIdentifierProblem(t.name) === null ? `enum ${t.name}` : BUILTIN_BY_SIZE[t.size]?.[1] ?? null;
    case 'struct': case 'union':
      return t.name && reservedIdentifierProblem(t.name) === null ? `${t.kind} ${t.name}` : null;
    case 'fwd':
      return reservedIdentifierProblem(t.name) === null ? `${t.union ? 'union' : 'struct'} ${t.name}` : null;
    case 'ptr': {
      const to = btf.type(t.type);
      if (resolveType(btf, t.type).type.kind === 'func_proto' || to.kind === 'func_proto') return 'void *';
      const inner = declText(btf, t.type, r, depth + 1);
      if (inner === null) return r.chance(0.5) ? 'void *' : null;
      return inner.endsWith('*') ? `${inner}*` : `${inner} *`;
    }
    default: return null;
  }
}

const RESERVED_NAMES = ['KC_TIMES', '__x', '_Pragma', 'asm', 'SEC', 'BPF_CORE_READ', 'NULL', 'true', 'int', 'STRCMP', '__user', 'likely', 'PT_REGS_PARM1', '_Bool', 'sizeof'];
const NAMES = ['a', 'b', 'p', 'q', 'x', 'name', 'parent', 'dentry', 'flags', 'n', 'len', 'ctx', 'buf', 'kc_arg_x', 'task'];

/** A parameter name: mostly the kernel's own or a plain one, sometimes a reserved word. */
function paramName(real: string, i: number, r: Rng): string {
  if (r.chance(0.03)) return r.pick(RESERVED_NAMES);
  if (real !== '' && reservedIdentifierProblem(real) === null && r.chance(0.7)) return real;
  return r.chance(0.5) ? `${r.pick(NAMES)}${i}` : r.pick(NAMES);
}

/** A wrong type for a parameter: what a user copying the wrong signature writes. */
function wrongType(r: Rng): string {
  return r.pick(['struct qstr *', 'unsigned long', 'int', 'const char *', 'struct dentry *', 'void *', 'char **', 'enum pid_type', 'gfp_t', 'struct no_such_struct *', 'long long', 'unsigned', 'u64', 'struct file **', 'union bpf_attr *', 'size_t', 'struct task_struct']);
}

interface Declared {
  name: string;
  text: string;
  /** The kernel's type, or null when the declaration is a deliberate near-miss. */
  type: number | null;
}

function makeCase(pool: FuzzPool, r: Rng): FuzzCase {
  if (r.chance(0.12)) return siteCase(pool, r);
  const fn = r.chance(0.35) ? knownFunction(pool, r) : r.chance(0.7) ? r.pick(pool.structFunctions) : r.pick(pool.functions);
  const funcname = r.chance(0.03) ? r.pick(['', 'foo.constprop.0', 'should_failslab', '1abc', 'a-b', 'x'.repeat(130), 'no_such_function_kc', 'sizeof']) : fn.name;
  const failtype = r.pick([0, 1, 2] as const);
  const declared: Declared[] = [];
  const count = r.chance(0.1) ? r.int(0, fn.params.length + 1) : r.chance(0.5) ? fn.params.length : r.int(1, fn.params.length);
  for (let i = 0; i < count; i++) {
    const real = fn.params[i];
    const name = paramName(real?.name ?? '', i, r);
    if (!real || r.chance(0.04)) {
      declared.push({ name, text: wrongType(r), type: null });
      continue;
    }
    let text = declText(pool.btf, real.type, r);
    if (text === null) {
      declared.push({ name, text: 'void *', type: null });
      continue;
    }
    let type: number | null = real.type;
    if (r.chance(0.04)) {
      text = r.pick([`${text} *`, text.replace('unsigned ', ''), text.replace('const ', ''), `__user ${text}`, text.replace('struct', 'union'), `volatile ${text}`, `${text} const`]);
      type = null;
    }
    declared.push({ name, text, type });
  }
  if (r.chance(0.02) && declared.length > 1) declared.reverse();
  if (r.chance(0.02) && declared.length > 0) declared.push({ ...(declared[0] as Declared) });
  let parameters = declared.map((d) => `${d.text}${d.text.endsWith('*') ? '' : ' '}${d.name}`).join(r.pick([', ', ',', ' , ']));
  if (r.chance(0.03)) parameters = mutateText(parameters, r);
  const frame: Frame = { funcname, parameters };
  if (r.chance(0.9)) {
    let predicate = new Expressions(pool.btf, declared, r, SYSCALL.test(fn.name)).top();
    if (r.chance(0.06)) predicate = mutateText(predicate, r);
    frame.predicate = predicate;
  }
  if (r.chance(0.05)) delete frame.parameters;
  return { failtype, frame };
}

const SYSCALL = /^(?:__x64_sys_|__se_sys_|__do_sys_|sys_|ksys_)/;

function knownFunction(pool: FuzzPool, r: Rng): FunctionEntry {
  const name = r.pick(KNOWN_FUNCTIONS);
  return pool.functions.find((f) => f.name === name) ?? r.pick(pool.functions);
}

const SITE_FUNCTIONS: Record<0 | 1 | 2, string> = { 0: 'should_failslab', 1: 'should_fail_alloc_page', 2: 'should_fail_bio' };

function siteCase(pool: FuzzPool, r: Rng): FuzzCase {
  const failtype = r.pick([0, 1, 2] as const);
  const fn = pool.functions.find((f) => f.name === SITE_FUNCTIONS[failtype]);
  const declared: Declared[] = (fn?.params ?? []).map((p) => ({ name: p.name, text: declText(pool.btf, p.type, r) ?? 'void *', type: p.type }));
  const frame: Frame = { predicate: new Expressions(pool.btf, declared, r, false).top() };
  if (r.chance(0.3)) frame.parameters = declared.map((d) => `${d.text}${d.text.endsWith('*') ? '' : ' '}${d.name}`).join(', ');
  return { failtype, frame };
}

/** Text near-misses: what a hostile or careless user adds to a well-formed field. */
function mutateText(text: string, r: Rng): string {
  const insert = r.pick([';', '#', '[0]', '=', '{', '}', '\\', '/*', '//', '"', "'", '::', '++', '__asm__("nop")', '_Pragma("x")', '(int)', '*', '&', ',', '?', ':', '\u00e9', '\u0000', '\n#define x 1\n', ' KC_TIMES ', ' sizeof(x) ', 'f()', '.', '->', ')', '(', '0.5', '1e3', '08', '0x', '0b2', '99999999999999999999']);
  const at = r.int(0, text.length);
  if (r.chance(0.3)) return text.slice(0, at) + text.slice(Math.min(text.length, at + r.int(1, 4)));
  return text.slice(0, at) + insert + text.slice(at);
}

type Leaf = { text: string; kind: 'int' | 'ptr' | 'str' | 'chars' | 'other' };

/** Predicate expressions over the declared parameters, typed by the kernel's BTF where it is known. */
class Expressions {
  private readonly leaves: Leaf[] = [];
  constructor(private readonly btf: BtfReader, declared: readonly Declared[], private readonly r: Rng, syscall: boolean) {
    for (const d of declared) {
      if (d.type === null) {
        this.leaves.push({ text: d.name, kind: 'other' });
        continue;
      }
      const shape = this.kindOf(d.type);
      this.leaves.push({ text: d.name, kind: shape });
      if (syscall && shape !== 'int') continue;
      for (let i = 0; i < 6; i++) {
        const path = this.memberPath(d.name, d.type);
        if (path) this.leaves.push(path);
      }
    }
  }

  private kindOf(id: number): Leaf['kind'] {
    const t = resolveType(this.btf, id).type;
    if (t.kind === 'int' || t.kind === 'enum') return 'int';
    if (t.kind === 'ptr') {
      const to = resolveType(this.btf, t.type).type;
      return to.kind === 'int' && to.size === 1 ? 'str' : 'ptr';
    }
    if (t.kind === 'array') {
      const el = resolveType(this.btf, t.type).type;
      return el.kind === 'int' && el.size === 1 ? 'chars' : 'other';
    }
    return 'other';
  }

  /** A random walk of members from a pointer-to-struct parameter: `p->a.b->c`. */
  private memberPath(root: string, id: number): Leaf | null {
    let text = root;
    let type = id;
    const hops = this.r.int(1, 4);
    for (let i = 0; i < hops; i++) {
      const t = resolveType(this.btf, type).type;
      let holder: BtfType;
      let op: '->' | '.';
      if (t.kind === 'ptr') {
        holder = resolveType(this.btf, t.type).type;
        op = '->';
      } else {
        holder = t;
        op = '.';
      }
      if (holder.kind !== 'struct' && holder.kind !== 'union') return i === 0 ? null : { text, kind: this.kindOf(type) };
      const member = this.pickMember(holder);
      if (!member) return null;
      if (this.r.chance(0.03)) return { text: `${text}${op}no_such_member_kc`, kind: 'int' };
      if (this.r.chance(0.02)) return { text: `${text}${op === '->' ? '.' : '->'}${member.name}`, kind: 'int' };
      text = `${text}${op}${member.name}`;
      type = member.type;
      if (member.bitfieldSize !== 0) return { text, kind: 'int' };
      const kind = this.kindOf(type);
      if (kind !== 'ptr' && kind !== 'other') return { text, kind };
      if (kind === 'ptr' && this.r.chance(0.3)) return { text, kind };
    }
    return { text, kind: this.kindOf(type) };
  }

  /** A named member, looking into anonymous structs and unions as C does. */
  private pickMember(holder: Extract<BtfType, { kind: 'struct' | 'union' }>, depth = 0): { name: string; type: number; bitfieldSize: number } | null {
    if (holder.members.length === 0 || depth > 4) return null;
    const m = this.r.pick(holder.members);
    if (m.name !== '') return m;
    const inner = resolveType(this.btf, m.type).type;
    return inner.kind === 'struct' || inner.kind === 'union' ? this.pickMember(inner, depth + 1) : null;
  }

  private of(kind: Leaf['kind']): Leaf | null {
    const found = this.leaves.filter((l) => l.kind === kind);
    return found.length > 0 ? this.r.pick(found) : null;
  }

  top(): string {
    return this.int(this.r.int(1, 5));
  }

  private ws(): string {
    return this.r.chance(0.9) ? ' ' : this.r.pick(['', '  ', '\t', '\n']);
  }

  /** An integer-valued expression. */
  private int(depth: number): string {
    const r = this.r;
    const choice = depth <= 0 ? r.int(0, 2) : r.int(0, 11);
    switch (choice) {
      case 0: return this.literal();
      case 1: case 2: {
        const leaf = r.chance(0.9) ? this.of('int') : this.of(r.pick(['ptr', 'str', 'chars', 'other'] as const));
        return leaf?.text ?? this.literal();
      }
      case 3: case 4: case 5: {
        const op = r.pick(['||', '&&', '|', '^', '&', '==', '!=', '<', '<=', '>', '>=', '<<', '>>', '+', '-', '*', '/', '%']);
        return `(${this.int(depth - 1)}${this.ws()}${op}${this.ws()}${this.int(depth - 1)})`;
      }
      case 6: return `${r.pick(['!', '-', '~', '!!', '- ', '~-'])}${this.int(depth - 1)}`;
      case 7: return `(${this.int(depth - 1)} ? ${this.int(depth - 1)} : ${this.int(depth - 1)})`;
      case 8: case 9: return this.strcmp();
      case 10: return this.pointerTest(depth);
      default: return `(${this.int(depth - 1)})`;
    }
  }

  /** What a predicate does with a pointer: test it, compare it, and (near-miss) compute with it. */
  private pointerTest(depth: number): string {
    const r = this.r;
    const p = this.of(r.chance(0.5) ? 'ptr' : 'str');
    if (!p) return this.literal();
    switch (r.int(0, 5)) {
      case 0: return `!${p.text}`;
      case 1: return `${p.text} ${r.pick(['==', '!='])} 0`;
      case 2: {
        const q = this.of(p.kind);
        return `${p.text} ${r.pick(['==', '!=', '<', '>='])} ${q?.text ?? '0'}`;
      }
      case 3: return `(${p.text} ? ${this.int(depth - 1)} : 0)`;
      case 4: return `(${p.text} && ${this.int(depth - 1)})`;
      default: return `(${p.text} ${r.pick(['+', '-', '*', '/', '%', '&', '|', '<<', '^'])} ${this.int(0)})`;
    }
  }

  private strcmp(): string {
    const r = this.r;
    const subject = this.of(r.chance(0.7) ? 'str' : 'chars') ?? (r.chance(0.3) ? this.of('ptr') : null) ?? this.of('int');
    const text = subject?.text ?? 'x';
    const lit = this.stringLiteral();
    if (r.chance(0.5)) return `STRCMP(${text}, ${lit})`;
    return `STRNCMP(${text}, ${lit}, ${r.pick([1, 2, 4, 8, 16, 255, 256, r.int(1, 64)])})`;
  }

  private stringLiteral(): string {
    const r = this.r;
    const length = r.chance(0.05) ? r.int(200, 255) : r.int(0, 24);
    let out = '';
    for (let i = 0; i < length; i++) {
      out += r.chance(0.9)
        ? String.fromCharCode(r.int(0x20, 0x7e)).replace(/["\\]/, (c) => `\\${c}`)
        : r.pick(['\\n', '\\t', '\\\\', '\\"', "\\'", '\\x41', '\\0', '\\x00', '\\377', '\\x7f', '\\a', '\\?', '*/', '??=', '%s', '\\1']);
    }
    return `"${out}"`;
  }

  private literal(): string {
    const r = this.r;
    switch (r.int(0, 9)) {
      case 0: return String(r.int(0, 10));
      case 1: return `0x${r.int(0, 0xffffff).toString(16)}`;
      case 2: return `0${r.int(0, 0o777).toString(8)}`;
      case 3: return `0b${r.int(0, 255).toString(2)}`;
      case 4: return `${r.int(0, 1000)}${r.pick(['u', 'U', 'l', 'L', 'ul', 'UL', 'ull', 'ULL', 'll', 'LL', 'lu', 'llu'])}`;
      case 5: return r.pick(['18446744073709551615', '9223372036854775807', '9223372036854775808', '2147483647', '2147483648', '4294967295', '4294967296', '0xffffffffffffffff', '0x8000000000000000']);
      case 6: return r.pick(["'a'", "'\\n'", "'\\x41'", "'\\0'", "'\\377'", "'\\\\'", "'\\''", "'\"'", "' '"]);
      case 7: return r.pick(['true', 'false']);
      case 8: return String(r.int(0, 64));
      default: return String(r.int(-5, 100000));
    }
  }
}
