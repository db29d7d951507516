// Parses a frame's `parameters`: the C parameter list of the kernel function, as in bcc's inject.py
// (`struct dentry *parent, const struct qstr *name`). Only what a predicate can use is accepted:
// scalars, typedef names, and pointers (structs and unions only by pointer: a struct passed by
// value does not arrive in one register).
import type { CType, Parameter } from './ast.js';
import { PredicateError } from './errors.js';
import { describeToken, tokenize, type Token } from './lexer.js';
import { BUILTIN_TYPE_WORDS, C_KEYWORDS, KERNEL_ANNOTATIONS, QUALIFIERS, reservedIdentifierProblem, STRING_HELPERS } from './c-names.js';

/** x86-64 passes six arguments in registers; fentry and kprobes on the test kernels read only those. */
export const MAX_PARAMETERS = 6;
const MAX_POINTER_DEPTH = 4;

export function parseParameters(text: string): Parameter[] {
  const tokens = tokenize(text);
  const cursor = new Cursor(tokens);
  const first = cursor.peek();
  if (first.kind === 'eof') return [];
  if (first.kind === 'ident' && first.text === 'void' && cursor.peek(1).kind === 'eof') return [];
  const params: Parameter[] = [];
  for (;;) {
    const param = parseOne(cursor, params.length);
    const clash = params.find((p) => p.name === param.name);
    if (clash) throw new PredicateError(`duplicate parameter name '${param.name}'`, cursor.lastNameStart);
    params.push(param);
    const sep = cursor.next();
    if (sep.kind === 'eof') break;
    if (!(sep.kind === 'punct' && sep.text === ',')) {
      throw new PredicateError(`expected ',' or the end of the parameter list, found ${describeToken(sep)}`, sep.start);
    }
    if (params.length >= MAX_PARAMETERS) {
      throw new PredicateError(`at most ${MAX_PARAMETERS} parameters (the register-passed arguments) can be used`, sep.start);
    }
  }
  return params;
}

class Cursor {
  private i = 0;
  lastNameStart = 0;
  constructor(private readonly tokens: Token[]) {}
  peek(ahead = 0): Token {
    return (this.tokens[this.i + ahead] ?? this.tokens[this.tokens.length - 1]) as Token;
  }
  next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }
}


function isWord(t: Token, set: ReadonlySet<string>): t is Extract<Token, { kind: 'ident' }> {
  return t.kind === 'ident' && set.has(t.text);
}

/** Reads qualifiers into `into` and kernel annotations into `annotations`. */
function readQualifiers(cursor: Cursor, into: string[], annotations: string[]): void {
  for (;;) {
    const t = cursor.peek();
    if (t.kind !== 'ident') return;
    if (QUALIFIERS.has(t.text)) {
      const q = t.text === '__restrict' ? 'restrict' : t.text;
      if (!into.includes(q)) into.push(q);
    } else if (KERNEL_ANNOTATIONS.has(t.text)) {
      if (!annotations.includes(t.text)) annotations.push(t.text);
    } else {
      return;
    }
    cursor.next();
  }
}

function parseOne(cursor: Cursor, index: number): Parameter {
  const qualifiers: string[] = [];
  const annotations: string[] = [];
  readQualifiers(cursor, qualifiers, annotations);
  const base = parseBase(cursor);
  readQualifiers(cursor, qualifiers, annotations);
  let pointerDepth = 0;
  while (cursor.peek().kind === 'punct' && (cursor.peek() as { text: string }).text === '*') {
    const star = cursor.next();
    pointerDepth++;
    if (pointerDepth > MAX_POINTER_DEPTH) throw new PredicateError(`at most ${MAX_POINTER_DEPTH} levels of '*'`, star.start);
    // Qualifiers of the pointer itself (`char *const p`) do not change how it is read: dropped.
    readQualifiers(cursor, [], annotations);
  }
  const type: CType = annotations.length > 0 ? { qualifiers, base, pointerDepth, annotations } : { qualifiers, base, pointerDepth };
  const nameToken = cursor.next();
  if (nameToken.kind !== 'ident') {
    if (nameToken.kind === 'punct' && nameToken.text === '(') {
      throw new PredicateError('function pointer parameters are not supported: declare it as void *name', nameToken.start);
    }
    throw new PredicateError(`expected a parameter name after the type, found ${describeToken(nameToken)}`, nameToken.start);
  }
  if (C_KEYWORDS.has(nameToken.text) || STRING_HELPERS.has(nameToken.text) || KERNEL_ANNOTATIONS.has(nameToken.text)) {
    throw new PredicateError(`'${nameToken.text}' is reserved and cannot name a parameter`, nameToken.start);
  }
  if (base.kind === 'name' && base.name === 'void' && pointerDepth === 0) {
    throw new PredicateError(`parameter '${nameToken.text}' cannot have type void (did you mean void *${nameToken.text}?)`, nameToken.start);
  }
  if ((base.kind === 'struct' || base.kind === 'union') && pointerDepth === 0) {
    throw new PredicateError(
      `${base.kind} parameters must be pointers (${base.kind} ${base.name} *${nameToken.text}): a ${base.kind} passed by value cannot be read`,
      nameToken.start,
    );
  }
  cursor.lastNameStart = nameToken.start;
  return { name: nameToken.text, type, index };
}

function parseBase(cursor: Cursor): CType['base'] {
  const t = cursor.next();
  if (t.kind !== 'ident') {
    throw new PredicateError(`expected a parameter type (such as struct dentry * or unsigned long), found ${describeToken(t)}`, t.start);
  }
  if (t.text === 'struct' || t.text === 'union' || t.text === 'enum') {
    const tag = cursor.next();
    if (tag.kind !== 'ident' || C_KEYWORDS.has(tag.text)) {
      throw new PredicateError(`expected a ${t.text} tag name after '${t.text}', found ${describeToken(tag)}`, tag.start);
    }
    const reservedTag = reservedIdentifierProblem(tag.text);
    if (reservedTag) throw new PredicateError(reservedTag, tag.start);
    if (cursor.peek().kind === 'punct' && (cursor.peek() as { text: string }).text === '(') {
      // `struct foo {` is rejected by the lexer; `(` here would be a function type.
      throw new PredicateError('function types are not supported', cursor.peek().start);
    }
    return { kind: t.text, name: tag.text };
  }
  if (BUILTIN_TYPE_WORDS.has(t.text)) {
    const words = [t.text];
    while (isWord(cursor.peek(), BUILTIN_TYPE_WORDS)) words.push((cursor.next() as { text: string }).text);
    return { kind: 'name', name: normaliseBuiltin(words, t.start) };
  }
  if (t.text === 'float' || t.text === 'double') {
    throw new PredicateError(`'${t.text}' parameters are not supported (BPF has no floating point)`, t.start);
  }
  if (C_KEYWORDS.has(t.text)) throw new PredicateError(`expected a parameter type, found the keyword '${t.text}'`, t.start);
  const reservedType = reservedIdentifierProblem(t.text);
  if (reservedType) throw new PredicateError(reservedType, t.start);
  // A typedef name (gfp_t, size_t, loff_t) is followed by the parameter's name or a '*'.
  const after = cursor.peek();
  if (after.kind === 'eof' || (after.kind === 'punct' && after.text === ',')) {
    throw new PredicateError(`'${t.text}' has no type: write the C type before the name (e.g. struct dentry *${t.text})`, t.start);
  }
  return { kind: 'name', name: t.text };
}

/** `unsigned long int` -> `unsigned long`; rejects combinations C rejects (`short long`). */
function normaliseBuiltin(words: string[], at: number): string {
  const count = (w: string): number => words.filter((x) => x === w).length;
  const signed = count('signed');
  const unsigned = count('unsigned');
  const longs = count('long');
  const shorts = count('short');
  const chars = count('char');
  const ints = count('int');
  const others = count('void') + count('_Bool');
  const bad = (): never => {
    throw new PredicateError(`'${words.join(' ')}' is not a C type`, at);
  };
  if (signed + unsigned > 1 || ints > 1 || longs > 2 || shorts > 1 || chars > 1) bad();
  if (others > 0) {
    if (words.length !== 1) bad();
    return words[0] as string;
  }
  const sizes = (shorts > 0 ? 1 : 0) + (longs > 0 ? 1 : 0) + (chars > 0 ? 1 : 0);
  if (sizes > 1) bad();
  if (chars > 0 && ints > 0) bad();
  let core: string;
  if (chars) core = 'char';
  else if (shorts) core = 'short';
  else if (longs === 2) core = 'long long';
  else if (longs === 1) core = 'long';
  else core = 'int';
  if (unsigned) return `unsigned ${core}`;
  // `signed` only changes the type of plain char.
  if (signed && core === 'char') return 'signed char';
  return core;
}
