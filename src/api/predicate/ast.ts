// The parsed form of a call-chain frame's `parameters` and `predicate`. The BPF generator emits C
// only from these trees, never from the user's text, so nothing unparsed reaches the compiler.

/** A C type as written in a parameter list: `const struct qstr *`, `unsigned long`, `gfp_t`. */
export interface CType {
  /** Qualifiers in source order, e.g. ['const']. */
  qualifiers: string[];
  /** The base: a struct/union/enum tag (`{kind:'struct', name:'qstr'}`) or a plain type name (`{kind:'name', name:'unsigned long'}`). */
  base: { kind: 'struct' | 'union' | 'enum'; name: string } | { kind: 'name'; name: string };
  /** Levels of `*`. */
  pointerDepth: number;
  /**
   * Kernel source annotations written in the signature (`__user`, `__rcu`), kept so validation can
   * refuse to read a user-space pointer as kernel memory. Not C types: never emitted. (Added by H1.)
   */
  annotations?: string[];
}

export interface Parameter {
  name: string;
  type: CType;
  /** 0-based position in the function's parameter list (the register/argument index). */
  index: number;
}

/** Source position, 0-based offset into the predicate string. */
export interface Span {
  start: number;
  end: number;
}

export type BinaryOperator =
  | '||' | '&&' | '|' | '^' | '&'
  | '==' | '!=' | '<' | '<=' | '>' | '>='
  | '<<' | '>>' | '+' | '-' | '*' | '/' | '%';
export type UnaryOperator = '!' | '-' | '~';

export type Expr =
  | { kind: 'int'; value: bigint; span: Span }
  | { kind: 'string'; value: string; span: Span }
  | { kind: 'char'; value: number; span: Span }
  | { kind: 'param'; name: string; param: Parameter; span: Span }
  /** `object->member` (arrow: true) or `object.member`. */
  | { kind: 'member'; object: Expr; member: string; arrow: boolean; span: Span }
  | { kind: 'unary'; op: UnaryOperator; operand: Expr; span: Span }
  | { kind: 'binary'; op: BinaryOperator; left: Expr; right: Expr; span: Span }
  | { kind: 'conditional'; test: Expr; then: Expr; otherwise: Expr; span: Span }
  /** STRCMP(s, "lit") / STRNCMP(s, "lit", n): compares kernel memory at s with a literal. */
  | { kind: 'strcmp'; fn: 'STRCMP' | 'STRNCMP'; subject: Expr; literal: string; length: number | null; span: Span };

/** A frame after parsing: what the generator consumes. */
export interface ParsedFrame {
  funcname: string;
  parameters: Parameter[];
  predicate: Expr | null;
}

/** A last frame without funcname (bpfki's and inject.py's form): a predicate on the site's own arguments. */
export interface SitePredicate {
  parameters: Parameter[];
  predicate: Expr;
}

export interface ParsedFailKernRequest {
  failtype: 0 | 1 | 2;
  /** Outermost first, as the manifest lists them (without a site frame). */
  callchain: ParsedFrame[];
  /** Evaluated in the site program after the chain check; absent when there is none. */
  site?: SitePredicate;
  headers: string[];
  /** 0..100; 0 means every call. */
  probability: number;
  /** 0 means no limit. */
  times: number;
}
