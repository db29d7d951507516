// Re-emits a parsed call-chain predicate (src/api/predicate/ast.ts) as BPF C. Nothing the user
// typed is copied: identifiers are re-checked against a strict pattern, integers are printed from
// their value, string literals become byte-by-byte comparisons against numeric immediates.
import type { CType, Expr, Parameter, ParsedFrame } from '../api/predicate/ast.js';

/** A request the generator cannot turn into C. `path` is the manifest field to fix. */
export class GenerateError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'GenerateError';
  }
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Words a parameter's base type may be made of; anything else must be a single typedef name. */
const TYPE_KEYWORDS = new Set(['unsigned', 'signed', 'char', 'short', 'int', 'long', '_Bool', 'bool', 'void']);
const C_KEYWORDS = new Set([
  'auto', 'break', 'case', 'char', 'const', 'continue', 'default', 'do', 'double', 'else', 'enum', 'extern',
  'float', 'for', 'goto', 'if', 'inline', 'int', 'long', 'register', 'restrict', 'return', 'short', 'signed',
  'sizeof', 'static', 'struct', 'switch', 'typedef', 'union', 'unsigned', 'void', 'volatile', 'while', '_Bool',
  'typeof', 'asm', '__asm__',
]);
const QUALIFIERS = new Set(['const', 'volatile']);
/** The longest string literal a predicate may compare (one unrolled compare per byte). */
export const MAX_STRING_LITERAL = 256;
/** BPF_CORE_READ follows at most this many pointers. */
const MAX_POINTER_HOPS = 9;
const U64_MAX = (1n << 64n) - 1n;
const I32_MAX = (1n << 31n) - 1n;
const I64_MAX = (1n << 63n) - 1n;

export function isIdentifier(name: string): boolean {
  return IDENTIFIER.test(name) && !C_KEYWORDS.has(name);
}

export function checkIdentifier(name: string, path: string, what: string): string {
  if (!isIdentifier(name)) {
    throw new GenerateError(path, `${what} '${printable(name)}' is not a C identifier (letters, digits, _; not a keyword)`);
  }
  return name;
}

/** A string safe to place in a C comment or error message: printable ASCII, no comment delimiters. */
export function printable(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9 _.,:;=<>!&|^~+\-()[\]{}#%?'@$]/.test(ch) ? ch : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** `const struct qstr *` from a parsed type, every word re-checked. */
export function emitCType(type: CType, path: string): string {
  const words: string[] = [];
  for (const q of type.qualifiers) {
    if (q === 'restrict') continue; // meaningless for a local copy of the argument
    if (!QUALIFIERS.has(q)) throw new GenerateError(path, `unsupported type qualifier '${printable(q)}' (only const, volatile)`);
    words.push(q);
  }
  if (type.base.kind === 'name') {
    const parts = type.base.name.trim().split(/\s+/);
    const allKeywords = parts.every((p) => TYPE_KEYWORDS.has(p));
    const typedefName = parts.length === 1 && IDENTIFIER.test(parts[0] ?? '') && !C_KEYWORDS.has(parts[0] ?? '');
    if (!allKeywords && !typedefName) {
      throw new GenerateError(path, `type '${printable(type.base.name)}' is neither a builtin C type nor a typedef name`);
    }
    words.push(parts.join(' '));
  } else {
    words.push(type.base.kind, checkIdentifier(type.base.name, path, `${type.base.kind} tag`));
  }
  if (!Number.isInteger(type.pointerDepth) || type.pointerDepth < 0 || type.pointerDepth > 4) {
    throw new GenerateError(path, `pointer depth ${type.pointerDepth} is not supported (0..4)`);
  }
  return `${words.join(' ')}${type.pointerDepth > 0 ? ' ' + '*'.repeat(type.pointerDepth) : ''}`;
}

/** The C name of a parameter's local variable: prefixed so no user name can clash with ours or with macros. */
export function paramVar(name: string): string {
  return `kc_arg_${name}`;
}

/** One STRCMP/STRNCMP in a predicate: compiled into its own inline function. */
export interface StringCompare {
  fn: string;
  /** Bytes that must match, the literal's NUL included when the compare reaches it. */
  expected: number[];
}

export interface PredicateEmission {
  /** The C expression. */
  code: string;
  /** Parameters the expression reads (their locals must be declared). */
  params: Parameter[];
  compares: StringCompare[];
}

interface EmitState {
  frame: ParsedFrame;
  path: string;
  prefix: string;
  params: Map<string, Parameter>;
  compares: StringCompare[];
}

/**
 * Emits `frame.predicate` as a C expression. `prefix` names the string-compare helpers uniquely
 * (e.g. `kc_streq_f0`); `path` is the manifest path of the predicate for errors.
 */
export function emitPredicate(frame: ParsedFrame, path: string, prefix: string): PredicateEmission | null {
  if (frame.predicate === null) return null;
  const state: EmitState = { frame, path, prefix, params: new Map(), compares: [] };
  const code = emitExpr(frame.predicate, state);
  return { code, params: [...state.params.values()], compares: state.compares };
}

function emitExpr(e: Expr, s: EmitState): string {
  switch (e.kind) {
    case 'int':
      return emitInt(e.value, s);
    case 'char':
      if (!Number.isInteger(e.value) || e.value < 0 || e.value > 255) {
        throw new GenerateError(s.path, `character literal value ${e.value} is outside 0..255`);
      }
      return String(e.value);
    case 'string':
      throw new GenerateError(
        s.path,
        `a string literal may only appear as the second argument of STRCMP/STRNCMP (at offset ${e.span.start})`,
      );
    case 'param':
      return paramVar(useParam(e.name, e.param, s));
    case 'member':
      return emitMemberRead(e, s);
    case 'unary':
      return `(${e.op}${emitExpr(e.operand, s)})`;
    case 'binary': {
      const left = emitExpr(e.left, s);
      const right = emitExpr(e.right, s);
      if (e.op === '/' || e.op === '%') {
        if (e.right.kind === 'int' && e.right.value === 0n) {
          throw new GenerateError(s.path, `division by the constant 0 (at offset ${e.span.start})`);
        }
        // BPF has no signed division: divide as unsigned 64-bit.
        return `((__u64)${left} ${e.op} (__u64)${right})`;
      }
      return `(${left} ${e.op} ${right})`;
    }
    case 'conditional':
      return `(${emitExpr(e.test, s)} ? ${emitExpr(e.then, s)} : ${emitExpr(e.otherwise, s)})`;
    case 'strcmp':
      return emitStringCompare(e, s);
  }
}

function emitInt(value: bigint, s: EmitState): string {
  if (value < 0n || value > U64_MAX) {
    throw new GenerateError(s.path, `integer literal ${value} does not fit in 64 bits (0..${U64_MAX})`);
  }
  if (value <= I32_MAX) return value.toString();
  if (value <= I64_MAX) return `${value}LL`;
  return `${value}ULL`;
}

function useParam(name: string, param: Parameter, s: EmitState): string {
  const declared = s.frame.parameters.find((p) => p.name === name);
  if (!declared || declared.index !== param.index) {
    throw new GenerateError(s.path, `'${printable(name)}' is not a parameter of ${s.frame.funcname}`);
  }
  checkIdentifier(name, s.path, 'parameter name');
  s.params.set(name, declared);
  return name;
}

interface MemberChain {
  root: Parameter;
  /** Accessor groups for BPF_CORE_READ: each starts after a `->`, `.` steps stay in the group. */
  groups: string[];
}

/** `p->a.b->c` becomes root p, groups ['a.b', 'c']. Only chains rooted at a parameter are allowed. */
function flattenMember(e: Extract<Expr, { kind: 'member' }>, s: EmitState): MemberChain {
  const steps: { member: string; arrow: boolean }[] = [];
  let node: Expr = e;
  while (node.kind === 'member') {
    steps.unshift({ member: checkIdentifier(node.member, s.path, 'member name'), arrow: node.arrow });
    node = node.object;
  }
  if (node.kind !== 'param') {
    throw new GenerateError(s.path, `member access must start at a parameter (at offset ${e.span.start})`);
  }
  const root = s.frame.parameters.find((p) => p.name === node.name);
  useParam(node.name, node.param, s);
  if (!root) throw new GenerateError(s.path, `'${printable(node.name)}' is not a parameter of ${s.frame.funcname}`);
  const first = steps[0];
  if (!first?.arrow) {
    throw new GenerateError(s.path, `'${printable(node.name)}.' needs a struct value; parameters are pointers here, use '->'`);
  }
  // A typedef name (`wait_queue_head_t *wq`) may name a struct: the BTF check before generation says which.
  const base = root.type.base;
  if (root.type.pointerDepth !== 1 || base.kind === 'enum' || (base.kind === 'name' && base.name.split(/\s+/).every((w) => TYPE_KEYWORDS.has(w)))) {
    throw new GenerateError(s.path, `'${printable(root.name)}->' needs a pointer to a struct or union parameter`);
  }
  const groups: string[] = [];
  for (const step of steps) {
    if (step.arrow) groups.push(step.member);
    else groups[groups.length - 1] += `.${step.member}`;
  }
  if (groups.length > MAX_POINTER_HOPS) {
    throw new GenerateError(s.path, `member chain follows ${groups.length} pointers; at most ${MAX_POINTER_HOPS}`);
  }
  return { root, groups };
}

function emitMemberRead(e: Extract<Expr, { kind: 'member' }>, s: EmitState): string {
  const chain = flattenMember(e, s);
  return `BPF_CORE_READ(${paramVar(chain.root.name)}, ${chain.groups.join(', ')})`;
}

/** The kernel address of the string a STRCMP subject names: a char pointer, or a char array field. */
function emitStringAddress(subject: Expr, s: EmitState): string {
  if (subject.kind === 'param') {
    const name = useParam(subject.name, subject.param, s);
    return `(const void *)${paramVar(name)}`;
  }
  if (subject.kind !== 'member') {
    throw new GenerateError(s.path, 'STRCMP/STRNCMP compares a parameter or a member of one, e.g. name->name');
  }
  const chain = flattenMember(subject, s);
  const last = chain.groups[chain.groups.length - 1] ?? '';
  const holder = chain.groups.length > 1
    ? `BPF_CORE_READ(${paramVar(chain.root.name)}, ${chain.groups.slice(0, -1).join(', ')})`
    : paramVar(chain.root.name);
  // KC_STR_ADDR reads a pointer field, or takes the address of an array field (e.g. task->comm).
  return `({ typeof(${holder}) kc_holder = ${holder}; KC_STR_ADDR(kc_holder, ${last}); })`;
}

function emitStringCompare(e: Extract<Expr, { kind: 'strcmp' }>, s: EmitState): string {
  const bytes = [...Buffer.from(e.literal, 'utf8')];
  const nul = bytes.indexOf(0);
  const text = nul >= 0 ? bytes.slice(0, nul) : bytes; // C semantics: the literal ends at its first NUL
  if (text.length > MAX_STRING_LITERAL) {
    throw new GenerateError(s.path, `${e.fn} literal is ${text.length} bytes; at most ${MAX_STRING_LITERAL}`);
  }
  let count = text.length + 1; // STRCMP: the whole literal and its terminating NUL
  if (e.fn === 'STRNCMP') {
    if (e.length === null || !Number.isInteger(e.length) || e.length < 1) {
      throw new GenerateError(s.path, 'STRNCMP needs a positive constant length as its third argument');
    }
    count = Math.min(e.length, count);
  }
  const expected = [...text, 0].slice(0, count);
  const fn = `${s.prefix}_${s.compares.length}`;
  s.compares.push({ fn, expected });
  return `${fn}(${emitStringAddress(e.subject, s)})`;
}

/**
 * The inline function for one compare: reads at most `expected.length` bytes of the kernel string
 * (bpf_probe_read_kernel_str stops at its NUL) and compares byte by byte against immediates. The
 * loop is bounded by a constant and stops at the first difference, so bytes past the string's
 * end are never looked at.
 */
export function emitStringCompareFunction(c: StringCompare): string {
  const size = c.expected.length + 1;
  const lines = [
    `static __always_inline bool ${c.fn}(const void *addr)`,
    '{',
    `\tchar buf[${size}] = {};`,
    '',
    `\tif (bpf_probe_read_kernel_str(buf, sizeof(buf), addr) < 0)`,
    '\t\treturn false;',
  ];
  c.expected.forEach((byte, i) => lines.push(`\tif (buf[${i}] != (char)${byte})`, '\t\treturn false;'));
  lines.push('\treturn true;', '}');
  return lines.join('\n');
}

/** A readable, comment-safe rendering of a predicate for the generated source (strings hex-escaped). */
export function describeExpr(e: Expr): string {
  switch (e.kind) {
    case 'int':
      return e.value.toString();
    case 'char':
      return `'\\x${e.value.toString(16)}'`;
    case 'string':
      return `"${printable(e.value)}"`;
    case 'param':
      return printable(e.name);
    case 'member':
      return `${describeExpr(e.object)}${e.arrow ? '->' : '.'}${printable(e.member)}`;
    case 'unary':
      return `${e.op}${describeExpr(e.operand)}`;
    case 'binary':
      return `(${describeExpr(e.left)} ${e.op} ${describeExpr(e.right)})`;
    case 'conditional':
      return `(${describeExpr(e.test)} ? ${describeExpr(e.then)} : ${describeExpr(e.otherwise)})`;
    case 'strcmp':
      return `${e.fn}(${describeExpr(e.subject)}, "${printable(e.literal)}"${e.length === null ? '' : `, ${e.length}`})`;
  }
}
