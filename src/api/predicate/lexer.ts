// Tokenizer for the C subset that call-chain `parameters` and `predicate` fields may use.
// Hand-written on purpose: the npm C parsers (tree-sitter grammars, cparser ports) accept the whole
// language (statement expressions, casts, preprocessor lines) and recover from errors, which is the
// opposite of what a privileged compiler input needs. This lexer knows only the tokens of the subset
// and rejects everything else with the offending column.
import { PredicateError } from './errors.js';

export type Token =
  | { kind: 'ident'; text: string; start: number; end: number }
  | { kind: 'int'; value: bigint; start: number; end: number }
  | { kind: 'char'; value: number; start: number; end: number }
  | { kind: 'string'; value: string; start: number; end: number }
  | { kind: 'punct'; text: Punct; start: number; end: number }
  | { kind: 'eof'; start: number; end: number };

export type Punct =
  | '->' | '.' | '!' | '~' | '-' | '+' | '*' | '/' | '%' | '<<' | '>>'
  | '<' | '<=' | '>' | '>=' | '==' | '!=' | '&' | '^' | '|' | '&&' | '||'
  | '?' | ':' | '(' | ')' | ',';

/** The most characters a parameter list or predicate may have: real ones are under 200. */
export const MAX_SOURCE_LENGTH = 4096;
/** The longest string literal (STRCMP compares at most this many bytes). */
export const MAX_STRING_LENGTH = 255;

const PUNCTS_3: readonly string[] = ['<<=', '>>='];
const PUNCTS_2: readonly string[] = ['->', '<<', '>>', '<=', '>=', '==', '!=', '&&', '||', '++', '--', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '::', '/*', '//'];
const PUNCTS_1 = '.!~-+*/%<>&^|?:(),';

const U64_MAX = (1n << 64n) - 1n;

/** A token as error messages name it: `'->'`, `a number`, `the end`. */
export function describeToken(t: Token): string {
  switch (t.kind) {
    case 'eof': return 'the end';
    case 'ident': return `'${t.text}'`;
    case 'punct': return `'${t.text}'`;
    case 'int': return 'a number';
    case 'char': return 'a character literal';
    case 'string': return 'a string literal';
  }
}

/** Tokens that C has but the subset does not, with the reason a user should read. */
function rejectedOperator(op: string): string | null {
  switch (op) {
    case '++':
    case '--':
      return `'${op}' (increment/decrement) is not allowed: predicates cannot change anything`;
    case '<<=': case '>>=': case '+=': case '-=': case '*=': case '/=': case '%=': case '&=': case '|=': case '^=':
      return `assignment '${op}' is not allowed: predicates cannot change anything`;
    case '/*':
    case '//':
      return 'comments are not allowed in predicates';
    case '::':
      return "unexpected '::' (this is C, not C++)";
    default:
      return null;
  }
}

function describeChar(ch: string): string {
  switch (ch) {
    case ';': return "';' is not allowed: a predicate is one expression, not statements";
    case '{': case '}': return `'${ch}' is not allowed: blocks and statement expressions cannot be used`;
    case '[': case ']': return `'${ch}' (array indexing) is not supported: use '->' and '.' to reach fields`;
    case '=': return "assignment '=' is not allowed: use '==' to compare";
    case '#': return "'#' is not allowed: preprocessor lines (#include, #define) cannot be used; list headers in failKernRequest.headers";
    case '\\': return "'\\' is only allowed inside string and character literals";
    case "'": return 'unterminated character literal';
    case '"': return 'unterminated string literal';
    default: {
      const code = ch.codePointAt(0) ?? 0;
      const shown = code < 0x20 || code === 0x7f ? `U+${code.toString(16).toUpperCase().padStart(4, '0')}` : `'${ch}'`;
      return `unexpected character ${shown}`;
    }
  }
}

function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}
function isIdentPart(c: string): boolean {
  return isIdentStart(c) || (c >= '0' && c <= '9');
}
function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

export function tokenize(source: string): Token[] {
  if (source.length > MAX_SOURCE_LENGTH) {
    throw new PredicateError(`too long: ${source.length} characters, at most ${MAX_SOURCE_LENGTH}`, MAX_SOURCE_LENGTH);
  }
  const tokens: Token[] = [];
  let i = 0;
  const n = source.length;
  while (i < n) {
    const c = source[i] as string;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (isIdentStart(c)) {
      while (i < n && isIdentPart(source[i] as string)) i++;
      tokens.push({ kind: 'ident', text: source.slice(start, i), start, end: i });
      continue;
    }
    if (isDigit(c)) {
      i = readNumber(source, i, tokens);
      continue;
    }
    if (c === '"') {
      i = readString(source, i, tokens);
      continue;
    }
    if (c === "'") {
      i = readChar(source, i, tokens);
      continue;
    }
    const three = source.slice(i, i + 3);
    if (PUNCTS_3.includes(three)) throw new PredicateError(rejectedOperator(three) as string, start);
    const two = source.slice(i, i + 2);
    if (PUNCTS_2.includes(two)) {
      const reason = rejectedOperator(two);
      if (reason) throw new PredicateError(reason, start);
      tokens.push({ kind: 'punct', text: two as Punct, start, end: i + 2 });
      i += 2;
      continue;
    }
    if (c === '.' && isDigit(source[i + 1] ?? '')) {
      throw new PredicateError('floating-point numbers are not supported (BPF has no floating point)', start);
    }
    if (PUNCTS_1.includes(c)) {
      tokens.push({ kind: 'punct', text: c as Punct, start, end: i + 1 });
      i++;
      continue;
    }
    throw new PredicateError(describeChar(c), start);
  }
  tokens.push({ kind: 'eof', start: n, end: n });
  return tokens;
}

function readNumber(source: string, start: number, out: Token[]): number {
  let i = start;
  let digits: string;
  let radix: 16 | 10 | 8 | 2;
  const lower = source.slice(start, start + 2).toLowerCase();
  if (lower === '0x' || lower === '0b') {
    radix = lower === '0x' ? 16 : 2;
    i += 2;
    const begin = i;
    const valid = radix === 16 ? /[0-9a-fA-F]/ : /[01]/;
    while (i < source.length && valid.test(source[i] as string)) i++;
    digits = source.slice(begin, i);
    if (digits === '') throw new PredicateError(`expected ${radix === 16 ? 'hex' : 'binary'} digits after '${source.slice(start, start + 2)}'`, i);
  } else {
    while (i < source.length && isDigit(source[i] as string)) i++;
    digits = source.slice(start, i);
    radix = digits.length > 1 && digits.startsWith('0') ? 8 : 10;
    if (radix === 8 && /[89]/.test(digits)) throw new PredicateError(`invalid octal literal '${digits}' (a leading 0 means octal)`, start);
  }
  // Integer suffixes (u, l, ul, ull, ll in any case) change only the C type, not the value.
  const suffix = /^(?:[uU](?:ll|LL|[lL])?|(?:ll|LL|[lL])[uU]?)/.exec(source.slice(i));
  if (suffix) i += suffix[0].length;
  const next = source[i];
  if (next !== undefined && (isIdentPart(next) || next === '.')) {
    throw new PredicateError(
      next === '.' ? 'floating-point numbers are not supported (BPF has no floating point)' : `invalid character '${next}' in number`,
      i,
    );
  }
  const prefix = radix === 16 ? '0x' : radix === 2 ? '0b' : radix === 8 ? '0o' : '';
  const value = BigInt(prefix + (radix === 8 ? digits.slice(1) || '0' : digits));
  if (value > U64_MAX) throw new PredicateError('integer literal does not fit in 64 bits', start);
  out.push({ kind: 'int', value, start, end: i });
  return i;
}

/** Reads one (possibly escaped) character at `i` inside a literal; returns its code and the next index. */
function readLiteralChar(source: string, i: number, quote: '"' | "'"): { code: number; next: number } {
  const c = source[i];
  if (c === undefined || c === '\n' || c === '\r') {
    throw new PredicateError(quote === '"' ? 'unterminated string literal: expected a closing "' : "unterminated character literal: expected a closing '", i);
  }
  const code = c.codePointAt(0) as number;
  if (code < 0x20 || code === 0x7f) throw new PredicateError(`control character U+${code.toString(16).padStart(4, '0')} in a literal: write it as an escape such as \\x${code.toString(16).padStart(2, '0')}`, i);
  if (code > 0x7e) throw new PredicateError('only ASCII characters are allowed in literals: write other bytes as \\xHH escapes', i);
  if (c !== '\\') return { code, next: i + 1 };
  const e = source[i + 1];
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, '\\': 92, '"': 34, "'": 39, a: 7, b: 8, f: 12, v: 11, '?': 63 };
  if (e !== undefined && e in simple) return { code: simple[e] as number, next: i + 2 };
  if (e === 'x') {
    const hex = /^[0-9a-fA-F]{1,2}/.exec(source.slice(i + 2));
    if (!hex) throw new PredicateError('expected 1 or 2 hex digits after \\x', i + 2);
    return { code: parseInt(hex[0], 16), next: i + 2 + hex[0].length };
  }
  const oct = /^[0-7]{1,3}/.exec(source.slice(i + 1));
  if (oct) {
    const value = parseInt(oct[0], 8);
    if (value > 255) throw new PredicateError('octal escape out of range (at most \\377)', i);
    return { code: value, next: i + 1 + oct[0].length };
  }
  throw new PredicateError(`unknown escape '\\${e ?? ''}': use \\n, \\t, \\\\, \\", \\', \\0 or \\xHH`, i);
}

function readString(source: string, start: number, out: Token[]): number {
  let i = start + 1;
  let value = '';
  while (source[i] !== '"') {
    const { code, next } = readLiteralChar(source, i, '"');
    value += String.fromCharCode(code);
    i = next;
    if (value.length > MAX_STRING_LENGTH) throw new PredicateError(`string literal too long: at most ${MAX_STRING_LENGTH} bytes`, start);
  }
  out.push({ kind: 'string', value, start, end: i + 1 });
  return i + 1;
}

function readChar(source: string, start: number, out: Token[]): number {
  if (source[start + 1] === "'") throw new PredicateError("empty character literal ''", start);
  const { code, next } = readLiteralChar(source, start + 1, "'");
  if (source[next] !== "'") {
    // bcc's inject.py examples write STRCMP(name->name, 'bananas'): C strings need double quotes.
    throw new PredicateError("a character literal holds one character: write strings in double quotes (\"bananas\")", start);
  }
  out.push({ kind: 'char', value: code, start, end: next + 1 });
  return next + 1;
}
