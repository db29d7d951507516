// gatherKernelFacts against fixture /proc, /sys and /boot trees laid out as real kernels lay them out.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { gatherKernelFacts } from '../../src/bpf/kernel-facts.js';
import { findBtfFunctions } from '../../src/bpf/kernel-facts-btf.js';
import { diagnose } from '../../src/bpf/doctor.js';
import { doctorChecks } from '../../src/bpf/doctor-report.js';
import { btfBlob } from './btf-fixture.js';

let root: string;
function put(rel: string, content: string | Buffer): void {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, content);
}
afterEach(() => { if (root) rmSync(root, { recursive: true, force: true }); });

const ROOTS = (): { procRoot: string; sysRoot: string; bootDir: string; toolchain: false } => ({
  procRoot: join(root, 'proc'), sysRoot: join(root, 'sys'), bootDir: join(root, 'boot'), toolchain: false,
});

describe('findBtfFunctions', () => {
  it('finds FUNC type ids past structs and ignores names that are not FUNCs', () => {
    const ids = findBtfFunctions(btfBlob(['should_failslab', 'should_fail_bio']), ['should_fail_bio', 'should_failslab', 'bio', 'missing']);
    expect(Object.fromEntries(ids)).toEqual({ should_failslab: 4, should_fail_bio: 5 });
  });
  it('refuses a blob that is not BTF, and an unknown kind rather than misreading what follows', () => {
    expect(() => findBtfFunctions(Buffer.alloc(64), ['x'])).toThrow(/bad magic/);
    expect(() => findBtfFunctions(btfBlob(['f'], 30), ['f'])).toThrow(/unknown BTF kind 30/);
  });
});

describe('gatherKernelFacts on fixture trees', () => {
  it('a 6.1 kernel with everything (the test VM layout)', async () => {
    root = mkdtempSync(join(tmpdir(), 'kc-doctor-'));
    put('proc/sys/kernel/osrelease', '6.1.192\n');
    put('proc/config.gz', gzipSync('CONFIG_BPF_SYSCALL=y\nCONFIG_KPROBES=y\nCONFIG_KPROBE_EVENTS=y\nCONFIG_BPF_KPROBE_OVERRIDE=y\n# CONFIG_FAILSLAB is not set\nCONFIG_FUNCTION_ERROR_INJECTION=y\nCONFIG_DEBUG_INFO_BTF=y\nCONFIG_UNRELATED=y\n'));
    put('proc/kallsyms', [
      'ffffffffa4850d90 T should_failslab',
      'ffffffffa48865a0 T should_fail_alloc_page',
      'ffffffffa4af2e80 t should_fail_bio',
      'ffffffffa4af2f00 t should_fail_bio.isra.0',
      'ffffffffa64de768 r __BTF_ID__func__should_failslab__77115154',
      'ffffffffa6faf350 d _eil_addr_should_failslab',
      'ffffffffc0001000 t should_failslab_helper\t[somemod]',
    ].join('\n') + '\n');
    put('proc/self/mounts', [
      'proc /proc proc rw 0 0', 'sys /sys sysfs rw 0 0', 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0',
      'bpf /sys/fs/bpf bpf rw 0 0', 'tracefs /sys/kernel/tracing tracefs rw 0 0', 'debugfs /sys/kernel/debug debugfs rw 0 0',
    ].join('\n') + '\n');
    put('proc/self/status', 'Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n');
    put('proc/sys/kernel/unprivileged_bpf_disabled', '2\n');
    put('sys/kernel/btf/vmlinux', btfBlob(['should_failslab', 'should_fail_alloc_page', 'should_fail_bio']));
    put('sys/kernel/debug/error_injection/list', 'should_failslab\tERRNO\nshould_fail_alloc_page\tTRUE\nshould_fail_bio\tERRNO\nopen_ctree\tERRNO\n');
    mkdirSync(join(root, 'sys/kernel/debug/kprobes'), { recursive: true });
    put('sys/kernel/tracing/kprobe_events', '');
    put('sys/bus/event_source/devices/kprobe/type', '6\n');
    put('sys/fs/cgroup/cgroup.controllers', 'cpuset cpu io memory pids\n');
    put('sys/kernel/security/lockdown', '[none] integrity confidentiality\n');

    const facts = await gatherKernelFacts(ROOTS());
    expect(facts.release).toBe('6.1.192');
    expect(facts.version).toEqual([6, 1]);
    expect(facts.config).toEqual({
      known: true,
      source: join(root, 'proc/config.gz'),
      options: { CONFIG_BPF_SYSCALL: 'y', CONFIG_KPROBES: 'y', CONFIG_KPROBE_EVENTS: 'y', CONFIG_BPF_KPROBE_OVERRIDE: 'y', CONFIG_FUNCTION_ERROR_INJECTION: 'y', CONFIG_DEBUG_INFO_BTF: 'y' },
    });
    expect(facts.btf).toEqual({ vmlinux: true, functions: { should_failslab: 4, should_fail_alloc_page: 5, should_fail_bio: 6 } });
    expect(facts.kallsyms).toEqual({
      readable: true,
      sites: {
        should_failslab: { plain: true, clones: [] },
        should_fail_alloc_page: { plain: true, clones: [] },
        should_fail_bio: { plain: true, clones: ['should_fail_bio.isra.0'] },
      },
    });
    expect(facts.errorInjection).toEqual({ readable: true, listed: { should_failslab: 'ERRNO', should_fail_alloc_page: 'TRUE', should_fail_bio: 'ERRNO' } });
    expect(facts.kprobes).toEqual({ pmuType: 6, tracefsKprobeEvents: true, debugfsKprobes: true });
    expect(facts.mounts).toEqual({ debugfs: '/sys/kernel/debug', tracefs: '/sys/kernel/tracing', bpffs: ['/sys/fs/bpf'] });
    expect(facts.cgroup).toEqual({ layout: 'unified', v2Mount: '/sys/fs/cgroup', controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'], target: { ok: true, hierarchy: { kind: 'v2', root: '/sys/fs/cgroup' } } });
    expect(facts.lockdown).toEqual({ mode: 'none', source: 'securityfs' });
    expect(facts.capabilities).toEqual({ effectiveHex: '000001ffffffffff', bpf: true, perfmon: true, sysAdmin: true });
    expect(facts.unprivilegedBpfDisabled).toBe(2);
    // Fixture roots never attach anything to the real kernel.
    expect(facts.probes).toBeNull();
    expect(diagnose(facts).overall.verdict).toBe('all-work');
  });

  it('a 6.12 kernel like the build host: config in /boot, hybrid cgroups, no debugfs, forced lockdown, no kprobes', async () => {
    root = mkdtempSync(join(tmpdir(), 'kc-doctor-'));
    put('proc/sys/kernel/osrelease', '6.12.0-test\n');
    put('boot/config-6.12.0-test', 'CONFIG_BPF_SYSCALL=y\n# CONFIG_KPROBES is not set\nCONFIG_SECURITY_LOCKDOWN_LSM=y\nCONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y\nCONFIG_DEBUG_INFO_BTF=y\nCONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y\n');
    put('proc/kallsyms', 'ffffffff81af6050 T should_fail_bio\nffffffff81000000 T _stext\n');
    put('proc/self/mounts', [
      'tmpfs /sys/fs/cgroup tmpfs rw 0 0', 'cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0',
      'cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0', 'cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0',
    ].join('\n') + '\n');
    put('proc/self/status', 'CapEff:\t0000000000000000\n');
    put('sys/kernel/btf/vmlinux', btfBlob(['should_fail_bio']));
    put('sys/fs/cgroup/unified/cgroup.controllers', '');

    const facts = await gatherKernelFacts(ROOTS());
    expect(facts.config).toMatchObject({ known: true, source: join(root, 'boot/config-6.12.0-test') });
    expect(facts.kallsyms).toMatchObject({ sites: { should_failslab: { plain: false, clones: [] }, should_fail_bio: { plain: true } } });
    expect(facts.errorInjection).toEqual({ readable: false, reason: 'debugfs is not mounted (mount -t debugfs none /sys/kernel/debug)' });
    expect(facts.kprobes).toEqual({ pmuType: null, tracefsKprobeEvents: null, debugfsKprobes: null });
    expect(facts.cgroup).toEqual({ layout: 'hybrid', v2Mount: '/sys/fs/cgroup/unified', controllers: [], target: { ok: true, hierarchy: { kind: 'hybrid', root: '/sys/fs/cgroup/unified' } } });
    expect(facts.lockdown).toEqual({ mode: 'integrity', source: 'config' });
    expect(facts.capabilities).toMatchObject({ bpf: false, perfmon: false, sysAdmin: false });
    expect(facts.unprivilegedBpfDisabled).toBeNull();

    const d = diagnose(facts);
    expect(d.overall.verdict).toBe('none-work');
    expect(d.failtypes[0].problems).toContain('should_failslab is not in this kernel: from 6.11 it is only built with CONFIG_FAILSLAB=y, which this kernel (6.12.0-test) lacks');
    expect(d.failtypes[2].problems).toContain('kprobe: kernel built without CONFIG_KPROBES: no kprobes at all (no kprobe PMU, no kprobe_events)');
  });

  it('missing files become reasons, not crashes: no usable cgroup hierarchy, no BTF, no config, unreadable kallsyms', async () => {
    root = mkdtempSync(join(tmpdir(), 'kc-doctor-'));
    put('proc/sys/kernel/osrelease', '5.10.0\n');
    put('proc/self/mounts', 'cgroup /sys/fs/cgroup/systemd cgroup rw,nosuid,nodev,noexec,relatime,xattr,name=systemd 0 0\n');
    const facts = await gatherKernelFacts(ROOTS());
    expect(facts.config).toMatchObject({ known: false });
    expect(facts.btf).toMatchObject({ vmlinux: false, reason: expect.stringMatching(/ENOENT/) });
    expect(facts.kallsyms).toMatchObject({ readable: false, reason: expect.stringMatching(/ENOENT/) });
    expect(facts.cgroup.layout).toBe('legacy');
    expect(facts.lockdown).toMatchObject({ mode: null });
    expect(facts.capabilities).toBeNull();
    const d = diagnose(facts);
    for (const f of d.failtypes) {
      expect(f.verdict).toBe('fails');
      expect(f.problems.some((p) => p.startsWith('only cgroup v1 hierarchies without a usable controller are mounted on this machine (/sys/fs/cgroup/systemd)'))).toBe(true);
      expect(f.problems.some((p) => p.startsWith('fmod_ret: no kernel BTF'))).toBe(true);
    }
  });

  it('a pure cgroup v1 mount table (the v1 VM test guest\'s): targets by the pids hierarchy, named in the cgroup targets row', async () => {
    root = mkdtempSync(join(tmpdir(), 'kc-doctor-'));
    put('proc/sys/kernel/osrelease', '6.1.0\n');
    put('proc/self/mounts', [
      'cgroup /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
      'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0',
      'cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0',
      'cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0',
    ].join('\n') + '\n');
    const facts = await gatherKernelFacts(ROOTS());
    expect(facts.cgroup).toMatchObject({ layout: 'legacy', v2Mount: null, target: { ok: true, hierarchy: { kind: 'v1', controller: 'pids', root: '/sys/fs/cgroup/pids' } } });
    const row = doctorChecks(facts).find((r) => r.check === 'cgroup targets');
    expect(row?.detail).toMatch(/^by cgroup v1 pids hierarchy \(\/sys\/fs\/cgroup\/pids\); layout legacy$/);
    for (const f of diagnose(facts).failtypes) expect(f.problems.some((p) => /cgroup/.test(p))).toBe(false);
  });
});
