// Checks a parsed call chain against the kernel's own types (BTF) before any C is generated: the
// declared `parameters` must be the function's real prototype (a prefix of it: count up to the last
// declared, order, types; names may differ), every member a predicate reads must exist on the real
// type, and only what the kernel's types make kernel pointers may be dereferenced. Otherwise an
// integer argument declared `struct qstr *` would let a predicate read any kernel address.
import type { CType, Expr, Parameter, ParsedFailKernRequest, ParsedFrame } from '../api/predicate/ast.js';
import { siteFor } from './sites.js';
import type { FieldError } from '../api/types.js';
import { BtfFormatError, formatPrototype, formatType, resolveType, type BtfReader, type BtfType } from './btf-reader.js';

/** The type of a builtin C type word on LP64 (x86-64, arm64): size in bytes and signedness. */
const BUILTIN_INTS: Readonly<Record<string, { size: number; signed: boolean }>> = {
  char: { size: 1, signed: true }, 'signed char': { size: 1, signed: true }, 'unsigned char': { size: 1, signed: false },
  short: { size: 2, signed: true }, 'unsigned short': { size: 2, signed: false },
  int: { size: 4, signed: true }, 'unsigned int': { size: 4, signed: false },
  long: { size: 8, signed: true }, 'unsigned long': { size: 8, signed: false },
  'long long': { size: 8, signed: true }, 'unsigned long long': { size: 8, signed: false },
  _Bool: { size: 1, signed: false },
};

/**
 * Syscall entry points and the ksys_ helpers they call: their pointer arguments (other than the wrapper's `struct pt_regs *`) are
 * user-space addresses, whatever BTF says (kernels built without btf_type_tag drop `__user`).
 */
const SYSCALL_ENTRY = /^(?:__(?:x64|ia32|arm64|riscv|s390x?|powerpc)_(?:compat_)?sys_|__se_(?:compat_)?sys_|__do_(?:compat_)?sys_|(?:compat_)?sys_|ksys_)/;

/** A type reduced to what matters for reading it: typedefs and qualifiers gone. */
type Shape =
  | { k: 'void' }
  | { k: 'int'; size: number; signed: boolean }
  | { k: 'enum'; size: number }
  | { k: 'ptr'; to: Shape; user: boolean }
  | { k: 'struct' | 'union'; name: string }
  | { k: 'array' | 'func' | 'float' | 'other' };

class TypeProblem extends Error {}

function shapeOf(btf: BtfReader, id: number, depth = 0): Shape {
  const { type } = resolveType(btf, id);
  switch (type.kind) {
    case 'void': return { k: 'void' };
    case 'int': return { k: 'int', size: type.size, signed: type.signed };
    case 'enum': return { k: 'enum', size: type.size };
    case 'struct': case 'union': return { k: type.kind, name: type.name };
    case 'fwd': return { k: type.union ? 'union' : 'struct', name: type.name };
    case 'ptr': {
      if (depth > 8) return { k: 'ptr', to: { k: 'other' }, user: false };
      const user = resolveType(btf, type.type).tags.includes('user');
      return { k: 'ptr', to: shapeOf(btf, type.type, depth + 1), user };
    }
    case 'array': return { k: 'array' };
    case 'func_proto': return { k: 'func' };
    case 'float': return { k: 'float' };
    default: return { k: 'other' };
  }
}

/** The shape of a type as the manifest writes it, resolving typedef names through this kernel's BTF. */
function declaredShape(btf: BtfReader, type: CType): Shape {
  let shape: Shape;
  const base = type.base;
  if (base.kind === 'name') {
    const builtin = BUILTIN_INTS[base.name];
    if (base.name === 'void') shape = { k: 'void' };
    else if (builtin) shape = { k: 'int', ...builtin };
    else {
      const typedef = btf.find(base.name, ['typedef']);
      if (!typedef) throw new TypeProblem(`type '${base.name}' is not a typedef of this kernel`);
      shape = shapeOf(btf, typedef.id);
    }
  } else if (base.kind === 'enum') {
    const e = btf.find(base.name, ['enum']);
    if (!e) throw new TypeProblem(`enum ${base.name} is not a type of this kernel`);
    shape = { k: 'enum', size: e.size };
  } else {
    if (!btf.find(base.name, [base.kind, 'fwd'])) throw new TypeProblem(`${base.kind} ${base.name} is not a type of this kernel`);
    shape = { k: base.kind, name: base.name };
  }
  for (let i = 0; i < type.pointerDepth; i++) shape = { k: 'ptr', to: shape, user: false };
  return shape;
}

/** Whether a declared shape reads the real one correctly. `pointee`: behind a pointer, where char signedness does not matter. */
function sameShape(decl: Shape, real: Shape, pointee: boolean): boolean {
  if (decl.k === 'ptr' || real.k === 'ptr') {
    if (decl.k !== 'ptr' || real.k !== 'ptr') return false;
    // `void *` names any pointer without claiming what it points at (it cannot be dereferenced).
    if (decl.to.k === 'void') return true;
    return sameShape(decl.to, real.to, true);
  }
  const scalar = (s: Shape): { size: number; signed: boolean | null } | null =>
    s.k === 'int' ? { size: s.size, signed: s.signed } : s.k === 'enum' ? { size: s.size, signed: null } : null;
  const a = scalar(decl);
  const b = scalar(real);
  if (a || b) {
    if (!a || !b || a.size !== b.size) return false;
    if (a.signed === null || b.signed === null || a.size === 1) return true;
    return a.signed === b.signed || pointee;
  }
  if (decl.k === 'struct' || decl.k === 'union') return real.k === decl.k && real.name === decl.name;
  return decl.k === real.k && decl.k === 'void';
}

function describeCType(type: CType): string {
  const base = type.base.kind === 'name' ? type.base.name : `${type.base.kind} ${type.base.name}`;
  const quals = type.qualifiers.length > 0 ? `${type.qualifiers.join(' ')} ` : '';
  return `${quals}${base}${type.pointerDepth > 0 ? ` ${'*'.repeat(type.pointerDepth)}` : ''}`;
}

interface FrameTypes {
  funcname: string;
  prototype: string;
  /** Real BTF type id of each declared parameter, by name. */
  params: Map<string, { id: number; user: boolean }>;
}

/**
 * Problems of one frame against BTF, with paths relative to the frame (`parameters`, `predicate`).
 * Empty when the frame is safe to generate.
 */
export function checkFrameAgainstBtf(frame: ParsedFrame, btf: BtfReader): FieldError[] {
  if (frame.parameters.length === 0 && frame.predicate === null) return [];
  try {
    const found = btf.func(frame.funcname);
    if (!found) {
      return [{
        path: 'parameters',
        message: `${frame.funcname} has no BTF entry on this kernel, so its parameters cannot be checked against its real prototype; ` +
          'predicates need a function the kernel describes in /sys/kernel/btf/vmlinux (drop parameters and predicate, or choose another frame)',
      }];
    }
    const prototype = formatPrototype(btf, frame.funcname, found.proto);
    const real = found.proto.params.filter((p) => p.type !== 0);
    const errors: FieldError[] = [];
    const types: FrameTypes = { funcname: frame.funcname, prototype, params: new Map() };
    const syscall = SYSCALL_ENTRY.test(frame.funcname);
    for (const param of frame.parameters) {
      const problem = parameterProblem(btf, param, real[param.index]);
      if (problem) {
        errors.push({ path: 'parameters', message: `${problem}; the kernel declares ${prototype}` });
        continue;
      }
      const realParam = real[param.index];
      if (realParam) types.params.set(param.name, { id: realParam.type, user: isUserParam(btf, realParam.type, syscall) });
    }
    if (errors.length > 0) return errors;
    if (frame.predicate) {
      try {
        checkExpr(frame.predicate, btf, types);
      } catch (e) {
        if (e instanceof TypeProblem) return [{ path: 'predicate', message: `${e.message} (the kernel declares ${prototype})` }];
        throw e;
      }
    }
    return [];
  } catch (e) {
    if (e instanceof BtfFormatError) return [{ path: 'parameters', message: `the kernel BTF could not be read: ${e.message}` }];
    if (e instanceof TypeProblem) return [{ path: 'parameters', message: e.message }];
    throw e;
  }
}

function isUserParam(btf: BtfReader, id: number, syscall: boolean): boolean {
  const shape = shapeOf(btf, id);
  if (shape.k !== 'ptr') return false;
  if (shape.user) return true;
  return syscall && !(shape.to.k === 'struct' && shape.to.name === 'pt_regs');
}

/** Why a declared parameter does not read the real one; a user pointer may be declared, checkExpr refuses reading it. */
function parameterProblem(btf: BtfReader, param: Parameter, real: { name: string; type: number } | undefined): string | null {
  const ordinal = `parameter ${param.index + 1} '${param.name}'`;
  if (!real) return `${ordinal} does not exist: the function takes ${param.index === 0 ? 'no' : `only ${param.index}`} parameter${param.index === 1 ? '' : 's'}`;
  const decl = declaredShape(btf, param.type);
  const realShape = shapeOf(btf, real.type);
  if (!sameShape(decl, realShape, false)) {
    const kernelType = formatType(btf, real.type);
    const hint = decl.k === 'ptr' && realShape.k !== 'ptr' ? ' (an integer cannot be declared a pointer)' : '';
    return `${ordinal} is declared ${describeCType(param.type)} but the kernel passes ${kernelType}${hint}`;
  }
  return null;
}

/** What an expression evaluates to, as C types it: a number, a pointer, or the literal 0 (a null pointer too). */
type ValueKind = 'number' | 'pointer' | 'zero';

/** The kind of a real (BTF) type a predicate reads; arrays, structs and functions cannot be read as a value. */
function valueKindOf(btf: BtfReader, id: number, what: string): ValueKind {
  const { type } = resolveType(btf, id);
  if (type.kind === 'int' || type.kind === 'enum') return 'number';
  if (type.kind === 'ptr') return 'pointer';
  throw new TypeProblem(`'${what}' is ${formatType(btf, id)}, not a number or pointer: compare one of its members`);
}

/**
 * Checks every member read and every operator against the real types, and returns the
 * expression's kind. Pointers may be tested (`!p`, `p && ...`, `p ? a : b`) and compared (with
 * `==`/`!=` to another pointer or 0, or ordered against another pointer); arithmetic, bitwise
 * operators and shifts take numbers only, as C requires (clang refuses `p * 2`, `-p`, `p << 1`).
 */
function checkExpr(e: Expr, btf: BtfReader, types: FrameTypes): ValueKind {
  switch (e.kind) {
    case 'int': return e.value === 0n ? 'zero' : 'number';
    case 'char': case 'string': return 'number';
    case 'param': {
      const root = types.params.get(e.name);
      if (!root) throw new TypeProblem(`'${e.name}' is not a declared parameter of ${types.funcname}`);
      return valueKindOf(btf, root.id, e.name);
    }
    case 'member':
      return valueKindOf(btf, memberType(e, btf, types).id, describePath(e));
    case 'unary': {
      const operand = checkExpr(e.operand, btf, types);
      if (e.op !== '!' && operand === 'pointer') throw new TypeProblem(`'${e.op}' needs a number, but ${describeOperand(e.operand)} is a pointer (test a pointer with '!' or compare it with == 0)`);
      return e.op === '-' && operand === 'zero' ? 'zero' : 'number';
    }
    case 'binary': {
      const left = checkExpr(e.left, btf, types);
      const right = checkExpr(e.right, btf, types);
      const pointers = [left, right].filter((k) => k === 'pointer').length;
      if (pointers === 0 || e.op === '||' || e.op === '&&') return 'number';
      if (e.op === '==' || e.op === '!=') {
        if (pointers === 2 || left === 'zero' || right === 'zero') return 'number';
        const number = left === 'pointer' ? e.right : e.left;
        throw new TypeProblem(`'${e.op}' compares a pointer with ${describeOperand(number)}, a number: compare a pointer with another pointer or with 0`);
      }
      if ((e.op === '<' || e.op === '<=' || e.op === '>' || e.op === '>=') && pointers === 2) return 'number';
      const pointer = left === 'pointer' ? e.left : e.right;
      throw new TypeProblem(`'${e.op}' needs numbers, but ${describeOperand(pointer)} is a pointer (pointers can be tested with '!' or compared with == and !=)`);
    }
    case 'conditional': {
      checkExpr(e.test, btf, types);
      const a = checkExpr(e.then, btf, types);
      const b = checkExpr(e.otherwise, btf, types);
      if (a === 'pointer' || b === 'pointer') {
        if ((a === 'pointer' || a === 'zero') && (b === 'pointer' || b === 'zero')) return 'pointer';
        throw new TypeProblem(`the two results of '? :' must both be numbers or both be pointers, but ${describeOperand(a === 'pointer' ? e.then : e.otherwise)} is a pointer and ${describeOperand(a === 'pointer' ? e.otherwise : e.then)} a number`);
      }
      return a === 'zero' && b === 'zero' ? 'zero' : 'number';
    }
    case 'strcmp':
      checkStringSubject(e.subject, e.fn, btf, types);
      return 'number';
  }
}

function describeOperand(e: Expr): string {
  return e.kind === 'param' || e.kind === 'member' ? `'${describePath(e)}'` : 'an expression';
}

function describePath(e: Expr): string {
  if (e.kind === 'param') return e.name;
  if (e.kind === 'member') return `${describePath(e.object)}${e.arrow ? '->' : '.'}${e.member}`;
  return '(expression)';
}

/** The real type a member chain reads, checking each step exists and each `->` follows a kernel pointer. */
function memberType(e: Extract<Expr, { kind: 'member' }>, btf: BtfReader, types: FrameTypes): { id: number } {
  const steps: { member: string; arrow: boolean }[] = [];
  let node: Expr = e;
  while (node.kind === 'member') {
    steps.unshift({ member: node.member, arrow: node.arrow });
    node = node.object;
  }
  if (node.kind !== 'param') throw new TypeProblem(`member access must start at a parameter`);
  const root = types.params.get(node.name);
  if (!root) throw new TypeProblem(`'${node.name}' is not a declared parameter of ${types.funcname}`);
  let id = root.id;
  let rootUser = root.user;
  let path = node.name;
  for (const step of steps) {
    const { type } = resolveType(btf, id);
    let holder: BtfType = type;
    if (step.arrow) {
      if (type.kind !== 'ptr') {
        throw new TypeProblem(`'${path}' is ${formatType(btf, id)}, not a pointer, so '${path}->${step.member}' would read an arbitrary address`);
      }
      const pointee = resolveType(btf, type.type);
      if (rootUser || pointee.tags.includes('user')) {
        throw new TypeProblem(`'${path}' is a user-space pointer; predicates read kernel memory only, so '${path}->${step.member}' is refused`);
      }
      holder = pointee.type;
    }
    if (holder.kind === 'fwd') {
      throw new TypeProblem(`${holder.union ? 'union' : 'struct'} ${holder.name} has no members in this kernel's BTF (only declared)`);
    }
    if (holder.kind !== 'struct' && holder.kind !== 'union') {
      throw new TypeProblem(`'${path}' ${step.arrow ? 'points at' : 'is'} ${step.arrow && type.kind === 'ptr' ? formatType(btf, type.type) : formatType(btf, id)}, which has no member '${step.member}'`);
    }
    const member = findMember(btf, holder, step.member);
    if (!member) {
      throw new TypeProblem(`${holder.kind} ${holder.name || '(anonymous)'} has no member '${step.member}' in this kernel`);
    }
    if (member.bitfieldSize !== 0) {
      throw new TypeProblem(`'${path}${step.arrow ? '->' : '.'}${step.member}' is a bitfield, which a predicate cannot read`);
    }
    id = member.type;
    rootUser = false;
    path = `${path}${step.arrow ? '->' : '.'}${step.member}`;
  }
  return { id };
}

/** A member by name, looking through anonymous struct/union members as C does. */
function findMember(btf: BtfReader, holder: Extract<BtfType, { kind: 'struct' | 'union' }>, name: string, depth = 0): { type: number; bitfieldSize: number } | null {
  for (const m of holder.members) if (m.name === name) return m;
  if (depth > 8) return null;
  for (const m of holder.members) {
    if (m.name !== '') continue;
    const inner = resolveType(btf, m.type).type;
    if (inner.kind === 'struct' || inner.kind === 'union') {
      const found = findMember(btf, inner, name, depth + 1);
      if (found) return found;
    }
  }
  return null;
}

/** STRCMP reads kernel memory: its subject must be a kernel char pointer, or a char array member. */
function checkStringSubject(subject: Expr, fn: string, btf: BtfReader, types: FrameTypes): void {
  let id: number;
  let user = false;
  const what = describePath(subject);
  if (subject.kind === 'param') {
    const root = types.params.get(subject.name);
    if (!root) throw new TypeProblem(`'${subject.name}' is not a declared parameter of ${types.funcname}`);
    id = root.id;
    user = root.user;
  } else if (subject.kind === 'member') {
    id = memberType(subject, btf, types).id;
  } else {
    throw new TypeProblem(`${fn} compares a parameter or a member of one`);
  }
  const { type } = resolveType(btf, id);
  if (type.kind === 'array') {
    if (subject.kind !== 'member' || !isCharLike(btf, type.type)) {
      throw new TypeProblem(`${fn}(${what}, ...): '${what}' is ${formatType(btf, id)}, not a char string`);
    }
    return;
  }
  if (type.kind !== 'ptr') {
    throw new TypeProblem(`${fn}(${what}, ...): '${what}' is ${formatType(btf, id)}, not a pointer, so it would read an arbitrary address`);
  }
  const pointee = resolveType(btf, type.type);
  if (user || pointee.tags.includes('user')) {
    throw new TypeProblem(`${fn}(${what}, ...): '${what}' is a user-space pointer; predicates read kernel memory only`);
  }
  if (pointee.type.kind !== 'void' && !isCharLike(btf, type.type)) {
    throw new TypeProblem(`${fn}(${what}, ...): '${what}' is ${formatType(btf, id)}, not a char string`);
  }
}

function isCharLike(btf: BtfReader, id: number): boolean {
  const { type } = resolveType(btf, id);
  return type.kind === 'int' && type.size === 1;
}

/** What of a request the type check reads: its frames, and the predicate on the injection site. */
export type TypedRequest = Pick<ParsedFailKernRequest, 'failtype' | 'callchain' | 'site'>;

/**
 * Every problem of a call chain, with paths below failKernRequest (`callchain[0].parameters`).
 * A site predicate is checked against the site's own prototype; a kernel without the site cannot
 * run one at all (the engine refuses it before generating), so there is nothing to check there.
 */
export function checkCallchainAgainstBtf(req: TypedRequest, btf: BtfReader): FieldError[] {
  const problems = req.callchain.flatMap((frame, i) => checkFrameAgainstBtf(frame, btf).map((e) => ({ path: `callchain[${i}].${e.path}`, message: e.message })));
  const site = siteFor(req.failtype).funcname;
  if (req.site && btf.func(site)) {
    const frame: ParsedFrame = { funcname: site, parameters: req.site.parameters, predicate: req.site.predicate };
    problems.push(...checkFrameAgainstBtf(frame, btf).map((e) => ({ path: `callchain[${req.callchain.length}].${e.path}`, message: e.message })));
  }
  return problems;
}
