import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { preflightFailtype, preflightRequest } from '../../src/bpf/doctor-preflight.js';
import { scanSymbols } from '../../src/bpf/kernel-facts.js';
import { btfBlob } from './btf-fixture.js';

let root = '';
afterEach(() => { if (root) rmSync(root, { recursive: true, force: true }); });
function put(rel: string, content: string | Buffer): void {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, content);
}
const frame = (funcname: string) => ({ funcname, parameters: [], predicate: null });

/** A 6.12 kernel without CONFIG_FAILSLAB; kprobes configurable; a few chain functions. */
function kernelTree(kprobes: boolean): { procRoot: string; sysRoot: string; bootDir: string } {
  root = mkdtempSync(join(tmpdir(), 'kc-preflight-'));
  put('proc/sys/kernel/osrelease', '6.12.1\n');
  put('boot/config-6.12.1', `CONFIG_BPF_SYSCALL=y\n${kprobes ? 'CONFIG_KPROBES=y\nCONFIG_KPROBE_EVENTS=y\nCONFIG_BPF_KPROBE_OVERRIDE=y\n' : ''}CONFIG_FUNCTION_ERROR_INJECTION=y\nCONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y\n`);
  put('proc/kallsyms', [
    'ffffffff81af6050 T should_fail_bio',
    'ffffffff81000010 T __x64_sys_write',
    'ffffffff81000020 t blkdev_write_iter',
    'ffffffff81000030 t submit_bio_noacct.constprop.0',
    'ffffffff81000040 t ext4_file_write_iter',
    'ffffffff81000050 t ext4_file_write_iter.cold',
    'ffffffff81000060 t ext4_file_write_iter.part.0',
  ].join('\n') + '\n');
  put('proc/self/mounts', 'cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\ndebugfs /sys/kernel/debug debugfs rw 0 0\n');
  put('proc/self/status', 'CapEff:\t000001ffffffffff\n');
  put('sys/kernel/debug/error_injection/list', 'should_fail_bio\tERRNO\n');
  put('sys/kernel/btf/vmlinux', btfBlob(['should_fail_bio', '__x64_sys_write', 'ext4_file_write_iter']));
  if (kprobes) put('sys/bus/event_source/devices/kprobe/type', '6\n');
  return { procRoot: join(root, 'proc'), sysRoot: join(root, 'sys'), bootDir: join(root, 'boot') };
}

describe('scanSymbols', () => {
  it('finds plain names and their compiler clones (not .cold tails), and nothing that merely shares a prefix', () => {
    const text = 'a T foo\nb t foo.constprop.0\nc t foo.isra.1\nd t foobar\ne t __foo\nf t bar.part.0\t[mod]\ng t foo.cold\n';
    expect(scanSymbols(text, ['foo', 'bar', 'baz'])).toEqual({
      foo: { plain: true, clones: ['foo.constprop.0', 'foo.isra.1'] },
      bar: { plain: false, clones: ['bar.part.0'] },
      baz: { plain: false, clones: [] },
    });
  });
});

describe('preflight', () => {
  it('names the missing site and its remedy on a 6.12 kernel without CONFIG_FAILSLAB', async () => {
    const slab = await preflightFailtype(0, kernelTree(true));
    expect(slab.ok).toBe(false);
    if (!slab.ok) {
      expect(slab.message).toContain('failtype 0 (should_failslab) cannot be injected on this kernel (6.12.1):');
      expect(slab.message).toContain('should_failslab is not in this kernel: from 6.11 it is only built with CONFIG_FAILSLAB=y, which this kernel (6.12.1) lacks');
      expect(slab.message).toContain('use a kernel built with CONFIG_FAULT_INJECTION=y and CONFIG_FAILSLAB=y');
      expect(slab.message).toContain('kernelchaos doctor');
    }
  });

  it('names each bad frame by its field: a typo, a clone-only function; notes a frame without BTF', async () => {
    const opts = kernelTree(true);
    const r = await preflightRequest({ failtype: 2, callchain: [frame('__x64_sys_write'), frame('blkdev_writ_iter'), frame('submit_bio_noacct'), frame('blkdev_write_iter')] }, opts);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.diagnosis).toMatchObject({ verdict: 'works', via: 'fmod_ret' });
    expect(r.frameProblems).toEqual([
      { path: 'spec.failKernRequest.callchain[1].funcname', message: 'blkdev_writ_iter is not a function of this kernel (6.12.1): not in /proc/kallsyms; check the spelling, or whether it was renamed or inlined' },
      { path: 'spec.failKernRequest.callchain[2].funcname', message: 'submit_bio_noacct exists on this kernel only as the compiler clone submit_bio_noacct.constprop.0: a hook on submit_bio_noacct never fires; list a caller of it instead' },
    ]);
    expect(r.message.split('\n')[0]).toBe('spec.failKernRequest.callchain[1].funcname: blkdev_writ_iter is not a function of this kernel (6.12.1): not in /proc/kallsyms; check the spelling, or whether it was renamed or inlined');
    // blkdev_write_iter is in kallsyms but not in BTF: with kprobes available that only changes the hook.
    expect(r.warnings).toContain('spec.failKernRequest.callchain[3].funcname: blkdev_write_iter has no BTF entry (static or inlined), so this fault is hooked with kprobes instead of trampolines');
  });

  it('a frame without BTF is a problem when the kernel has no kprobes; frames with BTF are fine', async () => {
    const opts = kernelTree(false);
    const good = await preflightRequest({ failtype: 2, callchain: [frame('__x64_sys_write'), frame('ext4_file_write_iter')] }, opts);
    expect(good).toMatchObject({ ok: true, diagnosis: { verdict: 'works', via: 'fmod_ret' } });
    expect(good.warnings).toContain('spec.failKernRequest.callchain[1].funcname: ext4_file_write_iter also has the clone ext4_file_write_iter.part.0; calls that go through a clone do not count as entering the frame');
    const bad = await preflightRequest({ failtype: 2, callchain: [frame('blkdev_write_iter')] }, opts);
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.frameProblems).toEqual([{ path: 'spec.failKernRequest.callchain[0].funcname', message: 'blkdev_write_iter has no BTF entry (static or inlined) and this kernel has no usable kprobes, so the frame cannot be hooked' }]);
    }
  });
});
