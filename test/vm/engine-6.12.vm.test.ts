// The engine suite of engine.vm.test.ts on the distro-like 6.12 test kernel (no CONFIG_FAULT_INJECTION:
// no should_failslab or should_fail_alloc_page). The suite adapts to the kernel it boots: failtype 0/1
// go through the syscall-entry form, and what this kernel cannot do is skipped with its reason.
import { join } from 'node:path';
import { PROJECT_ROOT } from './harness.js';

process.env.KERNELCHAOS_TEST_KERNEL = join(PROJECT_ROOT, '..', 'shared', 'testkernel', 'bzImage-6.12');
await import('./engine.vm.test.js');
