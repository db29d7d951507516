// Issue 11's attacks against a real kernel (the test VM, Linux 6.1): one boot runs every case and
// writes its output to a file the assertions read.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, runInVm, testKernelHasSite, vmAvailability, VM_SCRATCH } from './harness.js';
import { buildFixtures, ENGINE_CACHE, guestBtf, precompile, writeSpec } from './engine-support.js';
import { KERNEL_READ_REQUESTS, MMAP_PROTOTYPE } from '../fixtures/kernel-read.js';
import { budgetProblem, MAX_PROGRAM_COST } from '../../src/api/predicate/budget.js';
import { parseFailKernRequest } from '../../src/api/predicate/index.js';
import type { FailKernRequest } from '../../src/api/types.js';

const vm = vmAvailability();
const RESULTS = join(VM_SCRATCH, `security-vm-${process.pid}`);

function script(specs: Record<'seed' | 'qstr' | 'strncmp' | 'underBudget' | 'overBudget', string>): string {
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

# the predicate budget: just under it loads into the verifier and arms; just over it is refused before clang
for name in underBudget overBudget; do
  case $name in underBudget) spec=${specs.underBudget};; overBudget) spec=${specs.overBudget};; esac
  $KC run -f $spec -- true > ${R}/$name.out 2>&1
  echo "status=$?" >> ${R}/$name.out
done
`;
}

const read = (name: string): string => readFileSync(join(RESULTS, name), 'utf8');

/** `frames` frames on d_alloc_parallel (one program), each `strcmps` STRCMPs of 255-byte literals. */
function budgetRequest(frames: number, strcmps: number): FailKernRequest {
  const literal = (id: number): string => `${String(id).padStart(3, '0')}${'x'.repeat(252)}`;
  const predicate = (f: number): string => Array.from({ length: strcmps }, (_, s) => `STRCMP(name->name, "${literal(f * 100 + s)}")`).join(' || ');
  return {
    failtype: 0,
    times: 1,
    callchain: Array.from({ length: frames }, (_, f) => ({ funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name', predicate: predicate(f) })),
  };
}
/** 4 x 9 STRCMPs cost 9644 units (about 21000 BPF instructions); 4 x 10 cost 10716, over MAX_PROGRAM_COST. */
const UNDER_BUDGET = budgetRequest(4, 9);
const OVER_BUDGET = budgetRequest(4, 10);

describe.skipIf(!vm.ok)(`issue 11 attacks in the test VM${vm.ok ? '' : ` (skipped: ${vm.reason})`}`, () => {
  beforeAll(async () => {
    rmSync(RESULTS, { recursive: true, force: true });
    mkdirSync(RESULTS, { recursive: true });
    buildFixtures();
    const specs = {
      seed: writeSpec('security-seed', { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }] }),
      qstr: writeSpec('kernel-read-qstr', KERNEL_READ_REQUESTS.qstr),
      strncmp: writeSpec('kernel-read-strncmp', KERNEL_READ_REQUESTS.strncmp),
      underBudget: writeSpec('budget-under', UNDER_BUDGET),
      overBudget: writeSpec('budget-over', OVER_BUDGET),
    };
    const btf = await guestBtf();
    await precompile(specs.seed, btf, ['trampoline']);
    await precompile(specs.underBudget, btf, ['trampoline']);
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

  // The budget programs are frame predicates on d_alloc_parallel under should_failslab: a kernel without the
  // site refuses them before the verifier (the syscall-entry form cannot fail d_alloc_parallel).
  it.skipIf(!testKernelHasSite(0))(`a program just under the predicate budget loads into the verifier and arms; one just over is refused at validation with its cost${testKernelHasSite(0) ? '' : ' (skipped: this kernel has no should_failslab)'}`, () => {
    const costed = (req: FailKernRequest): string | null => budgetProblem(parseFailKernRequest(req).callchain.map((f, index) => ({ index, funcname: f.funcname, predicate: f.predicate })));
    expect(costed(UNDER_BUDGET)).toBeNull();
    expect(costed(OVER_BUDGET)).toContain(`at most ${MAX_PROGRAM_COST}`);
    const under = read('underBudget.out');
    expect(under).toMatch(/^kernelchaos run: armed/m);
    expect(under).toContain('status=0');
    const over = read('overBudget.out');
    expect(over).toMatch(/spec\.failKernRequest\.callchain: the predicates of frames 0, 1, 2, 3 \(all on d_alloc_parallel, one BPF program\) cost 10716 /);
    expect(over).not.toMatch(/armed|clang/);
    expect(over).toMatch(/status=[1-9]/);
  });
});
