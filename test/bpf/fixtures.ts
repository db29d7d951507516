// Requests for the generator tests: parsed from manifest text with the real parser (what users
// write), plus hand-built ASTs for what the parser would already refuse (defence in depth).
import { parseFailKernRequest } from '../../src/api/predicate/index.js';
import type { Expr, ParsedFailKernRequest, Parameter, Span } from '../../src/api/predicate/ast.js';
import type { FailKernRequest } from '../../src/api/types.js';

export function parsed(req: FailKernRequest): ParsedFailKernRequest {
  return parseFailKernRequest(req);
}

/** The seed document's example. */
export const SEED: FailKernRequest = { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }] };

/** inject.py's example: only creating a dentry named "bananas" fails. */
export const BANANAS: FailKernRequest = {
  failtype: 0,
  callchain: [
    {
      funcname: 'd_alloc_parallel',
      parameters: 'struct dentry *parent, const struct qstr *name',
      predicate: 'STRNCMP(name->name, "bananas", 8)',
    },
  ],
};

/** A spread of specs that every mode must compile. */
export const COMPILE_CASES: Record<string, FailKernRequest> = {
  seed: SEED,
  bananas: BANANAS,
  emptyChainSlab: { failtype: 0 },
  emptyChainPage: { failtype: 1, probability: 50, times: 7 },
  pageUnderWrite: { failtype: 1, callchain: [{ funcname: '__x64_sys_write' }] },
  bioDirect: { failtype: 2, times: 1 },
  // bpfki's and inject.py's form: the last frame names no function; its predicate reads the site's arguments.
  bioSitePredicate: { failtype: 2, callchain: [{ parameters: 'struct bio *bio', predicate: 'bio->bi_iter.bi_sector == 128' }] },
  slabChainAndSite: { failtype: 0, times: 2, callchain: [{ funcname: '__x64_sys_mount' }, { predicate: 's->size >= 256 && (gfpflags & 0x400) != 0' }] },
  pageSiteOrder: { failtype: 1, callchain: [{ parameters: 'gfp_t gfp, unsigned int order', predicate: 'order >= 2' }] },
  bioChain: {
    failtype: 2,
    callchain: [
      { funcname: '__x64_sys_pwrite64' },
      {
        funcname: 'submit_bio',
        parameters: 'struct bio *bio',
        predicate: 'bio->bi_iter.bi_size >= 4096 && (bio->bi_opf & 1) == 1',
      },
    ],
  },
  deepChain: {
    failtype: 0,
    probability: 10,
    times: 3,
    callchain: [
      { funcname: '__x64_sys_openat' },
      { funcname: 'path_openat' },
      {
        funcname: 'd_alloc_parallel',
        parameters: 'struct dentry *parent, const struct qstr *name',
        predicate: 'STRCMP(name->name, "a\\"b\\\\c*/d") || (name->len > 3 ? parent->d_name.len < 10 : !0)',
      },
    ],
  },
  repeatedFrame: {
    failtype: 0,
    callchain: [
      { funcname: 'vfs_write' },
      { funcname: '__x64_sys_write' },
      { funcname: 'vfs_write', parameters: 'struct file *file, const char *buf, size_t count, loff_t *pos', predicate: 'count > 100 && count % 2 == 0' },
    ],
  },
  arrayFieldCompare: {
    failtype: 0,
    callchain: [
      { funcname: 'wake_up_new_task', parameters: 'struct task_struct *p', predicate: 'STRNCMP(p->comm, "touch", 5) && p->pid != 0xffffffffffffffff' },
    ],
  },
  pointerParamCompare: {
    failtype: 1,
    callchain: [{ funcname: 'getname_kernel', parameters: 'const char *filename', predicate: 'STRCMP(filename, "/tmp/x") && -1 != 100' }],
  },
};

const at: Span = { start: 0, end: 0 };

export function param(name: string, index: number, struct: string | null, pointerDepth = 1): Parameter {
  return {
    name,
    index,
    type: { qualifiers: [], base: struct === null ? { kind: 'name', name: 'unsigned long' } : { kind: 'struct', name: struct }, pointerDepth },
  };
}

export const ast = {
  int: (value: bigint): Expr => ({ kind: 'int', value, span: at }),
  str: (value: string): Expr => ({ kind: 'string', value, span: at }),
  param: (p: Parameter): Expr => ({ kind: 'param', name: p.name, param: p, span: at }),
  arrow: (object: Expr, member: string): Expr => ({ kind: 'member', object, member, arrow: true, span: at }),
  dot: (object: Expr, member: string): Expr => ({ kind: 'member', object, member, arrow: false, span: at }),
  strcmp: (subject: Expr, literal: string, length: number | null = null): Expr => ({
    kind: 'strcmp',
    fn: length === null ? 'STRCMP' : 'STRNCMP',
    subject,
    literal,
    length,
    span: at,
  }),
  bin: (op: Extract<Expr, { kind: 'binary' }>['op'], left: Expr, right: Expr): Expr => ({ kind: 'binary', op, left, right, span: at }),
};

/** A one-frame request around a hand-built predicate. */
export function oneFrame(predicate: Expr, parameters: Parameter[], funcname = 'd_alloc_parallel'): ParsedFailKernRequest {
  return { failtype: 0, headers: [], probability: 0, times: 0, callchain: [{ funcname, parameters, predicate }] };
}
