// KernelFacts as observed on real kernel builds, for diagnose() tests. `vm61` is what
// gatherKernelFacts reported inside the test VM (../shared/testkernel, Linux 6.1);
// `host618` is this build machine (6.18, no kprobes, lockdown integrity from its config).
import type { KernelFacts } from '../../src/bpf/kernel-facts.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function vm61(): Mutable<KernelFacts> {
  return {
    release: '6.1.192',
    version: [6, 1],
    arch: 'x86_64',
    config: {
      known: true,
      source: '/proc/config.gz',
      options: {
        CONFIG_BPF_SYSCALL: 'y', CONFIG_BPF_JIT: 'y', CONFIG_CGROUP_BPF: 'y', CONFIG_KPROBES: 'y', CONFIG_DEBUG_INFO_BTF: 'y',
        CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS: 'y', CONFIG_KPROBE_EVENTS: 'y', CONFIG_BPF_EVENTS: 'y',
        CONFIG_BPF_KPROBE_OVERRIDE: 'y', CONFIG_FUNCTION_ERROR_INJECTION: 'y',
      },
    },
    btf: { vmlinux: true, functions: { should_failslab: 17763, should_fail_alloc_page: 18455, should_fail_bio: 100511 } },
    kallsyms: {
      readable: true,
      sites: {
        should_failslab: { plain: true, clones: [] },
        should_fail_alloc_page: { plain: true, clones: [] },
        should_fail_bio: { plain: true, clones: [] },
      },
    },
    errorInjection: { readable: true, listed: { should_failslab: 'ERRNO', should_fail_alloc_page: 'TRUE', should_fail_bio: 'ERRNO' } },
    kprobes: { pmuType: 6, tracefsKprobeEvents: true, debugfsKprobes: true },
    mounts: { debugfs: '/sys/kernel/debug', tracefs: '/sys/kernel/tracing', bpffs: ['/sys/fs/bpf'] },
    cgroup: { layout: 'unified', v2Mount: '/sys/fs/cgroup', controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'], target: { ok: true, hierarchy: { kind: 'v2', root: '/sys/fs/cgroup' } } },
    lockdown: { mode: 'none', source: 'config' },
    capabilities: { effectiveHex: '000001ffffffffff', bpf: true, perfmon: true, sysAdmin: true },
    unprivilegedBpfDisabled: 2,
    toolchain: { clang: { found: true, version: '14.0.6' }, bpftool: { found: true, version: '7.1.0' }, libbpf: { found: true, version: '1.1' } },
    probes: null,
  };
}

export function host618(): Mutable<KernelFacts> {
  const refusedEperm = { status: 'refused', step: 'load', errno: 'EPERM', message: 'operation not permitted' } as const;
  const noPmu = { status: 'not-run', reason: 'no kprobe PMU in /sys/bus/event_source/devices' } as const;
  const notInBtf = { status: 'not-run', reason: 'the function is not in the kernel BTF' } as const;
  return {
    ...vm61(),
    release: '6.18.44-fc-v657',
    version: [6, 18],
    config: {
      known: true,
      source: '/proc/config.gz',
      options: {
        CONFIG_BPF_SYSCALL: 'y', CONFIG_BPF_JIT: 'y', CONFIG_CGROUP_BPF: 'y', CONFIG_SECURITY_LOCKDOWN_LSM: 'y',
        CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY: 'y', CONFIG_DEBUG_INFO_BTF: 'y', CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS: 'y', CONFIG_BPF_EVENTS: 'y',
      },
    },
    btf: { vmlinux: true, functions: { should_fail_bio: 110845 } },
    kallsyms: {
      readable: true,
      sites: {
        should_failslab: { plain: false, clones: [] },
        should_fail_alloc_page: { plain: false, clones: [] },
        should_fail_bio: { plain: true, clones: [] },
      },
    },
    errorInjection: { readable: false, reason: 'debugfs is not mounted (mount -t debugfs none /sys/kernel/debug)' },
    kprobes: { pmuType: null, tracefsKprobeEvents: null, debugfsKprobes: null },
    mounts: { debugfs: null, tracefs: null, bpffs: [] },
    cgroup: { layout: 'hybrid', v2Mount: '/sys/fs/cgroup/unified', controllers: ['hugetlb'], target: { ok: true, hierarchy: { kind: 'hybrid', root: '/sys/fs/cgroup/unified' } } },
    lockdown: { mode: 'integrity', source: 'config' },
    capabilities: { effectiveHex: '000001fffeffffff', bpf: true, perfmon: true, sysAdmin: true },
    probes: {
      kprobeOverride: { should_failslab: noPmu, should_fail_alloc_page: noPmu, should_fail_bio: noPmu },
      fmodRet: { should_failslab: notInBtf, should_fail_alloc_page: notInBtf, should_fail_bio: refusedEperm },
    },
  };
}
