// The fault engine against a real kernel: `kernelchaos run` in the test VM (Linux 6.1, kprobes,
// fmod_ret, BTF, cgroup v2) with real syscalls. One boot runs every case; each case's output goes
// to a file the assertions below read.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, runInVm, testKernelHasSite, vmAvailability, VM_SCRATCH } from './harness.js';
import type { FailKernRequest } from '../../src/api/types.js';
import { buildFixtures, ENGINE_CACHE, FIXTURES_BIN, guestBtf, precompile, SPEC_DIR, writeSpec } from './engine-support.js';

const availability = vmAvailability();
/**
 * The 6.12 test kernel, like distro kernels >= 6.11, has no should_failslab/should_fail_alloc_page:
 * failtype 0/1 run in the syscall-entry form there, and chains that form cannot honour are refused.
 */
const SLAB = testKernelHasSite(0);
const PAGE = testKernelHasSite(1);
const NO_SLAB = 'skipped: this kernel has no should_failslab (CONFIG_FAILSLAB off) and d_alloc_parallel is not error-injectable, so nothing can fail under it';
/** Specs whose chain only the real slab site can honour. */
const NEEDS_SLAB_SITE = new Set(['race', 'prob', 'bananas', 'chainrace', 'never', 'readchain']);
const title = (t: string, needsSlab: boolean): string => (needsSlab && !SLAB ? `${t} [${NO_SLAB}]` : t);
const RESULTS = join(VM_SCRATCH, `engine-vm-${process.pid}`);

const SEED: FailKernRequest = { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }] };
const nameIs = (literal: string, n: number) => ({
  funcname: 'd_alloc_parallel',
  parameters: 'struct dentry *parent, const struct qstr *name',
  predicate: `STRNCMP(name->name, "${literal}", ${n})`,
});

/** name -> [failKernRequest, extra spec fields] */
const SPECS: Record<string, [FailKernRequest, Record<string, unknown>]> = {
  seed: [SEED, {}],
  never: [{ failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }, nameIs('zz-never-created', 17)] }, {}],
  times3: [{ ...SEED, times: 3 }, {}],
  race: [{ failtype: 0, times: 3, callchain: [nameIs('race', 4)] }, {}],
  prob: [{ failtype: 0, probability: 10, callchain: [nameIs('prob', 4)] }, {}],
  duration: [SEED, { duration: '4s', scheduler: { cron: '@every 10m' } }],
  bananas: [{ failtype: 0, callchain: [nameIs('bananas', 8)] }, {}],
  page: [{ failtype: 1, callchain: [{ funcname: '__x64_sys_write' }] }, {}],
  bio: [{ failtype: 2 }, {}],
  // armed by test/vm/fixtures/chain-race.mjs through the engine API
  chainrace: [{ failtype: 0, callchain: [{ funcname: 'd_alloc_parallel' }] }, {}],
  // armed by test/vm/fixtures/kretprobe-miss.mjs (kprobe mode)
  readchain: [{ failtype: 0, callchain: [{ funcname: '__x64_sys_read' }] }, {}],
};

function script(): string {
  const hostView = '/tmp/kc-hostview';
  const S = SPEC_DIR;
  const B = FIXTURES_BIN;
  const R = RESULTS;
  return `
# /work/main is shared uncached (9p cache=none): reading node_modules through it costs ~30 s per
# node start. A plain bind of / shows the read-only, cached view of the same files.
mkdir -p ${hostView} && mount --bind / ${hostView}
KC="node ${hostView}${PROJECT_ROOT}/bin/kernelchaos.js"
export KERNELCHAOS_CACHE=${ENGINE_CACHE}
mkdir -p ${R} /tmp/fruit /tmp/race /tmp/prob
n=0; until [ -e /dev/ram0 ] || [ $n -gt 50 ]; do sleep 0.1; n=$((n+1)); done

# seed: a mount loop in the target fails with ENOMEM every time; a bystander looping meanwhile never does
for mode in auto kprobe; do
  rm -f /tmp/done
  ( while [ ! -e /tmp/done ]; do ${B}/mount-many /tmp/by 5; done ) > ${R}/seed-$mode.bystander 2>&1 &
  $KC run -f ${S}/seed.yaml --attach-mode $mode -- sh -c '${B}/mount-many /tmp/t 20; mkdir -p /tmp/t2; mount -t tmpfs kc /tmp/t2' > ${R}/seed-$mode.out 2>&1
  echo "status=$?" >> ${R}/seed-$mode.out
  touch /tmp/done; wait
done

# targets include descendants: the command moves itself into a cgroup it creates below the run's
$KC run -f ${S}/seed.yaml -- sh -c 'cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup); mkdir $cg/inner && echo $$ > $cg/inner/cgroup.procs && echo "now=$(sed -n "s/^0:://p" /proc/self/cgroup)" && ${B}/mount-many /tmp/t 5' > ${R}/nested.out 2>&1
echo "status=$?" >> ${R}/nested.out
echo "left=$(ls -d /sys/fs/cgroup/kernelchaos-run-* 2>/dev/null | wc -l)" >> ${R}/nested.out

# live retargeting through the engine API (the companion's path)
node ${hostView}${PROJECT_ROOT}/test/vm/fixtures/retarget.mjs ${B}/mount-many > ${R}/retarget.out 2>&1

if [ ${SLAB ? 1 : 0} = 1 ]; then
# armed while target threads run inside the chain's frame: faults inside the chain, none outside.
# One arm per attach mode: re-arming the same frame while the threads keep looping has stalled the
# emulated 6.1 guest (RCU stall); a bound keeps a stall from taking the rest of the suite with it.
timeout 300 node ${hostView}${PROJECT_ROOT}/test/vm/fixtures/chain-race.mjs ${B}/frame-loop 1 > ${R}/chainrace.out 2>&1
# more target threads inside read(2) than its kretprobe has instances: missed exits stay harmless
timeout 300 node ${hostView}${PROJECT_ROOT}/test/vm/fixtures/kretprobe-miss.mjs ${B}/read-then-pipe > ${R}/kretprobe-miss.out 2>&1
fi

# one cached object, two arms with different times and probability (load-time settings)
mkdir -p /tmp/settings-0 /tmp/settings-1
node ${hostView}${PROJECT_ROOT}/test/vm/fixtures/settings.mjs ${SLAB ? `slab ${B}/create-files` : `entry ${B}/mount-many`} > ${R}/settings.out 2>&1

$KC run -f ${S}/never.yaml -- ${B}/mount-many /tmp/t 20 > ${R}/never.out 2>&1; echo "status=$?" >> ${R}/never.out
$KC run -f ${S}/times3.yaml -- ${B}/mount-many /tmp/t 20 > ${R}/times3.out 2>&1; echo "status=$?" >> ${R}/times3.out
if [ ${SLAB ? 1 : 0} = 1 ]; then
$KC run -f ${S}/race.yaml -- ${B}/create-files /tmp/race race 400 8 > ${R}/race.out 2>&1; echo "status=$?" >> ${R}/race.out
$KC run -f ${S}/prob.yaml -- ${B}/create-files /tmp/prob prob 2000 1 > ${R}/prob.out 2>&1; echo "status=$?" >> ${R}/prob.out
fi
$KC run -f ${S}/duration.yaml -- ${B}/mount-many /tmp/t 40 250 > ${R}/duration.out 2>&1; echo "status=$?" >> ${R}/duration.out

for mode in auto kprobe; do
  rm -f /tmp/fruit/*
  if [ ${SLAB ? 1 : 0} = 1 ]; then
  $KC run -f ${S}/bananas.yaml --attach-mode $mode -- sh -c 'cd /tmp/fruit; touch apples; echo apples=$?; touch bananas; echo bananas=$?' > ${R}/bananas-$mode.out 2>&1
  echo "status=$?" >> ${R}/bananas-$mode.out
  fi

  # failtype 1 under write(2): the target's pipe writes fail (read by exit status: the fault breaks pipe output)
  { $KC run -f ${S}/page.yaml --attach-mode $mode -- dd if=/dev/zero bs=4096 count=64 2>${R}/page-$mode.out; echo "status=$?" > ${R}/page-$mode.status; } | cat > /dev/null
  { dd if=/dev/zero bs=4096 count=64 2>/dev/null; echo "status=$?" > ${R}/page-$mode.bystander; } | cat > /dev/null

  # failtype 2: O_DIRECT writes to a ram disk fail with EIO in the target only
  $KC run -f ${S}/bio.yaml --attach-mode $mode -- dd if=/dev/zero of=/dev/ram0 bs=4096 count=16 oflag=direct > ${R}/bio-$mode.out 2>&1
  echo "status=$?" >> ${R}/bio-$mode.out
  dd if=/dev/zero of=/dev/ram1 bs=4096 count=16 oflag=direct > ${R}/bio-$mode.bystander 2>&1; echo "status=$?" >> ${R}/bio-$mode.bystander
done

# failtype 2, writeback: the target only dirties the page cache of /dev/ram2; a bystander's sync
# writes it back, so the current task is not a target and only the bio's cgroup (its blkcg) is.
# Cgroup writeback needs the memory and io controllers; a bystander holds the device open so the
# target's close does not flush it itself.
echo "+memory +io" > /sys/fs/cgroup/cgroup.subtree_control
exec 3</dev/ram2
rm -f /tmp/written /tmp/synced
$KC run -f ${S}/bio.yaml -- sh -c 'dd if=/dev/urandom of=/dev/ram2 bs=4096 count=64 2>/dev/null; echo dd=$?; touch /tmp/written; while [ ! -e /tmp/synced ]; do sleep 0.1; done' > ${R}/writeback.out 2>&1 &
n=0; until [ -e /tmp/written ] || [ $n -gt 600 ]; do sleep 0.2; n=$((n+1)); done
sync; echo "sync_status=$?" >> ${R}/writeback.sync
touch /tmp/synced; wait
exec 3<&-

# SIGKILL: the kernel drops every program with the process's file descriptors
$KC run -f ${S}/seed.yaml -- sleep 120 > ${R}/sigkill.run 2>&1 &
pid=$!
n=0; until { grep -q armed ${R}/sigkill.run && pgrep -x sleep >/dev/null; } || [ $n -gt 600 ]; do sleep 0.2; n=$((n+1)); done
echo "before=$(bpftool prog list | grep -c 'name kc_')" > ${R}/sigkill.out
kill -KILL $pid; wait $pid 2>/dev/null
n=0; while bpftool prog list | grep -q 'name kc_' && [ $n -lt 100 ]; do sleep 0.2; n=$((n+1)); done
echo "after=$(bpftool prog list | grep -c 'name kc_')" >> ${R}/sigkill.out
echo "links=$(bpftool link list | grep -c '^[0-9]*:')" >> ${R}/sigkill.out
echo "sleep_alive=$(pgrep -x sleep >/dev/null && echo yes || echo no)" >> ${R}/sigkill.out
pkill -x sleep
echo "leftover=$(bpftool prog list | grep -c 'name kc_')" > ${R}/final.out
echo done > ${R}/complete
`;
}

function read(name: string): string {
  try {
    return readFileSync(join(RESULTS, name), 'utf8');
  } catch {
    return `(no ${name})`;
  }
}

/** `key=value` from a case's output, as a number. */
function num(text: string, key: string): number {
  const m = new RegExp(`\\b${key}=(-?\\d+)`).exec(text);
  if (!m?.[1]) throw new Error(`no ${key}= in:\n${text}`);
  return Number(m[1]);
}

/** The run summary's counters. */
function summary(text: string): { calls: number; faults: number; mode: string } {
  const m = /(\d+) calls of \w+ [^,]*, (\d+) faults injected \(failtype \d: [^;]*; (\w+) mode\)/.exec(text);
  if (!m) throw new Error(`no run summary in:\n${text}`);
  return { calls: Number(m[1]), faults: Number(m[2]), mode: m[3] ?? '' };
}

describe.skipIf(!availability.ok)('fault engine in the test VM', () => {
  let vmOutput = '';

  beforeAll(async () => {
    rmSync(RESULTS, { recursive: true, force: true });
    mkdirSync(RESULTS, { recursive: true });
    buildFixtures();
    const btf = await guestBtf();
    for (const [name, [request, extra]] of Object.entries(SPECS)) {
      const path = writeSpec(name, request, extra);
      if (NEEDS_SLAB_SITE.has(name) && !SLAB) continue; // refused before any compile
      const entryForm = (request.failtype === 0 && !SLAB) || (request.failtype === 1 && !PAGE);
      await precompile(path, btf, ['trampoline', 'kprobe'], entryForm ? 'syscall-entry' : 'site');
    }
    const result = await runInVm(script(), { timeoutSeconds: 1500 });
    vmOutput = result.output;
    writeFileSync(join(RESULTS, 'console.log'), vmOutput);
  }, 1_800_000);

  const context = (name: string): string => `${read(name)}\n--- console tail ---\n${vmOutput.slice(-3000)}`;

  it.each(['auto', 'kprobe'])('seed example (%s): every mount in the target fails with ENOMEM, a bystander never', (mode) => {
    const out = read(`seed-${mode}.out`);
    expect(num(out, 'enomem'), context(`seed-${mode}.out`)).toBe(20);
    expect(num(out, 'ok')).toBe(0);
    expect(out).toContain('error=Cannot allocate memory');
    expect(out).toMatch(/mount.*Cannot allocate memory/); // util-linux mount(8) says it too
    expect(out).toContain('spec.selector, spec.mode do not apply locally');
    const s = summary(out);
    expect(s.mode).toBe(mode === 'auto' ? 'trampoline' : 'kprobe');
    expect(s.faults).toBeGreaterThanOrEqual(21);
    // without should_failslab the mechanism is said, never silent
    if (!SLAB) expect(out).toContain('mechanism: syscall-entry form: __x64_sys_mount');
    else expect(out).not.toContain('syscall-entry');
    const bystander = read(`seed-${mode}.bystander`);
    const rounds = [...bystander.matchAll(/ok=(\d+) enomem=(\d+)/g)];
    expect(rounds.length, bystander).toBeGreaterThan(0);
    for (const r of rounds) expect(r[2]).toBe('0');
  });

  it('cgroups created below the target are targets too, and run removes them all', () => {
    const out = read('nested.out');
    expect(out, context('nested.out')).toMatch(/now=\/kernelchaos-run-\d+\/inner/);
    expect(num(out, 'enomem')).toBe(5);
    expect(num(out, 'left')).toBe(0);
    expect(out).not.toContain('could not remove');
  });

  it('setTargetCgroups moves the fault live; disarm is idempotent and keeps the last counters', () => {
    const out = read('retarget.out');
    const line = /RETARGET (\{.*\})/.exec(out)?.[1];
    expect(line, context('retarget.out')).toBeDefined();
    expect(JSON.parse(line ?? '{}')).toEqual({
      mode: 'trampoline',
      noTargets: 0,
      targeted: 5,
      otherTargeted: 0,
      rootTargeted: 5, // a target's descendants are targets
      cleared: 0,
      faultsBeforeDisarm: 10,
      faultsAfterDisarm: 10,
      afterDisarm: 0,
    });
  });

  it.skipIf(!SLAB).each(['trampoline', 'kprobe'])(title('armed while targets run inside the frame (%s): faults only inside the chain, no state left', true), (mode) => {
    const out = read('chainrace.out');
    const line = /CHAINRACE (\{.*\})/.exec(out)?.[1];
    expect(line, context('chainrace.out')).toBeDefined();
    const r = (JSON.parse(line ?? '{}') as Record<string, { creates: number; createEnomem: number; pipes: number; pipeFail: number; faults: number; leftThreads: number }>)[mode];
    expect(r, out).toBeDefined();
    // 3 arms per mode, each while 2 threads loop create-then-pipe: pipe() is outside the chain
    expect(r?.pipes).toBeGreaterThan(50);
    expect(r?.pipeFail, out).toBe(0);
    expect(r?.createEnomem).toBeGreaterThan(0);
    expect(r?.faults).toBeGreaterThanOrEqual(r?.createEnomem ?? 1);
    expect(r?.leftThreads, out).toBe(0);
  });

  it.skipIf(!SLAB)(title('kprobe mode: a kretprobe that missed (more calls in flight than its instances) causes no fault outside the chain', true), () => {
    const out = read('kretprobe-miss.out');
    const line = /KRETPROBEMISS (\{.*\})/.exec(out)?.[1];
    expect(line, context('kretprobe-miss.out')).toBeDefined();
    type Trial = { threads: number; stale: number; pipes: number; pipeFail: number; reason?: string };
    const r = JSON.parse(line ?? '{}') as { engine: Trial; unchecked: Trial };
    // exits were missed: state left behind after every read(2) returned
    expect(r.engine.stale, out).toBeGreaterThan(0);
    expect(r.engine.pipes).toBe(r.engine.threads * 20);
    expect(r.engine.pipeFail, out).toBe(0);
    expect(r.engine.reason).not.toContain('kretprobe trampoline is not in /proc/kallsyms');
    // the control: the same object without the trampoline check fails pipe() outside the chain
    expect(r.unchecked.stale, out).toBeGreaterThan(0);
    expect(r.unchecked.pipeFail, out).toBeGreaterThan(0);
  });

  it('one compiled object serves specs that differ only in times and probability, each honoured', () => {
    const out = read('settings.out');
    const line = /SETTINGS (\{.*\})/.exec(out)?.[1];
    expect(line, context('settings.out')).toBeDefined();
    type Arm = { ok: number; enomem: number; faults: number; cached: boolean; objectPath: string };
    const r = JSON.parse(line ?? '{}') as { times2: Arm; prob50: Arm };
    expect(r.times2.cached && r.prob50.cached, out).toBe(true);
    expect(r.prob50.objectPath).toBe(r.times2.objectPath);
    expect(r.times2).toMatchObject({ ok: 8, enomem: 2, faults: 2 });
    // Binomial(100, 0.5): mean 50, sd 5; 99.9% two-sided is +-3.29 sd
    expect(r.prob50.enomem).toBeGreaterThanOrEqual(34);
    expect(r.prob50.enomem).toBeLessThanOrEqual(66);
    expect(r.prob50.ok + r.prob50.enomem).toBe(100);
    expect(r.prob50.faults).toBe(r.prob50.enomem);
  });

  it.skipIf(SLAB)('without should_failslab a chain with a predicate on an inner frame is refused with the reason', () => {
    const out = read('never.out');
    expect(num(out, 'status'), context('never.out')).toBe(125);
    expect(out).toContain('spec.failKernRequest.callchain[1].predicate: cannot be honoured by the syscall-entry form: __x64_sys_mount fails at entry, before d_alloc_parallel runs');
  });

  it.skipIf(!SLAB)(title('a chain the workload never completes injects nothing', true), () => {
    const out = read('never.out');
    expect(num(out, 'ok'), context('never.out')).toBe(20);
    expect(num(out, 'enomem')).toBe(0);
    // the site's gate (no thread with the whole chain active) answers before anything is counted
    expect(summary(out)).toMatchObject({ calls: 0, faults: 0 });
  });

  it('times: 3 injects exactly 3 faults', () => {
    const out = read('times3.out');
    expect(num(out, 'enomem'), context('times3.out')).toBe(3);
    expect(num(out, 'ok')).toBe(17);
    expect(out).toMatch(/trace=FFF\.{17}/);
    expect(summary(out).faults).toBe(3);
  });

  it.skipIf(!SLAB)(title('times: 3 stays exact with 8 threads racing', true), () => {
    const out = read('race.out');
    expect(num(out, 'enomem'), context('race.out')).toBe(3);
    expect(num(out, 'ok')).toBe(397);
    expect(summary(out).faults).toBe(3);
  });

  it.skipIf(!SLAB)(title('probability: 10 over 2,000 creates lands inside the binomial 99.9% interval', true), () => {
    const out = read('prob.out');
    const failed = num(out, 'enomem');
    // Binomial(2000, 0.1): mean 200, sd 13.4; 99.9% two-sided is +-3.29 sd
    expect(failed, context('prob.out')).toBeGreaterThanOrEqual(156);
    expect(failed).toBeLessThanOrEqual(244);
    expect(num(out, 'ok') + failed).toBe(2000);
    expect(summary(out).faults).toBe(failed);
  });

  it('duration: faults stop when it ends and the command goes on', () => {
    const out = read('duration.out');
    const trace = /trace=(\S+)/.exec(out)?.[1] ?? '';
    expect(trace, context('duration.out')).toMatch(/^F+\.+$/);
    expect(out).toContain('disarmed: duration 4s ended');
    expect(out).toContain('spec.selector, spec.mode, spec.scheduler do not apply locally');
    expect(num(out, 'status')).toBe(0);
  });

  it.skipIf(!SLAB).each(['auto', 'kprobe'])(title('predicate on a parameter (%s): only creating "bananas" fails', true), (mode) => {
    const out = read(`bananas-${mode}.out`);
    expect(num(out, 'apples'), context(`bananas-${mode}.out`)).toBe(0);
    expect(num(out, 'bananas')).toBe(1);
    expect(out).toMatch(/bananas.*Cannot allocate memory/);
    expect(summary(out).faults).toBeGreaterThanOrEqual(1);
  });

  it.each(['auto', 'kprobe'])('failtype 1 (%s): page allocations under write(2) fail, the pipe write errors out', (mode) => {
    const status = read(`page-${mode}.status`);
    expect(num(status, 'status'), context(`page-${mode}.out`)).toBe(1);
    expect(summary(read(`page-${mode}.out`)).faults).toBeGreaterThanOrEqual(1);
    expect(num(read(`page-${mode}.bystander`), 'status')).toBe(0);
  });

  it.each(['auto', 'kprobe'])('failtype 2 (%s): O_DIRECT writes to a ram disk fail with EIO in the target only', (mode) => {
    const out = read(`bio-${mode}.out`);
    expect(out, context(`bio-${mode}.out`)).toContain('Input/output error');
    expect(num(out, 'status')).toBe(1);
    expect(summary(out).faults).toBeGreaterThanOrEqual(1);
    const bystander = read(`bio-${mode}.bystander`);
    expect(num(bystander, 'status'), bystander).toBe(0);
  });

  it('failtype 2 attributes writeback by the bio\'s cgroup: a bystander\'s sync of the target\'s pages fails', () => {
    const out = read('writeback.out');
    expect(num(out, 'dd'), context('writeback.out')).toBe(0); // buffered: the write itself succeeded
    expect(summary(out).faults).toBeGreaterThanOrEqual(1);
    expect(read('writeback.sync')).toContain('sync_status=0');
  });

  it('run killed with SIGKILL leaves no program attached', () => {
    const out = read('sigkill.out');
    // site, entry, exit and thread-exit programs; the syscall-entry form (no slab site) has only its site
    expect(num(out, 'before'), context('sigkill.out')).toBeGreaterThanOrEqual(SLAB ? 3 : 1);
    expect(num(out, 'after')).toBe(0);
    expect(num(out, 'links')).toBe(0);
    // run's watchdog kills the command's cgroup when run itself is killed (nothing keeps faulting or running).
    expect(out).toContain('sleep_alive=no');
  });

  it('nothing is left attached after all the runs', () => {
    expect(num(read('final.out'), 'leftover'), context('final.out')).toBe(0);
  });
});

if (!availability.ok) {
  describe('fault engine in the test VM', () => {
    it.skip(`skipped: ${availability.reason}`, () => {});
  });
}
