import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorInjectionList, kernelBtfFunctions } from '../../src/bpf/btf.js';

describe('kernelBtfFunctions', () => {
  it.skipIf(!existsSync('/sys/kernel/btf/vmlinux'))('finds functions of the running kernel and leaves out what it lacks', () => {
    const found = kernelBtfFunctions(['__x64_sys_mount', 'kc_no_such_function_anywhere']);
    expect(found?.has('__x64_sys_mount')).toBe(true);
    expect(found?.has('kc_no_such_function_anywhere')).toBe(false);
  });

  it('is null for a kernel without BTF', () => {
    expect(kernelBtfFunctions(['__x64_sys_mount'], '/nonexistent/btf/vmlinux')).toBeNull();
  });
});

describe('errorInjectionList', () => {
  it('reads function names from the debugfs list, or null when unreadable', () => {
    const dir = resolve(import.meta.dirname, '..', '..', '.vmcache', 'btf-test');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'list'), 'should_failslab\tERRNO\nshould_fail_bio\tERRNO\nopen_ctree [btrfs]\tERRNO\n');
    expect([...(errorInjectionList(join(dir, 'list')) ?? [])]).toEqual(['should_failslab', 'should_fail_bio', 'open_ctree']);
    expect(errorInjectionList('/nonexistent/error_injection/list')).toBeNull();
  });
});
