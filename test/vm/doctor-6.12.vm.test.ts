// `kernelchaos doctor` on the distro-like 6.12 test kernel (no CONFIG_FAULT_INJECTION): failtype 0/1
// fail for the one reason this kernel has (the site is not built), with the change-nothing
// syscall-entry remedy first; failtype 2 works; the seed example works there in the syscall-entry form.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT, VM_SCRATCH, readScratch, runInVm, vmAvailability } from './harness.js';
import type { Diagnosis } from '../../src/bpf/doctor.js';

process.env.KERNELCHAOS_TEST_KERNEL = join(PROJECT_ROOT, '..', 'shared', 'testkernel', 'bzImage-6.12');
const vm = vmAvailability();

describe.skipIf(!vm.ok)(`kernelchaos doctor on the 6.12 test kernel${vm.ok ? '' : ` (skipped: ${vm.reason})`}`, () => {
  it('names the missing site and its config option, offers the syscall-entry form first, and the seed example works that way', async () => {
    const out = `doctor612-${process.pid}-${Date.now()}`;
    const result = await runInVm(
      `mkdir -p /tmp/hv && mount --bind / /tmp/hv && cd /tmp/hv${PROJECT_ROOT}\n` +
        `node bin/kernelchaos.js doctor --output json > ${VM_SCRATCH}/${out}.json; echo "doctor-exit=$?"\n` +
        `node bin/kernelchaos.js doctor -f examples/chaos-mesh/kernel-chaos-example.yaml > ${VM_SCRATCH}/${out}.txt 2>&1; echo "seed-exit=$?"`,
      { timeoutSeconds: 400 },
    );
    expect(result.output).toContain('doctor-exit=0');
    const report = JSON.parse(readScratch(`${out}.json`)) as { diagnosis: Diagnosis };
    const [slab, page, bio] = report.diagnosis.failtypes;
    expect(slab?.verdict).toBe('fails');
    expect(slab?.problems).toEqual([expect.stringContaining('CONFIG_FAILSLAB')]);
    expect(slab?.remedies[0]).toMatch(/syscall-entry form/);
    expect(page?.problems).toEqual([expect.stringContaining('CONFIG_FAIL_PAGE_ALLOC')]);
    // Only what this kernel lacks: it has error injection and kprobe override.
    expect([...(slab?.remedies ?? []), ...(page?.remedies ?? [])].join('\n')).not.toMatch(/FUNCTION_ERROR_INJECTION|KPROBE_OVERRIDE/);
    expect(bio).toMatchObject({ verdict: 'works', via: 'fmod_ret' });
    const text = readScratch(`${out}.txt`);
    expect(text).toMatch(/^first: +no kernel change: make the call chain's outermost frame a syscall/m);
    expect(text).toMatch(/failtype 0 works via syscall-entry form: __x64_sys_mount fails with ENOMEM at entry/);
    expect(result.output).toContain('seed-exit=0');
  }, 450_000);
});
