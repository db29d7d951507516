// Recursive-descent parser for frame predicates: one side-effect-free C expression over the frame's
// parameters. The grammar is C's own precedence ladder, cut down to what a BPF predicate can
// evaluate safely; everything else (statements, braces, assignments, casts, calls other than the
// STRCMP/STRNCMP helpers, undeclared names) is an error with its column.
import type { BinaryOperator, Expr, Parameter, Span, UnaryOperator } from './ast.js';
import { PredicateError } from './errors.js';
import { describeToken, MAX_STRING_LENGTH, tokenize, type Punct, type Token } from './lexer.js';
import { C_KEYWORDS, reservedIdentifierProblem, STRING_HELPERS, TYPE_WORDS } from './c-names.js';

/** The deepest expression tree accepted: real predicates nest a handful of levels. */
export const MAX_DEPTH = 100;

/** Binary operators by C precedence, loosest first. */
const BINARY_LEVELS: readonly (readonly BinaryOperator[])[] = [
  ['||'],
  ['&&'],
  ['|'],
  ['^'],
  ['&'],
  ['==', '!='],
  ['<', '<=', '>', '>='],
  ['<<', '>>'],
  ['+', '-'],
  ['*', '/', '%'],
];

const UNARY: readonly UnaryOperator[] = ['!', '-', '~'];

export function parsePredicate(text: string, params: readonly Parameter[]): Expr {
  const parser = new Parser(tokenize(text), params);
  const first = parser.peek();
  if (first.kind === 'eof') throw new PredicateError('empty predicate: write an expression, or omit the field', 0);
  const expr = parser.expression(0);
  const rest = parser.peek();
  if (rest.kind !== 'eof') {
    throw new PredicateError(`expected an operator or the end of the predicate, found ${describeToken(rest)}`, rest.start);
  }
  return expr;
}


function span(start: number, end: number): Span {
  return { start, end };
}

function depthOf(e: Expr): number {
  // Children's depths are cached as the tree is built, so this stays O(1) per node.
  return DEPTHS.get(e) ?? 1;
}
const DEPTHS = new WeakMap<Expr, number>();

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly params: readonly Parameter[],
  ) {}

  peek(ahead = 0): Token {
    return (this.tokens[this.i + ahead] ?? this.tokens[this.tokens.length - 1]) as Token;
  }
  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }
  private isPunct(t: Token, p: Punct): boolean {
    return t.kind === 'punct' && t.text === p;
  }
  private expect(p: Punct, what: string): Token {
    const t = this.next();
    if (!this.isPunct(t, p)) throw new PredicateError(`expected '${p}' ${what}, found ${describeToken(t)}`, t.start);
    return t;
  }

  /** Records a node's depth and rejects trees deeper than MAX_DEPTH. */
  private node<E extends Expr>(e: E, children: Expr[], at: number = e.span.start): E {
    const depth = 1 + Math.max(0, ...children.map(depthOf));
    if (depth > MAX_DEPTH) throw new PredicateError(`expression nests too deeply (more than ${MAX_DEPTH} levels)`, at);
    DEPTHS.set(e, depth);
    return e;
  }

  /** conditional := logical-or ('?' expression ':' conditional)? */
  expression(nesting: number): Expr {
    if (nesting > MAX_DEPTH) throw new PredicateError(`expression nests too deeply (more than ${MAX_DEPTH} levels)`, this.peek().start);
    const test = this.binary(0, nesting);
    if (!this.isPunct(this.peek(), '?')) return test;
    this.next();
    const then = this.expression(nesting + 1);
    this.expect(':', "in the conditional 'test ? a : b'");
    const otherwise = this.expression(nesting + 1);
    return this.node({ kind: 'conditional', test, then, otherwise, span: span(test.span.start, otherwise.span.end) }, [test, then, otherwise]);
  }

  /** Left-associative binary levels, iterative within a level so long chains do not recurse. */
  private binary(level: number, nesting: number): Expr {
    const ops = BINARY_LEVELS[level];
    if (ops === undefined) return this.unary(nesting);
    let left = this.binary(level + 1, nesting);
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'punct' || !(ops as readonly string[]).includes(t.text)) return left;
      this.next();
      const right = this.binary(level + 1, nesting);
      if ((t.text === '/' || t.text === '%') && right.kind === 'int' && right.value === 0n) {
        throw new PredicateError(`'${t.text} 0' divides by zero (BPF would make it 0, C leaves it undefined): remove it`, right.span.start);
      }
      left = this.node(
        { kind: 'binary', op: t.text as BinaryOperator, left, right, span: span(left.span.start, right.span.end) },
        [left, right],
        t.start,
      );
    }
  }

  private unary(nesting: number): Expr {
    const t = this.peek();
    if (t.kind === 'punct') {
      if ((UNARY as readonly string[]).includes(t.text)) {
        this.next();
        if (nesting > MAX_DEPTH) throw new PredicateError(`expression nests too deeply (more than ${MAX_DEPTH} levels)`, t.start);
        const operand = this.unary(nesting + 1);
        return this.node({ kind: 'unary', op: t.text as UnaryOperator, operand, span: span(t.start, operand.span.end) }, [operand]);
      }
      if (t.text === '*') throw new PredicateError("pointer dereference '*' is not supported: use '->' to read a field", t.start);
      if (t.text === '&') throw new PredicateError("address-of '&' is not supported in predicates", t.start);
      if (t.text === '+') throw new PredicateError("unary '+' is not supported: remove it", t.start);
    }
    return this.postfix(nesting);
  }

  /** postfix := primary ('->' ident | '.' ident)* */
  private postfix(nesting: number): Expr {
    let object = this.primary(nesting);
    for (;;) {
      const t = this.peek();
      if (this.isPunct(t, '->') || this.isPunct(t, '.')) {
        this.next();
        const arrow = this.isPunct(t, '->');
        const member = this.next();
        if (member.kind !== 'ident' || C_KEYWORDS.has(member.text)) {
          throw new PredicateError(`expected a field name after '${arrow ? '->' : '.'}', found ${describeToken(member)}`, member.start);
        }
        const reserved = reservedIdentifierProblem(member.text);
        if (reserved) throw new PredicateError(reserved, member.start);
        this.checkAccess(object, arrow, t.start);
        object = this.node(
          { kind: 'member', object, member: member.text, arrow, span: span(object.span.start, member.end) },
          [object],
        );
        continue;
      }
      if (this.isPunct(t, '(')) {
        throw new PredicateError('only STRCMP and STRNCMP can be called in a predicate', t.start);
      }
      return object;
    }
  }

  /** What can be checked without kernel type information: how a parameter itself is accessed. */
  private checkAccess(object: Expr, arrow: boolean, at: number): void {
    if (object.kind === 'param') {
      const type = object.param.type;
      if (arrow) this.checkKernelPointer(object, at);
      if (arrow && type.pointerDepth !== 1) {
        const why = type.pointerDepth === 0 ? 'is not a pointer' : `is a pointer to a pointer (${type.pointerDepth} levels of '*')`;
        throw new PredicateError(`'->' needs a pointer to a struct or union, but parameter '${object.name}' ${why}`, at);
      }
      if (!arrow) {
        throw new PredicateError(
          type.pointerDepth > 0
            ? `parameter '${object.name}' is a pointer: use '->' instead of '.'`
            : `parameter '${object.name}' is not a struct: '.' cannot be used on it`,
          at,
        );
      }
      if (type.base.kind === 'name' && isBuiltin(type.base.name)) {
        throw new PredicateError(`'->' needs a pointer to a struct or union, but parameter '${object.name}' is ${type.base.name} *`, at);
      }
      return;
    }
    if (object.kind !== 'member') {
      throw new PredicateError(`'${arrow ? '->' : '.'}' can only follow a parameter or a field`, at);
    }
  }

  /** Predicates read kernel memory only; a `__user` pointer would read nothing (or the wrong bytes). */
  private checkKernelPointer(param: Extract<Expr, { kind: 'param' }>, at: number): void {
    if (param.param.type.annotations?.includes('__user')) {
      throw new PredicateError(
        `parameter '${param.name}' is a user-space pointer (__user) and predicates read kernel memory only: ` +
          'choose a kernel function that receives a kernel copy (e.g. do_filp_open with struct filename *pathname)',
        at,
      );
    }
  }

  private primary(nesting: number): Expr {
    const t = this.next();
    switch (t.kind) {
      case 'int':
        return this.node({ kind: 'int', value: t.value, span: span(t.start, t.end) }, []);
      case 'char':
        return this.node({ kind: 'char', value: t.value, span: span(t.start, t.end) }, []);
      case 'string': {
        const before = this.tokens[this.i - 2];
        if (before?.kind === 'punct' && (before.text === '==' || before.text === '!=')) {
          throw new PredicateError(
            `compare strings with STRCMP(x, ${JSON.stringify(t.value.slice(0, 40))}), not '${before.text}' (that would compare addresses)`,
            t.start,
          );
        }
        throw new PredicateError('a string literal can only be the second argument of STRCMP or STRNCMP', t.start);
      }
      case 'eof':
        throw new PredicateError('expected an expression, found the end', t.start);
      case 'punct': {
        if (t.text === '(') {
          const inner = this.peek();
          if (inner.kind === 'ident' && TYPE_WORDS.has(inner.text) && !this.params.some((p) => p.name === inner.text)) {
            throw new PredicateError(`casts are not allowed ('(${inner.text} ...)' looks like a cast)`, t.start);
          }
          if (nesting > MAX_DEPTH) throw new PredicateError(`expression nests too deeply (more than ${MAX_DEPTH} levels)`, t.start);
          const expr = this.expression(nesting + 1);
          this.expect(')', 'to close the parenthesis');
          return expr;
        }
        throw new PredicateError(`expected an expression, found ${describeToken(t)}`, t.start);
      }
      case 'ident':
        return this.identifier(t, nesting);
    }
  }

  private identifier(t: Extract<Token, { kind: 'ident' }>, nesting: number): Expr {
    if (STRING_HELPERS.has(t.text)) return this.stringHelper(t, nesting);
    const param = this.params.find((p) => p.name === t.text);
    if (param) return this.node({ kind: 'param', name: param.name, param, span: span(t.start, t.end) }, []);
    // bcc's inject.py writes `(true)` for "always"; vmlinux.h defines true and false.
    if (t.text === 'true' || t.text === 'false') {
      return this.node({ kind: 'int', value: t.text === 'true' ? 1n : 0n, span: span(t.start, t.end) }, []);
    }
    if (t.text === 'sizeof') throw new PredicateError('sizeof is not supported in predicates', t.start);
    if (C_KEYWORDS.has(t.text)) {
      throw new PredicateError(`the C keyword '${t.text}' cannot be used: a predicate is one expression over the parameters`, t.start);
    }
    if (this.isPunct(this.peek(), '(')) {
      throw new PredicateError(`calling '${t.text}' is not allowed: only STRCMP and STRNCMP can be called`, t.start);
    }
    if (this.params.length === 0) {
      throw new PredicateError(
        `'${t.text}' is not declared: set parameters to the function's C parameter list (e.g. "struct dentry *parent, const struct qstr *name") to use it`,
        t.start,
      );
    }
    const names = this.params.map((p) => p.name).join(', ');
    throw new PredicateError(`'${t.text}' is not a parameter (declared: ${names})`, t.start);
  }

  /** STRCMP(subject, "literal") or STRNCMP(subject, "literal", n). */
  private stringHelper(t: Extract<Token, { kind: 'ident' }>, nesting: number): Expr {
    const fn = t.text as 'STRCMP' | 'STRNCMP';
    const usage = fn === 'STRCMP' ? 'STRCMP(name->name, "bananas")' : 'STRNCMP(name->name, "bananas", 8)';
    const open = this.next();
    if (!this.isPunct(open, '(')) throw new PredicateError(`expected '(' after ${fn}: ${usage}`, open.start);
    const subject = this.expression(nesting + 1);
    if (subject.kind !== 'member' && subject.kind !== 'param') {
      throw new PredicateError(`the first argument of ${fn} must be a parameter or a field (${usage})`, subject.span.start);
    }
    if (subject.kind === 'param' && subject.param.type.pointerDepth === 0) {
      throw new PredicateError(`the first argument of ${fn} must point to a string, but '${subject.name}' is not a pointer`, subject.span.start);
    }
    if (subject.kind === 'param') this.checkKernelPointer(subject, subject.span.start);
    this.expect(',', `after the first argument of ${fn}: ${usage}`);
    const lit = this.next();
    if (lit.kind !== 'string') {
      throw new PredicateError(`the second argument of ${fn} must be a string literal in double quotes: ${usage}`, lit.start);
    }
    let length: number | null = null;
    if (fn === 'STRNCMP') {
      this.expect(',', `after the string: STRNCMP takes a length, ${usage}`);
      const n = this.next();
      if (n.kind !== 'int') throw new PredicateError(`the third argument of STRNCMP must be an integer length: ${usage}`, n.start);
      if (n.value < 1n || n.value > BigInt(MAX_STRING_LENGTH + 1)) {
        throw new PredicateError(`the STRNCMP length must be 1..${MAX_STRING_LENGTH + 1}, got ${n.value}`, n.start);
      }
      length = Number(n.value);
    }
    const close = this.next();
    if (!this.isPunct(close, ')')) {
      throw new PredicateError(`expected ')' to close ${fn}(, found ${describeToken(close)}: ${usage}`, close.start);
    }
    return this.node(
      { kind: 'strcmp', fn, subject, literal: lit.value, length, span: span(t.start, close.end) },
      [subject],
    );
  }
}

function isBuiltin(name: string): boolean {
  return /^(?:(?:un)?signed )?(?:char|short|int|long|long long)$|^(?:void|_Bool)$/.test(name);
}
