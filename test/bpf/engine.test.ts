import { describe, expect, it } from 'vitest';
import { BpfFaultEngine, functionsMissingFromKernel, planAttachMode } from '../../src/bpf/engine.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../../src/bpf/types.js';
import { ast, oneFrame, param } from './fixtures.js';
import { cgroup2Mount, ownCgroupPath } from '../../src/bpf/cgroup.js';
import { BANANAS, parsed, SEED } from './fixtures.js';

const ALL = new Set(['should_failslab', 'should_fail_alloc_page', 'should_fail_bio', '__x64_sys_mount', 'd_alloc_parallel']);

describe('planAttachMode (auto)', () => {
  it('uses trampolines when BTF covers the site and every frame and the site is on the error-injection list', () => {
    expect(planAttachMode(parsed(SEED), { btfFunctions: ALL, errorInjection: new Set(['should_failslab']) })).toEqual({
      mode: 'trampoline',
      reason: 'BTF covers the site and every frame',
    });
    // debugfs unreadable: trust BTF (arm falls back to kprobes if the kernel refuses)
    expect(planAttachMode(parsed(SEED), { btfFunctions: ALL, errorInjection: null }).mode).toBe('trampoline');
  });

  it('falls back to kprobes without BTF, for a frame without a BTF entry, or a site off the list', () => {
    expect(planAttachMode(parsed(SEED), { btfFunctions: null, errorInjection: null }).mode).toBe('kprobe');
    const noFrame = planAttachMode(parsed(BANANAS), { btfFunctions: new Set(['should_failslab']), errorInjection: null });
    expect(noFrame).toEqual({ mode: 'kprobe', reason: 'no BTF entry for d_alloc_parallel (inlined or static)' });
    // 6.11+ kernels without CONFIG_FAILSLAB have no should_failslab at all
    expect(planAttachMode(parsed(SEED), { btfFunctions: new Set(['__x64_sys_mount']), errorInjection: null }).reason).toContain('should_failslab');
    expect(planAttachMode(parsed(SEED), { btfFunctions: ALL, errorInjection: new Set(['should_fail_bio']) }).mode).toBe('kprobe');
  });
});

describe('cgroup helpers', () => {
  it('finds the cgroup2 mount in mountinfo, even with optional fields', () => {
    const mountinfo = [
      '22 1 0:21 / /proc rw,nosuid - proc proc rw',
      '30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate',
    ].join('\n');
    expect(cgroup2Mount(mountinfo)).toBe('/sys/fs/cgroup');
    expect(cgroup2Mount('22 1 0:21 / /proc rw - proc proc rw\n')).toBeNull();
  });

  it("reads this process's cgroup v2 path", () => {
    expect(ownCgroupPath('0::/user.slice/user-0.slice/session-1.scope\n')).toBe('/user.slice/user-0.slice/session-1.scope');
    expect(ownCgroupPath('12:cpu:/x\n0::/\n')).toBe('/');
  });
});

describe('BpfFaultEngine.arm', () => {
  it('a request C cannot express is an EngineError before anything reaches the compiler or the kernel', async () => {
    const seventh = param('seventh', 6, null, 0);
    const req = oneFrame(ast.bin('==', ast.param(seventh), ast.int(1n)), [seventh]);
    const error = await new BpfFaultEngine().arm(req, [1n], { attachMode: 'kprobe', cacheDir: '/nonexistent/never-created' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EngineError);
    // The BTF check comes first (or, without a BTF to check against, refuses any typed frame).
    expect((error as EngineError).reason).toBe('invalid-request');
    expect((error as EngineError).message).toMatch(/spec\.failKernRequest\.callchain\[0\]\.parameters: |need the kernel's BTF/);
  });
});

describe('functionsMissingFromKernel', () => {
  it('looks up BTF misses in kallsyms and reports only names the kernel has nowhere', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-kallsyms-'));
    const kallsyms = join(dir, 'kallsyms');
    writeFileSync(kallsyms, '0000000000000000 T should_fail_bio\n0000000000000000 t ext4_fill_super\t[ext4]\n0000000000000000 T __x64_sys_mount\n');
    expect(functionsMissingFromKernel(['__x64_sys_mount'], new Set(['__x64_sys_mount']), kallsyms)).toEqual([]);
    expect(functionsMissingFromKernel(['should_failslab', 'ext4_fill_super', 'should_fail_bio'], new Set(), kallsyms)).toEqual(['should_failslab']);
    expect(functionsMissingFromKernel(['x'], null, join(dir, 'absent'))).toBeNull();
  });
});
