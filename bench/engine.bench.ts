// Engine cost benchmark (`npm run bench -- engine`). Measures, inside the test kernel VM, what an
// attached fault program costs a slab-heavy loop (socket()+close(), several should_failslab calls
// per iteration) running in a *targeted* cgroup whose call chain never matches (the seed example's
// chain, __x64_sys_mount, which the loop never enters), against:
//   - baseline: nothing attached;
//   - the engine's generated program, trampoline mode (fmod_ret site + fentry/fexit frames) and kprobe mode;
//   - an inject.py-style kprobe design (bench/fixtures/kprobe-design.bpf.c);
//   - an empty fmod_ret program on the site (bench/fixtures/empty-fmodret.bpf.c): the floor.
// Runs are interleaved (the mode order rotates every repetition) and each mode's median is used.
// Also reports attach time, spec to armed, split into validate, generate, compile, load, attach.
//
// On the host this file compiles the fixtures, boots the VM and runs itself inside it with
// KC_BENCH_IN_VM=1; without a VM it says why and exits 0. The VM is emulated (QEMU TCG), so
// absolute times are inflated many times over; only the ratios measured in the same run mean much.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const WORK = join(ROOT, '.vmcache', 'bench');
const OUT_DIR = join(ROOT, 'bench', 'out');
const RESULT = join(OUT_DIR, 'engine.json');
const SLAB_LOOP = join(WORK, 'slab-loop');
const KPROBE_DESIGN = join(WORK, 'kprobe-design.bpf.o');
const EMPTY_FMODRET = join(WORK, 'empty-fmodret.bpf.o');

const ITERATIONS = Number(process.env.KC_BENCH_ITERATIONS ?? 20_000);
const REPETITIONS = Number(process.env.KC_BENCH_REPETITIONS ?? 9);

/** The seed example of the brief (Chaos Mesh's KernelChaos doc): failtype 0 under __x64_sys_mount. */
const SPEC = {
  apiVersion: 'chaos-mesh.org/v1alpha1',
  kind: 'KernelChaos',
  metadata: { name: 'kernel-chaos-example', namespace: 'chaos-testing' },
  spec: {
    mode: 'one',
    selector: { namespaces: ['chaos-mount'] },
    failKernRequest: { callchain: [{ funcname: '__x64_sys_mount' }], failtype: 0 },
  },
};

type ModeName = 'baseline' | 'engine-trampoline' | 'engine-kprobe' | 'kprobe-design' | 'empty-fmodret';
const MODES: readonly ModeName[] = ['baseline', 'engine-trampoline', 'engine-kprobe', 'kprobe-design', 'empty-fmodret'];

interface ModeResult {
  /** Loop time per run, ns. */
  runsNs: number[];
  /** Site calls the engine counted (engine modes), summed over runs. */
  siteCalls?: number;
  faults?: number;
  error?: string;
}

interface PhaseTimes {
  validateMs: number;
  generateMs: number;
  vmlinuxHeaderMs: number;
  compileUncachedMs: number;
  compileCachedMs: number;
  loadMs: number;
  attachMs: number;
  /** engine.arm() end to end with a cold cache (vmlinux.h + compile + load + attach). */
  armColdMs: number;
  /** engine.arm() with the object cached, median of the benchmark's arms. */
  armCachedMedianMs: number;
}

interface BenchResult {
  kernel: string;
  iterations: number;
  repetitions: number;
  modes: Record<ModeName, ModeResult>;
  attach: Partial<Record<'trampoline' | 'kprobe', PhaseTimes | { error: string }>>;
  notes: string[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const detail = (err as Error & { detail?: string }).detail;
    return detail ? `${err.message}\n${detail}` : err.message;
  }
  return String(err);
}

// ---------------------------------------------------------------------------------------------
// Inside the VM
// ---------------------------------------------------------------------------------------------

async function insideVm(): Promise<void> {
  const { validateKernelChaos } = await import('../src/api/validate.js');
  const { generateProgram } = await import('../src/bpf/generate.js');
  const { compileProgram } = await import('../src/bpf/compile.js');
  const { ensureVmlinuxHeader } = await import('../src/bpf/vmlinux.js');
  const { BpfObject } = await import('../src/bpf/libbpf.js');
  const { BpfFaultEngine } = await import('../src/bpf/engine.js');
  const { cgroupId } = await import('../src/bpf/cgroup.js');

  const notes: string[] = [];
  const verdict = validateKernelChaos(SPEC);
  if (!verdict.valid) throw new Error(`the benchmark spec does not validate: ${JSON.stringify(verdict.errors)}`);
  const request = verdict.parsed;

  const cgroup = '/sys/fs/cgroup/kc-bench-target';
  mkdirSync(cgroup, { recursive: true });
  const targetId = cgroupId(cgroup);
  const cacheDir = mkdtempSync('/tmp/kc-bench-cache-');
  const engine = new BpfFaultEngine();

  // --- attach time, phase by phase, then engine.arm() cold -----------------------------------
  // Untimed first: the guest reads clang and bpftool over 9p, so their first run measures the
  // host filesystem, not the engine. One throwaway compile pages them in.
  {
    const scratch = mkdtempSync('/tmp/kc-bench-warm-');
    await compileProgram(generateProgram(request, 'trampoline', { variant: 'empty-site' }).source, { cacheDir: scratch });
  }
  const attach: BenchResult['attach'] = {};
  for (const mode of ['trampoline', 'kprobe'] as const) {
    try {
      const coldDir = mkdtempSync(`/tmp/kc-bench-cold-${mode}-`);
      let t = performance.now();
      const validated = validateKernelChaos(SPEC);
      const validateMs = performance.now() - t;
      if (!validated.valid) throw new Error('spec invalid');
      t = performance.now();
      const program = generateProgram(validated.parsed, mode);
      const generateMs = performance.now() - t;
      t = performance.now();
      await ensureVmlinuxHeader(coldDir);
      const vmlinuxHeaderMs = performance.now() - t;
      t = performance.now();
      const compiled = await compileProgram(program.source, { cacheDir: coldDir });
      const compileUncachedMs = performance.now() - t;
      t = performance.now();
      const again = await compileProgram(program.source, { cacheDir: coldDir });
      const compileCachedMs = performance.now() - t;
      if (compiled.cached || !again.cached) notes.push(`compile cache for ${mode} did not behave as expected (first cached=${compiled.cached}, second cached=${again.cached})`);
      t = performance.now();
      const object = BpfObject.load(compiled.objectPath);
      const loadMs = performance.now() - t;
      t = performance.now();
      const links = program.hooks.map((h) => object.attach(h.program));
      const attachMs = performance.now() - t;
      for (const link of links.reverse()) link.destroy();
      object.close();
      // End to end with a cold cache of its own (a separate dir, so vmlinux.h is made again).
      const armDir = mkdtempSync(`/tmp/kc-bench-arm-${mode}-`);
      t = performance.now();
      const armed = await engine.arm(request, [targetId], { attachMode: mode, cacheDir: armDir });
      const armColdMs = performance.now() - t;
      armed.disarm();
      attach[mode] = { validateMs, generateMs, vmlinuxHeaderMs, compileUncachedMs, compileCachedMs, loadMs, attachMs, armColdMs, armCachedMedianMs: Number.NaN };
      console.log(`bench: attach ${mode}: ${JSON.stringify(attach[mode], (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))}`);
    } catch (err) {
      attach[mode] = { error: errorText(err) };
      console.log(`bench: attach-time measurement for ${mode} failed: ${errorText(err)}`);
    }
  }

  // --- cost per mode, interleaved --------------------------------------------------------------
  const modes = Object.fromEntries(MODES.map((m) => [m, { runsNs: [] as number[] }])) as Record<ModeName, ModeResult>;
  const armTimes: Record<'trampoline' | 'kprobe', number[]> = { trampoline: [], kprobe: [] };

  const runLoop = (): number => {
    const r = spawnSync(SLAB_LOOP, [String(ITERATIONS), join(cgroup, 'cgroup.procs')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`slab-loop exited ${r.status}: ${r.stderr.trim()}`);
    return Number(r.stdout.trim());
  };

  /** Arms one mode; returns a function that disarms it and reports engine counters. */
  const arm = async (mode: ModeName): Promise<() => { calls?: number; faults?: number }> => {
    switch (mode) {
      case 'baseline':
        return () => ({});
      case 'engine-trampoline':
      case 'engine-kprobe': {
        const attachMode = mode === 'engine-trampoline' ? 'trampoline' : 'kprobe';
        const t = performance.now();
        const armed = await engine.arm(request, [targetId], { attachMode, cacheDir });
        armTimes[attachMode].push(performance.now() - t);
        return () => {
          const c = armed.counters();
          armed.disarm();
          return { calls: Number(c.calls), faults: Number(c.faults) };
        };
      }
      case 'kprobe-design':
      case 'empty-fmodret': {
        const object = BpfObject.load(mode === 'kprobe-design' ? KPROBE_DESIGN : EMPTY_FMODRET);
        const programs = mode === 'kprobe-design' ? ['frame0_enter', 'frame0_exit', 'site'] : ['empty_site'];
        const links = programs.map((p) => object.attach(p));
        return () => {
          for (const link of links.reverse()) link.destroy();
          object.close();
          return {};
        };
      }
    }
  };

  // Warm-up: page cache and slab caches for the loop; vmlinux.h and both objects into the cache,
  // so the timed arms below are cached ones.
  runLoop();
  for (const mode of ['trampoline', 'kprobe'] as const) (await engine.arm(request, [targetId], { attachMode: mode, cacheDir })).disarm();
  for (let rep = 0; rep < REPETITIONS; rep++) {
    const order = MODES.map((_, i) => MODES[(i + rep) % MODES.length] as ModeName);
    for (const mode of order) {
      const result = modes[mode];
      if (result.error) continue;
      let disarm: (() => { calls?: number; faults?: number }) | undefined;
      try {
        disarm = await arm(mode);
        result.runsNs.push(runLoop());
      } catch (err) {
        result.error = errorText(err);
        console.log(`bench: ${mode} failed: ${result.error}`);
      } finally {
        if (disarm) {
          const c = disarm();
          if (c.calls !== undefined) result.siteCalls = (result.siteCalls ?? 0) + c.calls;
          if (c.faults !== undefined) result.faults = (result.faults ?? 0) + c.faults;
        }
      }
    }
    console.log(`bench: repetition ${rep + 1}/${REPETITIONS} done (${order.map((m) => `${m} ${fmt((modes[m].runsNs.at(-1) ?? Number.NaN) / 1e6)} ms`).join(', ')})`);
  }
  for (const mode of ['trampoline', 'kprobe'] as const) {
    const a = attach[mode];
    if (a && !('error' in a)) a.armCachedMedianMs = median(armTimes[mode]);
  }
  rmdirSync(cgroup);

  const result: BenchResult = {
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    iterations: ITERATIONS,
    repetitions: REPETITIONS,
    modes,
    attach,
    notes,
  };
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(RESULT, JSON.stringify(result, null, 2));
  rmSync(cacheDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// On the host
// ---------------------------------------------------------------------------------------------

function vmUnavailableReason(vmRun: string): string | null {
  if (process.env.KERNELCHAOS_SKIP_VM === '1') return 'KERNELCHAOS_SKIP_VM=1 is set';
  const kernel = process.env.KERNELCHAOS_TEST_KERNEL ?? join(ROOT, '..', 'shared', 'testkernel', 'bzImage');
  if (!existsSync(vmRun) || !existsSync(kernel)) return `no test kernel at ${kernel}`;
  for (const bin of ['qemu-system-x86_64', 'busybox', 'cpio', 'clang']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed`;
  }
  return null;
}

function compileFixtures(): void {
  mkdirSync(WORK, { recursive: true });
  const fixtures = join(ROOT, 'bench', 'fixtures');
  const steps: [string, string[]][] = [
    ['clang', ['-O2', '-Wall', '-o', SLAB_LOOP, join(fixtures, 'slab-loop.c')]],
    // No vmlinux.h needed: these programs read no kernel structures.
    ['clang', ['-O2', '-g', '-target', 'bpf', `-I/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, '-c', join(fixtures, 'kprobe-design.bpf.c'), '-o', KPROBE_DESIGN]],
    ['clang', ['-O2', '-g', '-target', 'bpf', `-I/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, '-c', join(fixtures, 'empty-fmodret.bpf.c'), '-o', EMPTY_FMODRET]],
  ];
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  }
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

function report(result: BenchResult): void {
  const base = median(result.modes.baseline.runsNs);
  const tramp = result.modes['engine-trampoline'];
  const callsPerIteration = tramp.siteCalls !== undefined && tramp.runsNs.length > 0 ? tramp.siteCalls / (tramp.runsNs.length * result.iterations) : Number.NaN;
  const added = (m: ModeName): number => (median(result.modes[m].runsNs) - base) / result.iterations;
  const kprobeDesign = added('kprobe-design');
  console.log(`kernel ${result.kernel} under QEMU TCG (emulated: absolute times are inflated many times; compare ratios only)`);
  console.log(`workload: ${result.iterations} x socket(AF_UNIX)+close() in a targeted cgroup, chain __x64_sys_mount never entered; ${result.repetitions} interleaved repetitions, medians`);
  console.log(`should_failslab calls per iteration (engine counter): ${fmt(callsPerIteration, 2)}`);
  console.log('');
  console.log(`${'mode'.padEnd(18)} ${'median loop ms'.padStart(15)} ${'added ns/iter'.padStart(14)} ${'added ns/call'.padStart(14)} ${'vs kprobe design'.padStart(17)}`);
  for (const m of MODES) {
    const r = result.modes[m];
    if (r.error) {
      console.log(`${m.padEnd(18)} FAILED: ${r.error.split('\n')[0]}`);
      continue;
    }
    const a = m === 'baseline' ? 0 : added(m);
    console.log(
      `${m.padEnd(18)} ${fmt(median(r.runsNs) / 1e6, 1).padStart(15)} ${fmt(a).padStart(14)} ${fmt(a / callsPerIteration).padStart(14)} ${(m === 'baseline' ? '' : fmt(a / kprobeDesign, 2)).padStart(17)}`,
    );
  }
  const ratio = added('engine-trampoline') / kprobeDesign;
  console.log('');
  console.log(`engine (trampoline) / kprobe design added cost: ${fmt(ratio, 2)} (target <= 0.80) -> ${ratio <= 0.8 ? 'MET' : 'NOT MET'}`);
  console.log(`empty fmod_ret / kprobe design added cost: ${fmt(added('empty-fmodret') / kprobeDesign, 2)}`);
  const faults = (tramp.faults ?? 0) + (result.modes['engine-kprobe'].faults ?? 0);
  console.log(`faults injected by the engine during the runs: ${faults} (must be 0: the chain never matches)`);
  console.log('');
  console.log('attach time, spec to armed (ms, emulated):');
  for (const [mode, a] of Object.entries(result.attach)) {
    if (!a) continue;
    if ('error' in a) {
      console.log(`  ${mode}: FAILED: ${a.error.split('\n')[0]}`);
      continue;
    }
    console.log(
      `  ${mode}: validate ${fmt(a.validateMs, 1)}, generate ${fmt(a.generateMs, 1)}, vmlinux.h ${fmt(a.vmlinuxHeaderMs)}, ` +
      `compile uncached ${fmt(a.compileUncachedMs)} / cached ${fmt(a.compileCachedMs, 1)}, load ${fmt(a.loadMs)}, attach ${fmt(a.attachMs)}; ` +
      `engine.arm() cold ${fmt(a.armColdMs)}, cached median ${fmt(a.armCachedMedianMs)}`,
    );
  }
  for (const n of result.notes) console.log(`note: ${n}`);
  console.log(`(raw results: ${RESULT})`);
}

async function onHost(): Promise<void> {
  const vmRun = join(ROOT, '..', 'shared', 'testkernel', 'vm-run.sh');
  const why = vmUnavailableReason(vmRun);
  if (why) {
    console.log(`engine benchmark skipped: ${why}. It needs the test kernel VM (../shared/testkernel); the host kernel has no kprobes.`);
    return;
  }
  compileFixtures();
  rmSync(RESULT, { force: true });
  console.log(`booting the test VM (${REPETITIONS} repetitions x ${MODES.length} modes x ${ITERATIONS} iterations; a few minutes under TCG)...`);
  const r = spawnSync(vmRun, ['--timeout', '1500', '--mem', '1024', '--rw', ROOT, '--', 'sh', '-c',
    `cd ${ROOT} && KC_BENCH_IN_VM=1 KC_BENCH_ITERATIONS=${ITERATIONS} KC_BENCH_REPETITIONS=${REPETITIONS} node --import tsx bench/engine.bench.ts`],
  { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const guestLines = (r.stdout ?? '').split('\n').filter((l) => l.startsWith('bench:'));
  for (const l of guestLines) console.log(`  [vm] ${l}`);
  if (!existsSync(RESULT)) {
    console.log(`engine benchmark failed in the VM (exit ${r.status}):\n${(r.stdout ?? '').split('\n').slice(-30).join('\n')}\n${r.stderr ?? ''}`);
    process.exitCode = 1;
    return;
  }
  report(JSON.parse(readFileSync(RESULT, 'utf8')) as BenchResult);
}

if (process.env.KC_BENCH_IN_VM === '1') {
  insideVm().catch((err: unknown) => {
    console.log(`bench: failed: ${errorText(err)}`);
    process.exitCode = 1;
  });
} else {
  await onHost();
}
