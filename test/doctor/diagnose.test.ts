import { describe, expect, it } from 'vitest';
import { diagnose, SYSCALL_ENTRY_REMEDY, type FailtypeDiagnosis } from '../../src/bpf/doctor.js';
import { host618, vm61 } from './fixtures.js';
import { doctorChecks } from '../../src/bpf/doctor-report.js';

const some = (items: string[], pattern: RegExp): boolean => items.some((s) => pattern.test(s));

function expectWorks(d: FailtypeDiagnosis, via: 'fmod_ret' | 'kprobe'): void {
  expect(d.verdict).toBe(via === 'fmod_ret' ? 'works' : 'kprobe-only');
  expect(d.via).toBe(via);
}

describe('diagnose', () => {
  it('a 6.1 kernel with everything: all three failtypes work through fmod_ret', () => {
    const d = diagnose(vm61());
    expect(d.failtypes.map((f) => [f.site, f.verdict, f.via])).toEqual([
      ['should_failslab', 'works', 'fmod_ret'],
      ['should_fail_alloc_page', 'works', 'fmod_ret'],
      ['should_fail_bio', 'works', 'fmod_ret'],
    ]);
    expect(d.failtypes.flatMap((f) => [...f.problems, ...f.warnings])).toEqual([]);
    expect(d.overall).toMatchObject({ verdict: 'all-work', usable: [0, 1, 2] });
  });

  it('this build host (6.18, no kprobes, no error injection, tracing loads refused): nothing works, and says why', () => {
    const d = diagnose(host618());
    expect(d.overall.verdict).toBe('none-work');
    expect(d.overall.usable).toEqual([]);
    for (const f of d.failtypes) {
      expect(f.verdict).toBe('fails');
      expect(f.via).toBeNull();
      expect(some(f.problems, /kprobe: kernel built without CONFIG_KPROBES/)).toBe(true);
      expect(some(f.problems, /CONFIG_FUNCTION_ERROR_INJECTION/)).toBe(true);
      expect(some(f.remedies, /CONFIG_KPROBES=y/)).toBe(true);
      expect(some(f.problems, /lockdown is 'integrity'/)).toBe(true);
    }
    const [slab, page, bio] = d.failtypes;
    expect(some(slab.problems, /should_failslab is not in this kernel: from 6\.11 it is only built with CONFIG_FAILSLAB=y/)).toBe(true);
    expect(some(page.problems, /should_fail_alloc_page is not in this kernel: from 6\.11 .*CONFIG_FAIL_PAGE_ALLOC=y/)).toBe(true);
    // should_fail_bio exists here; what stops it is the refused fmod_ret load, reported with its errno.
    expect(some(bio.problems, /not in this kernel/)).toBe(false);
    expect(some(bio.problems, /fmod_ret: the kernel refused to load an fmod_ret test program on should_fail_bio: EPERM/)).toBe(true);
  });

  it('a kernel without kprobes but with trampolines still works through fmod_ret, with a note on chain frames', () => {
    const f = vm61();
    f.config = { known: true, source: 'x', options: { ...(f.config.known ? f.config.options : {}), CONFIG_KPROBES: undefined, CONFIG_KPROBE_EVENTS: undefined } };
    f.kprobes = { pmuType: null, tracefsKprobeEvents: false, debugfsKprobes: false };
    const d = diagnose(f);
    for (const ft of d.failtypes) {
      expectWorks(ft, 'fmod_ret');
      expect(some(ft.warnings, /every call-chain frame must be a function in the kernel BTF/)).toBe(true);
    }
  });

  it('a 6.12 kernel built without CONFIG_FAILSLAB: failtype 0 fails with the config remedy, 1 and 2 work', () => {
    const f = vm61();
    f.release = '6.12.8';
    f.version = [6, 12];
    f.config = { known: true, source: 'x', options: { ...(f.config.known ? f.config.options : {}), CONFIG_FAULT_INJECTION: 'y', CONFIG_FAIL_PAGE_ALLOC: 'y' } };
    if (f.kallsyms.readable) f.kallsyms.sites.should_failslab = { plain: false, clones: [] };
    f.btf = { vmlinux: true, functions: { should_fail_alloc_page: 1, should_fail_bio: 2 } };
    f.errorInjection = { readable: true, listed: { should_fail_alloc_page: 'TRUE', should_fail_bio: 'ERRNO' } };
    const d = diagnose(f);
    const [slab, page, bio] = d.failtypes;
    expect(slab.verdict).toBe('fails');
    expect(slab.problems[0]).toBe('should_failslab is not in this kernel: from 6.11 it is only built with CONFIG_FAILSLAB=y, which this kernel (6.12.8) lacks');
    // only what this kernel lacks (it has CONFIG_FAULT_INJECTION and error injection), the change-nothing remedy first
    expect(slab.remedies).toEqual([SYSCALL_ENTRY_REMEDY, 'use a kernel built with CONFIG_FAILSLAB=y']);
    expect(slab.problems).toHaveLength(1);
    expectWorks(page, 'fmod_ret');
    expectWorks(bio, 'fmod_ret');
    expect(d.overall).toMatchObject({ verdict: 'some-work', usable: [1, 2] });
  });

  it('a 6.9 kernel with only .constprop clones of should_failslab: failtype 0 fails, naming the clone', () => {
    const f = vm61();
    f.release = '6.9.3';
    f.version = [6, 9];
    if (f.kallsyms.readable) f.kallsyms.sites.should_failslab = { plain: false, clones: ['should_failslab.constprop.0'] };
    if (f.errorInjection.readable) delete f.errorInjection.listed.should_failslab;
    f.btf = { vmlinux: true, functions: { should_fail_alloc_page: 1, should_fail_bio: 2 } };
    const [slab, page] = diagnose(f).failtypes;
    expect(slab.verdict).toBe('fails');
    expect(some(slab.problems, /exists only as the compiler clone should_failslab\.constprop\.0: a hook on should_failslab never sees the calls/)).toBe(true);
    expect(some(slab.remedies, /not cloned/)).toBe(true);
    expectWorks(page, 'fmod_ret');
  });

  it('a plain symbol next to a clone works but warns that calls reaching the clone are not faulted', () => {
    const f = vm61();
    if (f.kallsyms.readable) f.kallsyms.sites.should_failslab = { plain: true, clones: ['should_failslab.constprop.0'] };
    const [slab] = diagnose(f).failtypes;
    expectWorks(slab, 'fmod_ret');
    expect(some(slab.warnings, /clone should_failslab\.constprop\.0: calls that reach a clone are not faulted/)).toBe(true);
  });

  it('lockdown confidentiality: kprobes are out, fmod_ret still works with a note on predicates', () => {
    const f = vm61();
    f.lockdown = { mode: 'confidentiality', source: 'securityfs' };
    for (const ft of diagnose(f).failtypes) {
      expectWorks(ft, 'fmod_ret');
      expect(some(ft.warnings, /bpf_probe_read_kernel/)).toBe(true);
    }
  });

  it('lockdown confidentiality on a kernel too old for fmod_ret: nothing works, remedy lockdown=none', () => {
    const f = vm61();
    f.release = '5.4.0-150-generic';
    f.version = [5, 4];
    f.lockdown = { mode: 'confidentiality', source: 'securityfs' };
    f.capabilities = { effectiveHex: '0000003fffffffff', bpf: false, perfmon: false, sysAdmin: true };
    const d = diagnose(f);
    for (const ft of d.failtypes) {
      expect(ft.verdict).toBe('fails');
      expect(some(ft.problems, /fmod_ret: kernel 5\.4\.0-150-generic predates fmod_ret \(5\.7\)/)).toBe(true);
      expect(some(ft.problems, /kprobe: kernel lockdown is 'confidentiality' \(from securityfs\): kprobes are forbidden/)).toBe(true);
      expect(some(ft.remedies, /lockdown=none/)).toBe(true);
    }
  });

  it('a 5.4 kernel with kprobes and override: kprobe-only', () => {
    const f = vm61();
    f.release = '5.4.0';
    f.version = [5, 4];
    f.capabilities = { effectiveHex: '0000003fffffffff', bpf: false, perfmon: false, sysAdmin: true };
    for (const ft of diagnose(f).failtypes) {
      expectWorks(ft, 'kprobe');
      expect(some(ft.problems, /predates fmod_ret/)).toBe(true);
    }
  });

  it('without CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN nothing works, and the remedy names the capabilities', () => {
    const f = vm61();
    f.capabilities = { effectiveHex: '0000000000000000', bpf: false, perfmon: false, sysAdmin: false };
    const d = diagnose(f);
    expect(d.overall.verdict).toBe('none-work');
    for (const ft of d.failtypes) {
      expect(ft.problems[0]).toMatch(/lacks CAP_BPF and CAP_PERFMON \(CapEff 0000000000000000\)/);
      expect(some(ft.remedies, /grant CAP_BPF and CAP_PERFMON/)).toBe(true);
    }
  });

  it('on a kernel before 5.8 CAP_BPF is no substitute for CAP_SYS_ADMIN', () => {
    const f = vm61();
    f.release = '5.4.0';
    f.version = [5, 4];
    f.capabilities = { effectiveHex: '000000c000000000', bpf: true, perfmon: true, sysAdmin: false };
    for (const ft of diagnose(f).failtypes) {
      expect(ft.verdict).toBe('fails');
      expect(some(ft.problems, /lacks CAP_SYS_ADMIN/)).toBe(true);
    }
  });

  it('cgroup v1 only: targets by one controller hierarchy; no usable hierarchy: nothing can be targeted; hybrid warns about old runtimes', () => {
    const legacy = vm61();
    legacy.cgroup = { layout: 'legacy', v2Mount: null, controllers: [], target: { ok: true, hierarchy: { kind: 'v1', controller: 'pids', root: '/sys/fs/cgroup/pids' } } };
    for (const ft of diagnose(legacy).failtypes) expectWorks(ft, 'fmod_ret');
    expect(doctorChecks(legacy).find((r) => r.check === 'cgroup targets')).toMatchObject({ status: 'warn', detail: expect.stringContaining('by cgroup v1 pids hierarchy (/sys/fs/cgroup/pids)') });
    const none = vm61();
    none.cgroup = { layout: 'none', v2Mount: null, controllers: [], target: { ok: false, reason: 'no cgroup hierarchy is mounted on this machine (mount ...)' } };
    for (const ft of diagnose(none).failtypes) {
      expect(ft.verdict).toBe('fails');
      expect(some(ft.problems, /no cgroup hierarchy is mounted on this machine/)).toBe(true);
      expect(some(ft.remedies, /systemd\.unified_cgroup_hierarchy=1/)).toBe(true);
    }
    const hybrid = vm61();
    hybrid.cgroup = { layout: 'hybrid', v2Mount: '/sys/fs/cgroup/unified', controllers: [], target: { ok: true, hierarchy: { kind: 'hybrid', root: '/sys/fs/cgroup/unified' } } };
    for (const ft of diagnose(hybrid).failtypes) {
      expectWorks(ft, 'fmod_ret');
      expect(some(ft.warnings, /runc >= 1\.0/)).toBe(true);
    }
  });

  it('a live probe outranks the files: a refused fmod_ret load falls back to kprobes', () => {
    const f = vm61();
    const refused = { status: 'refused', step: 'load', errno: 'EINVAL', message: 'invalid argument', verifierLog: 'should_failslab() is not modifiable' } as const;
    f.probes = {
      fmodRet: { should_failslab: refused, should_fail_alloc_page: { status: 'attached' }, should_fail_bio: { status: 'attached' } },
      kprobeOverride: { should_failslab: { status: 'attached' }, should_fail_alloc_page: { status: 'attached' }, should_fail_bio: { status: 'attached' } },
    };
    const [slab, page] = diagnose(f).failtypes;
    expectWorks(slab, 'kprobe');
    expect(slab.problems).toEqual(['fmod_ret: the kernel refused to load an fmod_ret test program on should_failslab: EINVAL (invalid argument) (verifier: should_failslab() is not modifiable)']);
    expectWorks(page, 'fmod_ret');
  });

  it('an attached live probe overrides an unreadable error-injection list', () => {
    const f = vm61();
    f.errorInjection = { readable: false, reason: 'debugfs is not mounted' };
    f.config = { known: false, reason: 'no /proc/config.gz' };
    f.probes = {
      fmodRet: { should_failslab: { status: 'attached' }, should_fail_alloc_page: { status: 'attached' }, should_fail_bio: { status: 'attached' } },
      kprobeOverride: { should_failslab: { status: 'attached' }, should_fail_alloc_page: { status: 'attached' }, should_fail_bio: { status: 'attached' } },
    };
    expect(diagnose(f).overall.verdict).toBe('all-work');
  });

  it('a missing compiler, bpftool (vmlinux.h) or libbpf stops every failtype', () => {
    const f = vm61();
    f.toolchain = {
      clang: { found: false, reason: 'clang is not on PATH' },
      bpftool: { found: false, reason: 'bpftool is not on PATH' },
      libbpf: { found: false, reason: 'cannot load libbpf.so.1' },
    };
    for (const ft of diagnose(f).failtypes) {
      expect(ft.verdict).toBe('fails');
      expect(ft.remedies).toEqual(expect.arrayContaining([
        'install clang and llvm (apt-get install clang llvm)', 'install bpftool (apt-get install bpftool)', 'install libbpf 1.x (apt-get install libbpf1)',
      ]));
    }
  });
});
