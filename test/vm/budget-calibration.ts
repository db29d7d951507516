// Measures where the BPF verifier of the test kernel stops accepting predicate programs, to set
// MAX_PROGRAM_COST / MAX_REQUEST_COST (src/api/predicate/budget.ts) below it. Run by hand after
// `npm run build` (one VM boot; compiles on this host against the guest's BTF first):
//   KERNELCHAOS_TESTKERNEL_DIR=../shared/testkernel npx tsx test/vm/budget-calibration.ts
// Writes test/fixtures/budget-calibration.json: per program its cost units, frames on the one
// function, BPF instructions of its largest program (llvm-objdump), clang time here, and whether
// the 6.1 verifier loaded it (with its reason when not). KC_CALIBRATION_REUSE=1 recomputes the
// table (after a cost-model change) from the last VM run's results without booting again.
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseFailKernRequest } from '../../src/api/predicate/index.js';
import { predicateCost } from '../../src/api/predicate/budget.js';
import type { Frame } from '../../src/api/types.js';
import { compileProgram } from '../../src/bpf/compile.js';
import { generateProgram, type ProgramMode } from '../../src/bpf/generate.js';
import { ENGINE_CACHE, guestBtf } from './engine-support.js';
import { PROJECT_ROOT, runInVm, VM_SCRATCH } from './harness.js';

const FUNCTION = { funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name' };

/** A literal of `length` bytes, distinct per (frame, compare) so clang cannot merge compares. */
function literal(id: number, length: number): string {
  const head = id.toString(36).padStart(4, '0');
  return `${head}${'x'.repeat(Math.max(0, length - head.length))}`.slice(0, length);
}

interface Shape {
  name: string;
  frames: number;
  build: (frame: number) => string;
}

/** STRCMPs of `length`-byte literals joined by ||, `perFrame` in each of `frames` frames on one function. */
function strcmps(frames: number, perFrame: number, length: number): Shape {
  return {
    name: `${frames}x${perFrame} STRCMP ${length}B`,
    frames,
    build: (f) => Array.from({ length: perFrame }, (_, s) => `STRCMP(name->name, "${literal(f * 64 + s, length)}")`).join(' || '),
  };
}

/** Member comparisons (no strings) joined by ||: cost from expression nodes only. */
function comparisons(frames: number, perFrame: number): Shape {
  return {
    name: `${frames}x${perFrame} name->len == n`,
    frames,
    build: (f) => Array.from({ length: perFrame }, (_, s) => `name->len == ${f * 1000 + s}`).join(' || '),
  };
}

const SHAPES: Shape[] = [
  strcmps(1, 1, 255), strcmps(1, 4, 255), strcmps(1, 8, 255), strcmps(1, 13, 255),
  strcmps(2, 8, 255), strcmps(2, 13, 255), strcmps(4, 8, 255), strcmps(4, 13, 255), strcmps(8, 13, 255),
  strcmps(1, 64, 32), strcmps(4, 64, 32), strcmps(16, 64, 32),
  strcmps(16, 90, 8),
  comparisons(1, 90), comparisons(4, 90), comparisons(16, 90),
];

interface Measured {
  shape: string;
  mode: ProgramMode;
  frames: number;
  cost: number;
  sourceBytes: number;
  clangMs: number;
  /** Instructions of the object's largest program section. */
  instructions: number;
  object: string;
  loaded?: boolean;
  reason?: string;
}

const OUT = join(VM_SCRATCH, 'budget-calibration');
const FIXTURE = join(PROJECT_ROOT, 'test/fixtures/budget-calibration.json');

/** BPF instructions (8 bytes each) of the largest program section in an object. */
function largestProgram(object: string): number {
  const out = spawnSync('llvm-objdump', ['-h', object], { encoding: 'utf8' }).stdout;
  const sizes = [...out.matchAll(/^\s*\d+\s+(?:fentry|fexit|fmod_ret|kprobe|kretprobe|tp_btf|raw_tp)\/\S+\s+([0-9a-f]+)/gm)].map((m) => parseInt(m[1] ?? '0', 16) / 8);
  return Math.max(0, ...sizes);
}

async function compileAll(btf: string): Promise<Measured[]> {
  const measured: Measured[] = [];
  for (const shape of SHAPES) {
    const callchain: Frame[] = Array.from({ length: shape.frames }, (_, f) => ({ ...FUNCTION, predicate: shape.build(f) }));
    const request = parseFailKernRequest({ failtype: 0, times: 1, callchain });
    const cost = request.callchain.reduce((sum, f) => sum + (f.predicate ? predicateCost(f.predicate) : 0), 0);
    for (const mode of ['trampoline', 'kprobe'] as const) {
      const source = generateProgram(request, mode).source;
      const started = Date.now();
      const compiled = await compileProgram(source, { cacheDir: ENGINE_CACHE, btfPath: btf, timeoutMs: 600_000, memoryBytes: 4 * 2 ** 30 });
      const clangMs = compiled.cached ? -1 : Date.now() - started;
      measured.push({ shape: shape.name, mode, frames: shape.frames, cost, sourceBytes: source.length, clangMs, instructions: largestProgram(compiled.objectPath), object: compiled.objectPath });
      console.log(`${shape.name} ${mode}: cost ${cost}, ${source.length} bytes of C, clang ${clangMs} ms`);
    }
  }
  return measured;
}

/** Loads each object in the guest (libbpf through the built dist/), one line of JSON per object. */
const LOADER = `
import { BpfObject } from '${join(PROJECT_ROOT, 'dist/bpf/libbpf.js')}';
import { readFileSync, appendFileSync } from 'node:fs';
const [list, out] = process.argv.slice(2);
for (const path of JSON.parse(readFileSync(list, 'utf8'))) {
  const started = Date.now();
  try {
    BpfObject.load(path).close();
    appendFileSync(out, JSON.stringify({ path, loaded: true, ms: Date.now() - started }) + '\\n');
  } catch (e) {
    appendFileSync(out, JSON.stringify({ path, loaded: false, ms: Date.now() - started, reason: String(e.message) + ' ' + String(e.detail ?? '').slice(-600) }) + '\\n');
  }
}
`;

async function main(): Promise<void> {
  const btf = await guestBtf();
  const measured = await compileAll(btf);
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'loader.mjs'), LOADER);
  writeFileSync(join(OUT, 'objects.json'), JSON.stringify(measured.map((m) => m.object)));
  const results = join(OUT, 'results.jsonl');
  const reuse = process.env.KC_CALIBRATION_REUSE === '1';
  let vm = { code: 0, output: '' };
  if (reuse) {
    // Objects come from the cache then: keep the clang times measured when they were compiled.
    const previous = (JSON.parse(readFileSync(FIXTURE, 'utf8')) as { programs: { shape: string; mode: string; clangMs: number }[] }).programs;
    for (const m of measured) m.clangMs = previous.find((p) => p.shape === m.shape && p.mode === m.mode)?.clangMs ?? m.clangMs;
  } else {
    writeFileSync(results, '');
    vm = await runInVm(`node ${join(OUT, 'loader.mjs')} ${join(OUT, 'objects.json')} ${results}`, { timeoutSeconds: 1800 });
  }
  if (!existsSync(results)) throw new Error(`VM run failed (${vm.code}):\n${vm.output.slice(-3000)}`);
  const loads = readFileSync(results, 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { path: string; loaded: boolean; reason?: string });
  for (const m of measured) {
    const l = loads.find((x) => x.path === m.object);
    if (l) {
      m.loaded = l.loaded;
      if (l.reason) m.reason = l.reason.replace(/\s+/g, ' ').slice(0, 400);
    }
  }
  const table = measured.map(({ object: _object, ...rest }) => rest);
  writeFileSync(FIXTURE, `${JSON.stringify({ kernel: 'test kernel Linux 6.1 (../shared/testkernel/bzImage)', clang: spawnSync('clang', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0], programs: table }, null, 2)}\n`);
  for (const m of table) console.log(`${m.shape.padEnd(28)} ${m.mode.padEnd(10)} cost ${String(m.cost).padStart(6)}  insns ${String(m.instructions).padStart(6)}  clang ${String(m.clangMs).padStart(7)} ms  ${m.loaded === undefined ? 'not run' : m.loaded ? 'loaded' : `REFUSED ${m.reason?.slice(0, 160) ?? ''}`}`);
  if (vm.code !== 0) console.log(`VM exit ${vm.code}:\n${vm.output.slice(-1500)}`);
}

await main();
