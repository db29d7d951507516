// Issue 11's attacks against a real kernel (the test VM, Linux 6.1): one boot runs every case and
// writes its output to a file the assertions read.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, runInVm, vmAvailability, VM_SCRATCH } from './harness.js';
import { buildFixtures, ENGINE_CACHE, guestBtf, precompile, writeSpec } from './engine-support.js';
import { KERNEL_READ_REQUESTS, MMAP_PROTOTYPE } from '../fixtures/kernel-read.js';

const vm = vmAvailability();
const RESULTS = join(VM_SCRATCH, `security-vm-${process.pid}`);

function script(specs: Record<'seed' | 'qstr' | 'strncmp', string>): string {
  const hostView = '/tmp/kc-hostview';
  const R = RESULTS;
  return `
mkdir -p ${hostView} && mount --bind / ${hostView}
KC="node ${hostView}${PROJECT_ROOT}/bin/kernelchaos.js"
export KERNELCHAOS_CACHE=${ENGINE_CACHE}
mkdir -p ${R}
# run killed with -9 while its command runs: the watchdog kills the command's cgroup and removes it
$KC run -f ${specs.seed} -- sh -c 'sleep 1000 & exec sleep 1001' > ${R}/kill9.out 2>&1 &
RUNPID=$!
n=0; until grep -q '^kernelchaos run: armed' ${R}/kill9.out || [ $n -gt 300 ]; do sleep 1; n=$((n+1)); done
sleep 2
echo "before_cgroups=$(find /sys/fs/cgroup -maxdepth 3 -type d -name 'kernelchaos-run-*' | wc -l) before_sleepers=$(ps -eo args | grep -c '^sleep 100[01]')" > ${R}/kill9.result
kill -9 $RUNPID
sleep 6
echo "after_cgroups=$(find /sys/fs/cgroup -maxdepth 3 -type d -name 'kernelchaos-run-*' | wc -l) after_sleepers=$(ps -eo args | grep -c '^sleep 100[01]')" >> ${R}/kill9.result

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
    buildFixtures();
    const specs = {
      seed: writeSpec('security-seed', { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }] }),
      qstr: writeSpec('kernel-read-qstr', KERNEL_READ_REQUESTS.qstr),
      strncmp: writeSpec('kernel-read-strncmp', KERNEL_READ_REQUESTS.strncmp),
    };
    const btf = await guestBtf();
    await precompile(specs.seed, btf, ['trampoline']);
    const result = await runInVm(script(specs), { timeoutSeconds: 900 });
    if (result.code !== 0) throw new Error(`VM run failed (${result.code}):\n${result.output.slice(-3000)}`);
  }, 900_000);
  afterAll(() => rmSync(RESULTS, { recursive: true, force: true }));

  it('run killed with -9 leaves neither its cgroup nor its command behind', () => {
    const result = read('kill9.result');
    expect(result).toMatch(/before_cgroups=1 before_sleepers=2/);
    expect(result).toMatch(/after_cgroups=0 after_sleepers=0/);
  });

  it.each(['qstr', 'strncmp'])('run refuses the %s kernel-read manifest with the real prototype, before the command starts', (name) => {
    const out = read(`${name}.out`);
    expect(out).toContain("spec.failKernRequest.callchain[0].parameters: parameter 1 'addr' is declared");
    expect(out).toContain(MMAP_PROTOTYPE);
    expect(out).toMatch(/status=[1-9]/);
    expect(() => read(`${name}.ran`)).toThrow();
  });
});
