// Engine cost benchmark (`npm run bench -- engine`). Measures, inside the test kernel VM, what an
// attached fault program costs a slab-heavy loop (socket()+close(), several should_failslab calls
// per iteration) running in a *targeted* cgroup whose call chain never matches (the seed example's
// chain, __x64_sys_mount, which the loop never enters), against:
//   - baseline: nothing attached;
//   - the engine's generated program, trampoline mode (fmod_ret site + fentry/fexit frames) and kprobe mode;
//   - an inject.py-style kprobe design (bench/fixtures/kprobe-design.bpf.c);
//   - an empty fmod_ret program on the site (bench/fixtures/empty-fmodret.bpf.c): the floor.
// Each armed run is paired with the baseline runs just before and after it; the mode order rotates
// every repetition; the report uses medians. Also reports attach time, spec to armed, split into
// validate, generate, vmlinux.h, compile (uncached and cached), load and attach.
//
// On kernels without should_failslab (the 6.12 test kernel, distro kernels >= 6.11) failtype 0 runs
// in the syscall-entry form, so the hot path is the syscall itself: the loop's socket() under a
// chain [__x64_sys_socket] whose faults are never due (its `times` used up, or a predicate on the
// frame that never holds), against an inject.py-style one-frame kprobe
// (bench/fixtures/kprobe-design-entry.bpf.c) in the same states.
//
// On the host this file compiles the fixtures and boots the VM once per test kernel
// (KC_BENCH_KERNELS=6.1,6.12 to choose; default both) with KC_BENCH_PHASE=cost under
// `vm-run.sh --icount`, then once on 6.1 with KC_BENCH_PHASE=attach. The VM is emulated (QEMU TCG): absolute times are inflated
// many times over and only ratios mean much. The cost phase runs QEMU with -icount (the guest
// clock advances one virtual ns per guest instruction), so its loop times count instructions and
// do not swing with the load on the shared host (plain TCG varied 2x run to run at load 9 on 2
// CPUs; icount repeats to ~0.5%). Instructions are a proxy: they do not model cache misses or
// pipeline costs. KC_BENCH_ICOUNT=0 measures wall time instead; KC_BENCH_SKIP_ATTACH=1 skips the
// attach phase; KC_BENCH_ITERATIONS / KC_BENCH_REPETITIONS size the runs; KC_BENCH_REPORT_ONLY=1
// re-prints the last results. Without a VM: says why, exits 0.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const WORK = join(ROOT, '.vmcache', 'bench');
const OUT_DIR = process.env.KC_BENCH_OUT ?? join(ROOT, 'bench', 'out');
const SLAB_LOOP = join(WORK, 'slab-loop');
const KPROBE_DESIGN: Record<ScenarioName, string> = {
  'never-entered': join(WORK, 'kprobe-design-1.bpf.o'),
  'entered-incomplete': join(WORK, 'kprobe-design-2.bpf.o'),
  'syscall-entry': join(WORK, 'kprobe-design-entry.bpf.o'),
  'syscall-entry-predicate': join(WORK, 'kprobe-design-entry-predicate.bpf.o'),
};
/** The hot-path function: should_failslab, or on kernels without it the syscall the syscall-entry form fails. */
type SiteName = 'should_failslab' | '__x64_sys_socket';
const EMPTY_FMODRET: Record<SiteName, string> = {
  should_failslab: join(WORK, 'empty-fmodret.bpf.o'),
  __x64_sys_socket: join(WORK, 'empty-fmodret-socket.bpf.o'),
};
const COUNT_SITE: Record<SiteName, string> = {
  should_failslab: join(WORK, 'count-site.bpf.o'),
  __x64_sys_socket: join(WORK, 'count-site-socket.bpf.o'),
};

/** The test kernels the cost phase boots (KC_BENCH_KERNELS=6.1,6.12 chooses), each with its own results file. */
const TESTKERNEL_DIR = join(ROOT, '..', 'shared', 'testkernel');
const KERNELS = { '6.1': join(TESTKERNEL_DIR, 'bzImage'), '6.12': join(TESTKERNEL_DIR, 'bzImage-6.12') } as const;
type KernelLabel = keyof typeof KERNELS;
const costFileFor = (kernel: KernelLabel): string => join(OUT_DIR, `engine-cost-${kernel}.json`);

const ITERATIONS = Number(process.env.KC_BENCH_ITERATIONS ?? 10_000);
const REPETITIONS = Number(process.env.KC_BENCH_REPETITIONS ?? 5);
const ICOUNT = process.env.KC_BENCH_ICOUNT !== '0';
/** Cached arms timed in the attach phase. */
const CACHED_ARMS = 5;

/**
 * Two chains that never let the site fail, each a KernelChaos manifest:
 *  - never-entered: the seed example of the brief (Chaos Mesh's KernelChaos doc), failtype 0 under
 *    __x64_sys_mount, which the loop never calls: only the site program runs;
 *  - entered-incomplete: __x64_sys_socket then __x64_sys_mount: the loop enters frame 0 on every
 *    iteration (its entry and exit programs run) but never frame 1, so the chain never completes.
 */
type ScenarioName = 'never-entered' | 'entered-incomplete' | 'syscall-entry' | 'syscall-entry-predicate';
interface Scenario {
  chain: string[];
  /** A predicate on frame 0 (the syscall's `const struct pt_regs *regs`) that the loop never satisfies. */
  predicate?: string;
  kprobeDesignPrograms: string[];
  site: SiteName;
  /** spec `times`, with the budget already used up when armed (claimed = times): faults never due. */
  times?: number;
}
const SCENARIOS: Record<ScenarioName, Scenario> = {
  'never-entered': { chain: ['__x64_sys_mount'], kprobeDesignPrograms: ['frame0_enter', 'frame0_exit', 'site'], site: 'should_failslab' },
  'entered-incomplete': {
    chain: ['__x64_sys_socket', '__x64_sys_mount'],
    kprobeDesignPrograms: ['frame0_enter', 'frame0_exit', 'frame1_enter', 'frame1_exit', 'site'],
    site: 'should_failslab',
  },
  /**
   * Kernels without should_failslab (>= 6.11): failtype 0 under __x64_sys_socket in the
   * syscall-entry form, so the loop's socket() is the hot path, with `times: 1` already used up:
   * every call runs every check of the site program and none fails.
   */
  'syscall-entry': { chain: ['__x64_sys_socket'], kprobeDesignPrograms: ['site'], site: '__x64_sys_socket', times: 1 },
  /**
   * The same site with budget left and a predicate on the frame that never holds (the loop's
   * family is AF_UNIX, 1): every check of the site program runs, the target cgroup's included.
   */
  'syscall-entry-predicate': { chain: ['__x64_sys_socket'], predicate: 'regs->di == 2', kprobeDesignPrograms: ['site'], site: '__x64_sys_socket' },
};
const SLAB_SCENARIOS: readonly ScenarioName[] = ['never-entered', 'entered-incomplete'];
const ENTRY_SCENARIOS: readonly ScenarioName[] = ['syscall-entry', 'syscall-entry-predicate'];

function specFor(chain: readonly string[], times?: number, predicate?: string) {
  return {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: { name: 'kernel-chaos-example', namespace: 'chaos-testing' },
    spec: {
      mode: 'one',
      selector: { namespaces: ['chaos-mount'] },
      failKernRequest: {
        callchain: chain.map((funcname, i) => ({ funcname, ...(i === 0 && predicate ? { parameters: 'const struct pt_regs *regs', predicate } : {}) })),
        failtype: 0,
        ...(times ? { times } : {}),
      },
    },
  };
}
const SPEC = specFor(SCENARIOS['never-entered'].chain);

type ModeName = 'baseline' | 'engine-trampoline' | 'engine-kprobe' | 'kprobe-design' | 'empty-fmodret';
const MODES: readonly ModeName[] = ['baseline', 'engine-trampoline', 'engine-kprobe', 'kprobe-design', 'empty-fmodret'];
type EngineMode = 'trampoline' | 'kprobe';

interface ModeResult {
  /** Loop time per run, ns (virtual ns under icount). */
  runsNs: number[];
  /** Per armed run: its time minus the mean of the baseline runs just before and after it, ns. */
  pairedAddedNs: number[];
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
  /** engine.arm() with vmlinux.h and the object cached: median. */
  armCachedMedianMs: number;
}

interface AttachResult {
  kernel: string;
  attach: Partial<Record<EngineMode, PhaseTimes | { error: string }>>;
  notes: string[];
}

interface CostResult {
  kernel: string;
  icount: boolean;
  iterations: number;
  repetitions: number;
  /** should_failslab calls per loop iteration (counted in a calibration run). */
  siteCallsPerIteration: number;
  /** The hot-path function (absent in results from before the syscall-entry scenario: should_failslab). */
  site?: SiteName;
  scenarios: Partial<Record<ScenarioName, Record<ModeName, ModeResult>>>;
  notes: string[];
}

function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (at - lo);
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
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

async function loadEngineModules() {
  const [validate, generate, compile, vmlinux, libbpf, engine, cgroup] = await Promise.all([
    import('../src/api/validate.js'),
    import('../src/bpf/generate.js'),
    import('../src/bpf/compile.js'),
    import('../src/bpf/vmlinux.js'),
    import('../src/bpf/libbpf.js'),
    import('../src/bpf/engine.js'),
    import('../src/bpf/cgroup.js'),
  ]);
  return { ...validate, ...generate, ...compile, ...vmlinux, ...libbpf, ...engine, ...cgroup };
}

function parsedSpec(m: Awaited<ReturnType<typeof loadEngineModules>>, spec: unknown = SPEC) {
  const verdict = m.validateKernelChaos(spec);
  if (!verdict.valid) throw new Error(`the benchmark spec does not validate: ${JSON.stringify(verdict.errors)}`);
  return verdict.parsed;
}

const TARGET_CGROUP = '/sys/fs/cgroup/kc-bench-target';

/** Attach time, phase by phase, then engine.arm() cold and cached. Wall time (no icount). */
async function attachPhase(): Promise<void> {
  const m = await loadEngineModules();
  const request = parsedSpec(m);
  mkdirSync(TARGET_CGROUP, { recursive: true });
  const targetId = m.cgroupId(TARGET_CGROUP);
  const engine = new m.BpfFaultEngine();
  const notes: string[] = [];
  // Untimed first: the guest reads clang, bpftool and libbpf over 9p, so their first use measures
  // the host filesystem, not the engine; and the first validation compiles the schema validators.
  // A long-running companion pays these once. One throwaway compile, load and validation.
  await m.compileProgram(m.generateProgram(request, 'trampoline', { variant: 'empty-site' }).source, { cacheDir: mkdtempSync('/tmp/kc-bench-warm-') });
  m.BpfObject.load(EMPTY_FMODRET.should_failslab).close();
  parsedSpec(m);

  const attach: AttachResult['attach'] = {};
  for (const mode of ['trampoline', 'kprobe'] as const) {
    try {
      const coldDir = mkdtempSync(`/tmp/kc-bench-cold-${mode}-`);
      let t = performance.now();
      const validated = m.validateKernelChaos(SPEC);
      const validateMs = performance.now() - t;
      if (!validated.valid) throw new Error('spec invalid');
      t = performance.now();
      const program = m.generateProgram(validated.parsed, mode);
      const generateMs = performance.now() - t;
      t = performance.now();
      await m.ensureVmlinuxHeader(coldDir);
      const vmlinuxHeaderMs = performance.now() - t;
      t = performance.now();
      const compiled = await m.compileProgram(program.source, { cacheDir: coldDir });
      const compileUncachedMs = performance.now() - t;
      t = performance.now();
      const again = await m.compileProgram(program.source, { cacheDir: coldDir });
      const compileCachedMs = performance.now() - t;
      if (compiled.cached || !again.cached) notes.push(`compile cache for ${mode}: first cached=${compiled.cached}, second cached=${again.cached}`);
      t = performance.now();
      const object = m.BpfObject.load(compiled.objectPath);
      const loadMs = performance.now() - t;
      t = performance.now();
      const links = program.hooks.map((h) => object.attach(h.program));
      const attachMs = performance.now() - t;
      for (const link of links.reverse()) link.destroy();
      object.close();
      // End to end with a cold cache of its own (a separate dir: vmlinux.h is made again).
      const armDir = mkdtempSync(`/tmp/kc-bench-arm-${mode}-`);
      t = performance.now();
      (await engine.arm(request, [targetId], { attachMode: mode, cacheDir: armDir })).disarm();
      const armColdMs = performance.now() - t;
      const cached: number[] = [];
      for (let i = 0; i < CACHED_ARMS; i++) {
        t = performance.now();
        const armed = await engine.arm(request, [targetId], { attachMode: mode, cacheDir: armDir });
        cached.push(performance.now() - t);
        armed.disarm();
      }
      attach[mode] = { validateMs, generateMs, vmlinuxHeaderMs, compileUncachedMs, compileCachedMs, loadMs, attachMs, armColdMs, armCachedMedianMs: median(cached) };
      console.log(`bench: attach ${mode} done (engine.arm() cold ${fmt(armColdMs)} ms, cached ${fmt(median(cached))} ms)`);
    } catch (err) {
      attach[mode] = { error: errorText(err) };
      console.log(`bench: attach-time measurement for ${mode} failed: ${errorText(err)}`);
    }
  }
  rmdirSync(TARGET_CGROUP);
  const result: AttachResult = { kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), attach, notes };
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(join(OUT_DIR, 'engine-attach.json'), JSON.stringify(result, null, 2));
}

/** Loop cost per mode: calibration, then paired, interleaved runs. Virtual time under icount. */
async function costPhase(): Promise<void> {
  const m = await loadEngineModules();
  mkdirSync(TARGET_CGROUP, { recursive: true });
  const targetId = m.cgroupId(TARGET_CGROUP);
  const engine = new m.BpfFaultEngine();
  const cacheDir = mkdtempSync('/tmp/kc-bench-cache-');
  const notes: string[] = [];
  // Kernels >= 6.11 without CONFIG_FAILSLAB have no should_failslab: the syscall-entry form is the hot path there.
  const hasSlab = /^\S+ \S+ should_failslab$/m.test(readFileSync('/proc/kallsyms', 'utf8'));
  const site: SiteName = hasSlab ? 'should_failslab' : '__x64_sys_socket';
  if (!hasSlab) notes.push('this kernel has no should_failslab: failtype 0 runs in the syscall-entry form, on __x64_sys_socket');

  const runLoop = (): number => {
    const r = spawnSync(SLAB_LOOP, [String(ITERATIONS), join(TARGET_CGROUP, 'cgroup.procs')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`slab-loop exited ${r.status}: ${r.stderr.trim()}`);
    return Number(r.stdout.trim());
  };
  runLoop(); // warm-up: page and slab caches

  // Site calls per loop iteration, counted by a separate program in a run of its own.
  let siteCallsPerIteration = Number.NaN;
  try {
    const counter = m.BpfObject.load(COUNT_SITE[site]);
    const map = counter.map('site_calls');
    const slot = (i: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(i); return b; };
    const id = Buffer.alloc(8);
    id.writeBigUInt64LE(targetId);
    map.update(slot(0), id);
    const link = counter.attach('count_site');
    runLoop();
    link.destroy();
    siteCallsPerIteration = Number(map.lookup(slot(1), 8)?.readBigUInt64LE(0) ?? Number.NaN) / ITERATIONS;
    counter.close();
    console.log(`bench: ${site} calls per iteration: ${fmt(siteCallsPerIteration, 2)}`);
  } catch (err) {
    notes.push(`counting site calls failed: ${errorText(err)}`);
  }

  const scenarios = {} as CostResult['scenarios'];
  for (const scenario of hasSlab ? SLAB_SCENARIOS : ENTRY_SCENARIOS) {
    const { chain, times, predicate } = SCENARIOS[scenario];
    const request = parsedSpec(m, specFor(chain, times, predicate));
    // the budget is spent before the run: the site runs every check and injects nothing
    const claimed = times ? { claimed: times } : {};
    const modes = Object.fromEntries(MODES.map((name) => [name, { runsNs: [], pairedAddedNs: [] } as ModeResult])) as Record<ModeName, ModeResult>;
    scenarios[scenario] = modes;

    /** Arms one mode; returns the function that disarms it (and reports the engine's faults). */
    const arm = async (mode: Exclude<ModeName, 'baseline'>): Promise<() => number | undefined> => {
      if (mode === 'engine-trampoline' || mode === 'engine-kprobe') {
        const armed = await engine.arm(request, [targetId], { attachMode: mode === 'engine-trampoline' ? 'trampoline' : 'kprobe', cacheDir, ...claimed });
        return () => {
          const faults = Number(armed.counters().faults);
          armed.disarm();
          return faults;
        };
      }
      const object = m.BpfObject.load(mode === 'kprobe-design' ? KPROBE_DESIGN[scenario] : EMPTY_FMODRET[site]);
      if (mode === 'kprobe-design' && times) {
        // inject.py's fault count, at its limit: the same used-up budget as the engine's
        const value = Buffer.alloc(4);
        value.writeUInt32LE(times);
        object.map('count').update(Buffer.alloc(4), value);
      }
      const links = (mode === 'kprobe-design' ? SCENARIOS[scenario].kprobeDesignPrograms : ['empty_site']).map((p) => object.attach(p));
      return () => {
        for (const link of links.reverse()) link.destroy();
        object.close();
        return undefined;
      };
    };

    // vmlinux.h and both engine objects into the cache, so every timed run arms from cache.
    for (const attachMode of ['trampoline', 'kprobe'] as const) (await engine.arm(request, [targetId], { attachMode, cacheDir, ...claimed })).disarm();

    const armedModes = MODES.filter((name): name is Exclude<ModeName, 'baseline'> => name !== 'baseline');
    let before = runLoop();
    modes.baseline.runsNs.push(before);
    for (let rep = 0; rep < REPETITIONS; rep++) {
      const order = armedModes.map((_, i) => armedModes[(i + rep) % armedModes.length] as Exclude<ModeName, 'baseline'>);
      const line: string[] = [];
      for (const mode of order) {
        const result = modes[mode];
        if (result.error) continue;
        let disarm: (() => number | undefined) | undefined;
        let armedNs: number | undefined;
        try {
          disarm = await arm(mode);
          armedNs = runLoop();
        } catch (err) {
          result.error = errorText(err);
          console.log(`bench: ${scenario} ${mode} failed: ${result.error}`);
        } finally {
          const faults = disarm?.();
          if (faults !== undefined) result.faults = (result.faults ?? 0) + faults;
        }
        const after = runLoop();
        modes.baseline.runsNs.push(after);
        if (armedNs !== undefined) {
          const added = armedNs - (before + after) / 2;
          result.runsNs.push(armedNs);
          result.pairedAddedNs.push(added);
          line.push(`${mode} +${fmt(added / ITERATIONS)}`);
        }
        before = after;
      }
      console.log(`bench: ${scenario} repetition ${rep + 1}/${REPETITIONS}, added ns/iteration: ${line.join(', ')}`);
    }
  }
  rmSync(cacheDir, { recursive: true, force: true });
  rmdirSync(TARGET_CGROUP);
  const result: CostResult = {
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    icount: ICOUNT,
    iterations: ITERATIONS,
    repetitions: REPETITIONS,
    siteCallsPerIteration,
    site,
    scenarios,
    notes,
  };
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(process.env.KC_BENCH_COST_FILE ?? costFileFor('6.1'), JSON.stringify(result, null, 2));
}

// ---------------------------------------------------------------------------------------------
// On the host
// ---------------------------------------------------------------------------------------------

function vmUnavailableReason(vmRun: string): string | null {
  if (process.env.KERNELCHAOS_SKIP_VM === '1') return 'KERNELCHAOS_SKIP_VM=1 is set';
  const kernel = KERNELS['6.1'];
  if (!existsSync(vmRun) || !existsSync(kernel)) return `no test kernel at ${kernel}`;
  for (const bin of ['qemu-system-x86_64', 'busybox', 'cpio', 'clang']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed`;
  }
  return null;
}

function compileFixtures(): void {
  mkdirSync(WORK, { recursive: true });
  const fixtures = join(ROOT, 'bench', 'fixtures');
  // No vmlinux.h: these programs read no kernel structures, so they need no CO-RE.
  const bpf = (name: string, out: string, defines: string[] = []): [string, string[]] =>
    ['clang', ['-O2', '-g', '-target', 'bpf', '-mcpu=v3', `-I/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, ...defines, '-c', join(fixtures, name), '-o', out]];
  const frames = (chain: readonly string[]): string[] => chain.map((f, i) => `-DFRAME${i}="${f}"`);
  const steps: [string, string[]][] = [
    ['clang', ['-O2', '-Wall', '-o', SLAB_LOOP, join(fixtures, 'slab-loop.c')]],
    bpf('kprobe-design.bpf.c', KPROBE_DESIGN['never-entered'], frames(SCENARIOS['never-entered'].chain)),
    bpf('kprobe-design.bpf.c', KPROBE_DESIGN['entered-incomplete'], frames(SCENARIOS['entered-incomplete'].chain)),
    bpf('kprobe-design-entry.bpf.c', KPROBE_DESIGN['syscall-entry'], ['-DSITE="__x64_sys_socket"', '-DLIMIT=1']),
    bpf('kprobe-design-entry.bpf.c', KPROBE_DESIGN['syscall-entry-predicate'], ['-DSITE="__x64_sys_socket"', '-DPREDICATE_DI=2']),
    ...(Object.keys(EMPTY_FMODRET) as SiteName[]).flatMap((site) => [
      bpf('empty-fmodret.bpf.c', EMPTY_FMODRET[site], [`-DSITE="${site}"`]),
      bpf('count-site.bpf.c', COUNT_SITE[site], [`-DSITE="${site}"`]),
    ]),
  ];
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  }
}

function loadAverage(): string {
  try {
    return `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${cpus().length} CPUs`;
  } catch {
    return 'load unknown';
  }
}

/** Boots the VM for one phase, echoing the guest's `bench:` lines as they come. */
function runPhase(vmRun: string, phase: 'attach' | 'cost', kernel: KernelLabel = '6.1'): Promise<{ code: number; tail: string }> {
  // The guest reads /work/main over an uncached 9p mount; a bind mount of the (cached, read-only)
  // root view makes node's imports ~5x faster. Results go to the read-write path.
  const inner = [
    'mkdir -p /tmp/hv && mount --bind / /tmp/hv',
    `cd /tmp/hv${ROOT}`,
    `KC_BENCH_PHASE=${phase} KC_BENCH_OUT=${OUT_DIR} KC_BENCH_COST_FILE=${costFileFor(kernel)} KC_BENCH_ICOUNT=${ICOUNT ? 1 : 0} KC_BENCH_ITERATIONS=${ITERATIONS} KC_BENCH_REPETITIONS=${REPETITIONS} node --import tsx bench/engine.bench.ts`,
  ].join(' && ');
  // --icount: deterministic virtual time, one vCPU (vm-run.sh).
  const icount = phase === 'cost' && ICOUNT ? ['--icount'] : [];
  const args = ['--kernel', KERNELS[kernel], '--timeout', '1500', '--mem', '1024', '--cpus', '1', ...icount, '--rw', ROOT, '--', 'sh', '-c', inner];
  return new Promise((resolve) => {
    const child = spawn(vmRun, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    const tail: string[] = [];
    const onData = (d: Buffer): void => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('bench:')) console.log(`  [vm ${kernel} ${phase}] ${line}`);
        tail.push(line);
        if (tail.length > 40) tail.shift();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code) => resolve({ code: code ?? 125, tail: tail.join('\n') }));
  });
}

function reportCost(result: CostResult, hostLoad: string): void {
  const unit = result.icount ? 'virtual ns (QEMU -icount: 1 ns per guest instruction)' : 'wall ns under TCG (noisy on a loaded host)';
  console.log(`kernel ${result.kernel}, QEMU TCG, 1 vCPU; unit: ${unit}. Emulated: only ratios measured in this run mean much.`);
  console.log(`host: ${hostLoad}.`);
  console.log(`workload: ${result.iterations} x socket(AF_UNIX)+close() per run, in the targeted cgroup, failtype 0, faults never due.`);
  const site = result.site ?? 'should_failslab';
  console.log(`${result.repetitions} repetitions per scenario, modes interleaved in rotating order, each armed run paired with the baseline runs around it; medians.`);
  console.log(`${site} calls per iteration: ${fmt(result.siteCallsPerIteration, 2)} (added ns/call = added ns/iter divided by these; with an entered chain it includes the frame programs, once per iteration)`);
  for (const n of result.notes) console.log(`note: ${n}`);
  for (const [scenario, modes] of Object.entries(result.scenarios) as [ScenarioName, Record<ModeName, ModeResult>][]) {
    const added = (mode: ModeName): number => median(modes[mode].pairedAddedNs) / result.iterations;
    const kprobeDesign = added('kprobe-design');
    console.log('');
    const times = SCENARIOS[scenario].times;
    const predicate = SCENARIOS[scenario].predicate;
    console.log(`scenario ${scenario}: chain ${SCENARIOS[scenario].chain.join(' -> ')}${predicate ? ` if ${predicate} (never)` : ''}${times ? `, times ${times} already used up` : ''}, hot path ${SCENARIOS[scenario].site}; baseline loop median ${fmt(median(modes.baseline.runsNs) / 1e6, 2)} ms`);
    console.log(`  ${'mode'.padEnd(18)} ${'added ns/iter'.padStart(14)} ${'IQR ns/iter'.padStart(14)} ${'added ns/call'.padStart(14)} ${'vs kprobe design'.padStart(17)}`);
    for (const mode of MODES) {
      if (mode === 'baseline') continue;
      const r = modes[mode];
      if (r.error) {
        console.log(`  ${mode.padEnd(18)} FAILED: ${r.error.split('\n')[0]}`);
        continue;
      }
      const a = added(mode);
      const perIteration = r.pairedAddedNs.map((x) => x / result.iterations);
      const iqr = `${fmt(quantile(perIteration, 0.25))}..${fmt(quantile(perIteration, 0.75))}`;
      console.log(`  ${mode.padEnd(18)} ${fmt(a).padStart(14)} ${iqr.padStart(14)} ${fmt(a / result.siteCallsPerIteration).padStart(14)} ${fmt(a / kprobeDesign, 2).padStart(17)}`);
    }
    const ratio = added('engine-trampoline') / kprobeDesign;
    // A ratio means something only when run-to-run spread is small next to the kprobe design's cost.
    const spread = (mode: ModeName): number => (quantile(modes[mode].pairedAddedNs, 0.75) - quantile(modes[mode].pairedAddedNs, 0.25)) / result.iterations;
    const conclusive = kprobeDesign > 0 && added('engine-trampoline') > 0 && spread('kprobe-design') < kprobeDesign / 4 && spread('engine-trampoline') < kprobeDesign / 4;
    const verdict = !conclusive ? 'INCONCLUSIVE (run-to-run spread is too large next to the costs; use icount)' : ratio <= 0.8 ? 'MET' : 'NOT MET';
    console.log(`  engine (trampoline) / kprobe design, added cost: ${fmt(ratio, 2)} (target <= 0.80) -> ${verdict}`);
    console.log(`  engine (kprobe mode) / kprobe design: ${fmt(added('engine-kprobe') / kprobeDesign, 2)}; empty fmod_ret / kprobe design: ${fmt(added('empty-fmodret') / kprobeDesign, 2)}${scenario === 'entered-incomplete' ? ' (no frame programs: not comparable here)' : ' (the floor for any fmod_ret design)'}`);
    const faults = (modes['engine-trampoline'].faults ?? 0) + (modes['engine-kprobe'].faults ?? 0);
    console.log(`  faults the engine injected during the runs: ${faults} (must be 0: faults are never due)`);
  }
  
}

function reportAttach(result: AttachResult): void {
  console.log('');
  console.log('attach time, spec to armed (wall ms in the emulated VM, process already warm; "uncached" = first compile for this kernel and spec):');
  for (const [mode, a] of Object.entries(result.attach)) {
    if (!a) continue;
    if ('error' in a) {
      console.log(`  ${mode}: FAILED: ${a.error.split('\n')[0]}`);
      continue;
    }
    console.log(`  ${mode}: validate ${fmt(a.validateMs, 1)}, generate ${fmt(a.generateMs, 1)}, vmlinux.h ${fmt(a.vmlinuxHeaderMs)}, compile ${fmt(a.compileUncachedMs)} uncached / ${fmt(a.compileCachedMs, 1)} cached, load ${fmt(a.loadMs)}, attach ${fmt(a.attachMs)}`);
    console.log(`  ${' '.repeat(mode.length)}  engine.arm() end to end: ${fmt(a.armColdMs)} cold, ${fmt(a.armCachedMedianMs)} cached (median of ${CACHED_ARMS})`);
  }
  for (const n of result.notes) console.log(`note: ${n}`);
}

/** KC_BENCH_KERNELS (e.g. "6.1" or "6.1,6.12"), default every test kernel that is there. */
function kernelsToRun(): KernelLabel[] {
  const asked = process.env.KC_BENCH_KERNELS?.split(',').map((k) => k.trim()).filter(Boolean);
  const known = Object.keys(KERNELS) as KernelLabel[];
  if (asked) {
    const unknown = asked.filter((k) => !(known as string[]).includes(k));
    if (unknown.length > 0) throw new Error(`KC_BENCH_KERNELS: unknown kernel ${unknown.join(', ')}; known: ${known.join(', ')}`);
    return asked as KernelLabel[];
  }
  return known.filter((k) => existsSync(KERNELS[k]));
}

async function onHost(): Promise<void> {
  const kernels = kernelsToRun();
  const attachFile = join(OUT_DIR, 'engine-attach.json');
  if (process.env.KC_BENCH_REPORT_ONLY === '1') {
    // Re-print the last results without booting anything.
    for (const kernel of kernels) {
      if (existsSync(costFileFor(kernel))) reportCost(JSON.parse(readFileSync(costFileFor(kernel), 'utf8')) as CostResult, 'load not recorded');
      console.log('');
    }
    if (existsSync(attachFile)) reportAttach(JSON.parse(readFileSync(attachFile, 'utf8')) as AttachResult);
    return;
  }
  const vmRun = join(TESTKERNEL_DIR, 'vm-run.sh');
  const why = vmUnavailableReason(vmRun);
  if (why) {
    console.log(`engine benchmark skipped: ${why}. It needs the test kernel VM (../shared/testkernel); the host kernel has no kprobes.`);
    return;
  }
  compileFixtures();
  rmSync(attachFile, { force: true });
  let failed = false;
  for (const kernel of kernels) {
    const costFile = costFileFor(kernel);
    rmSync(costFile, { force: true });
    const loadBefore = loadAverage();
    console.log(`cost phase on ${kernel}: its scenarios x ${REPETITIONS} repetitions x 4 armed modes + baselines, ${ITERATIONS} iterations per run${ICOUNT ? ', QEMU -icount' : ''} (a few minutes)...`);
    const cost = await runPhase(vmRun, 'cost', kernel);
    const loadAfter = loadAverage();
    if (existsSync(costFile)) reportCost(JSON.parse(readFileSync(costFile, 'utf8')) as CostResult, `${loadBefore} before, ${loadAfter} after`);
    else { failed = true; console.log(`cost phase on ${kernel} failed in the VM (exit ${cost.code}):\n${cost.tail}`); }
    console.log('');
  }
  // Attach times need should_failslab (the seed's site): the 6.1 kernel.
  const skipAttach = process.env.KC_BENCH_SKIP_ATTACH === '1';
  if (!skipAttach) {
    console.log('attach phase on 6.1: cold and cached arms, both modes (a few minutes)...');
    const attach = await runPhase(vmRun, 'attach', '6.1');
    if (existsSync(attachFile)) reportAttach(JSON.parse(readFileSync(attachFile, 'utf8')) as AttachResult);
    else { failed = true; console.log(`attach phase failed in the VM (exit ${attach.code}):\n${attach.tail}`); }
  }
  console.log(`(raw results: ${kernels.map(costFileFor).join(', ')}${skipAttach ? '' : `, ${attachFile}`})`);
  if (failed) process.exitCode = 1;
}

const phase = process.env.KC_BENCH_PHASE;
if (phase === 'attach' || phase === 'cost') {
  (phase === 'attach' ? attachPhase() : costPhase()).catch((err: unknown) => {
    console.log(`bench: failed: ${errorText(err)}`);
    process.exitCode = 1;
  });
} else {
  await onHost();
}
