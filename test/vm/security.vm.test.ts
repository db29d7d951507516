// Issue 11's attacks against a real kernel (the test VM, Linux 6.1): one boot runs every case and
// writes its output to a file the assertions read.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, runInVm, vmAvailability, VM_SCRATCH } from './harness.js';
import { writeSpec } from './engine-support.js';
import { KERNEL_READ_REQUESTS, MMAP_PROTOTYPE } from '../fixtures/kernel-read.js';

const vm = vmAvailability();
const RESULTS = join(VM_SCRATCH, `security-vm-${process.pid}`);

function script(specs: Record<string, string>): string {
  const hostView = '/tmp/kc-hostview';
  const R = RESULTS;
  return `
mkdir -p ${hostView} && mount --bind / ${hostView}
KC="node ${hostView}${PROJECT_ROOT}/bin/kernelchaos.js"
mkdir -p ${R}
for name in qstr strncmp; do
  case $name in qstr) spec=${specs.qstr};; strncmp) spec=${specs.strncmp};; esac
  $KC run -f $spec -- touch ${R}/$name.ran > ${R}/$name.out 2>&1
  echo "status=$?" >> ${R}/$name.out
done
`;
}

const read = (name: string): string => readFileSync(join(RESULTS, name), 'utf8');

describe.skipIf(!vm.ok)(`issue 11 attacks in the test VM${vm.ok ? '' : ` (skipped: ${vm.reason})`}`, () => {
  beforeAll(async () => {
    rmSync(RESULTS, { recursive: true, force: true });
    mkdirSync(RESULTS, { recursive: true });
    const specs = {
      qstr: writeSpec('kernel-read-qstr', KERNEL_READ_REQUESTS.qstr),
      strncmp: writeSpec('kernel-read-strncmp', KERNEL_READ_REQUESTS.strncmp),
    };
    const result = await runInVm(script(specs), { timeoutSeconds: 600 });
    if (result.code !== 0) throw new Error(`VM run failed (${result.code}):\n${result.output.slice(-3000)}`);
  }, 900_000);
  afterAll(() => rmSync(RESULTS, { recursive: true, force: true }));

  it.each(['qstr', 'strncmp'])('run refuses the %s kernel-read manifest with the real prototype, before the command starts', (name) => {
    const out = read(`${name}.out`);
    expect(out).toContain("spec.failKernRequest.callchain[0].parameters: parameter 1 'addr' is declared");
    expect(out).toContain(MMAP_PROTOTYPE);
    expect(out).toMatch(/status=[1-9]/);
    expect(() => read(`${name}.ran`)).toThrow();
  });
});
