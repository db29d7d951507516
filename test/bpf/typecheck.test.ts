// Parameters and predicates checked against the test kernel's own BTF (Linux 6.1): the two
// kernel-read exploits from issue 11 are refused with the real prototype, real chains pass.
import { beforeAll, describe, expect, it } from 'vitest';
import { parseFrame } from '../../src/api/predicate/index.js';
import { BtfFormatError, BtfReader, formatPrototype } from '../../src/bpf/btf-reader.js';
import { checkFrameAgainstBtf } from '../../src/bpf/typecheck.js';
import { testKernelBtf, type TestBtf } from './kernel-btf.js';

let btf: TestBtf | { skip: string };
beforeAll(async () => {
  btf = await testKernelBtf();
}, 300_000);

function reader(ctx: { skip: (note?: string) => void }): BtfReader {
  if ('skip' in btf) {
    ctx.skip(btf.skip);
    throw new Error('unreachable');
  }
  return btf.reader;
}

function check(r: BtfReader, funcname: string, parameters: string, predicate = ''): { path: string; message: string }[] {
  return checkFrameAgainstBtf(parseFrame({ funcname, parameters, predicate }), r);
}

const MMAP_PROTO =
  'long unsigned int ksys_mmap_pgoff(long unsigned int addr, long unsigned int len, long unsigned int prot, long unsigned int flags, long unsigned int fd, long unsigned int pgoff)';

describe('BtfReader on the test kernel', () => {
  it('reads prototypes with typedefs, qualifiers and pointers as the kernel declares them', (ctx) => {
    const r = reader(ctx);
    const proto = (name: string): string => {
      const f = r.func(name);
      if (!f) throw new Error(`${name} missing`);
      return formatPrototype(r, name, f.proto);
    };
    expect(proto('d_alloc_parallel')).toBe('struct dentry *d_alloc_parallel(struct dentry *parent, const struct qstr *name, wait_queue_head_t *wq)');
    expect(proto('vfs_write')).toBe('ssize_t vfs_write(struct file *file, const char *buf, size_t count, loff_t *pos)');
    expect(proto('__x64_sys_mount')).toBe('long int __x64_sys_mount(const struct pt_regs *regs)');
    expect(proto('ksys_mmap_pgoff')).toBe(MMAP_PROTO);
    expect(r.func('kc_no_such_function')).toBeNull();
    expect(r.findComposite('struct', 'qstr')?.members.map((m) => m.name)).toEqual(['', 'name']);
  });

  it('refuses what is not BTF', () => {
    expect(() => new BtfReader(Buffer.alloc(64))).toThrow(BtfFormatError);
    expect(() => new BtfReader(Buffer.alloc(8))).toThrow(/shorter than its header/);
  });
});

describe('checkFrameAgainstBtf', () => {
  it('refuses an integer argument declared a struct pointer (the linux_banner read), naming the prototype', (ctx) => {
    const errors = check(reader(ctx), 'ksys_mmap_pgoff',
      'struct qstr *addr, unsigned long len, unsigned long prot, unsigned long flags, unsigned long fd, unsigned long pgoff',
      '((addr->hash_len >> pgoff) & 1) == 1');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.path).toBe('parameters');
    expect(errors[0]?.message).toContain("parameter 1 'addr' is declared struct qstr * but the kernel passes long unsigned int");
    expect(errors[0]?.message).toContain(MMAP_PROTO);
  });

  it('refuses an integer argument declared const char * for STRNCMP', (ctx) => {
    const errors = check(reader(ctx), 'ksys_mmap_pgoff', 'const char *addr', 'STRNCMP(addr, "Linux version", 13)');
    expect(errors.map((e) => e.message).join('\n')).toMatch(/parameter 1 'addr' is declared const char \* but the kernel passes long unsigned int.*ksys_mmap_pgoff\(long unsigned int addr/);
  });

  it('accepts the real prototypes of the examples, names free and a prefix of the parameters', (ctx) => {
    const r = reader(ctx);
    expect(check(r, 'd_alloc_parallel', 'struct dentry *parent, const struct qstr *name', 'STRCMP(name->name, "bananas")')).toEqual([]);
    expect(check(r, 'd_alloc_parallel', 'struct dentry *p, const struct qstr *q', 'q->len == 7 && p->d_name.len > 0')).toEqual([]);
    expect(check(r, 'submit_bio', 'struct bio *bio', 'bio->bi_iter.bi_sector == 128')).toEqual([]);
    expect(check(r, 'vfs_write', 'struct file *file, const char *buf, size_t count, loff_t *pos', 'count > 4096')).toEqual([]);
    expect(check(r, '__x64_sys_mount', 'const struct pt_regs *regs', 'regs->di != 0')).toEqual([]);
    expect(check(r, 'do_filp_open', 'int dfd, struct filename *pathname', 'STRCMP(pathname->name, "/etc/x")')).toEqual([]);
    expect(check(r, 'd_alloc_parallel', 'struct dentry *parent', 'STRCMP(parent->d_iname, "x")')).toEqual([]);
  });

  it('refuses a wrong count, order or type with the real prototype', (ctx) => {
    const r = reader(ctx);
    const msg = (fn: string, params: string): string => check(r, fn, params).map((e) => e.message).join('\n');
    expect(msg('submit_bio', 'struct bio *bio, int extra')).toContain("parameter 2 'extra' does not exist: the function takes only 1 parameter; the kernel declares void submit_bio(struct bio *bio)");
    expect(msg('d_alloc_parallel', 'const struct qstr *name, struct dentry *parent')).toContain("parameter 1 'name' is declared const struct qstr * but the kernel passes struct dentry *");
    expect(msg('vfs_write', 'struct file *file, const char *buf, int count')).toContain("parameter 3 'count' is declared int but the kernel passes size_t");
    expect(msg('__x64_sys_mount', 'char *dev_name')).toContain('long int __x64_sys_mount(const struct pt_regs *regs)');
    expect(msg('submit_bio', 'struct nothing_here *bio')).toContain('struct nothing_here is not a type of this kernel');
    expect(msg('submit_bio', 'nothing_here_t bio')).toContain("type 'nothing_here_t' is not a typedef of this kernel");
  });

  it('refuses members the real type lacks, derefs of integers, bitfields and struct values', (ctx) => {
    const r = reader(ctx);
    const msg = (fn: string, params: string, pred: string): string => check(r, fn, params, pred).map((e) => `${e.path}: ${e.message}`).join('\n');
    expect(msg('d_alloc_parallel', 'struct dentry *parent, const struct qstr *name', 'name->nosuch == 1')).toContain('predicate: struct qstr has no member \'nosuch\'');
    expect(msg('__x64_sys_mount', 'const struct pt_regs *regs', 'regs->di->x == 1')).toContain("'regs->di' is long unsigned int, not a pointer");
    expect(msg('d_alloc_parallel', 'struct dentry *parent', 'parent->d_name == 1')).toContain("'parent->d_name' is struct qstr, not a number or pointer");
    expect(msg('kfree_skb_reason', 'struct sk_buff *skb', 'skb->cloned == 1')).toContain('bitfield');
    expect(msg('__x64_sys_mount', 'const struct pt_regs *regs', 'STRCMP(regs->di, "x")')).toContain('not a pointer, so it would read an arbitrary address');
  });

  it('refuses reading syscall argument pointers, which are user-space addresses', (ctx) => {
    const r = reader(ctx);
    const errors = check(r, 'ksys_write', 'unsigned int fd, const char *buf', 'STRCMP(buf, "x")');
    expect(errors.map((e) => e.message).join()).toContain("'buf' is a user-space pointer; predicates read kernel memory only");
    expect(check(r, 'ksys_write', 'unsigned int fd, const char *buf', 'fd == 3 && buf != 0')).toEqual([]);
  });

  it('refuses parameters on a function without BTF', (ctx) => {
    const errors = check(reader(ctx), 'kc_no_such_function', 'int x', 'x == 1');
    expect(errors[0]?.message).toContain('kc_no_such_function has no BTF entry');
  });
});
