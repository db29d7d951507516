// C source -> BPF object with clang, cached by content: sha256(source, kernelchaos's headers,
// kernel BTF, clang binary, flags). Probability, times and the chain length are load-time settings
// (kc_settings), not source, so every spec of one chain shape on one kernel compiles once.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EngineError } from './types.js';
import { RUNTIME_HEADER_DIR, runtimeHeadersHash } from './runtime-headers.js';
import { ensureVmlinuxHeader, KERNEL_BTF } from './vmlinux.js';

const execFileAsync = promisify(execFile);

/**
 * libbpf's __TARGET_ARCH_* names by Node's process.arch: PT_REGS_PARMn then read the argument
 * registers of the machine the program runs on (objects are built on the node itself).
 */
const BPF_TARGET_ARCH: Readonly<Record<string, string>> = {
  x64: 'x86',
  arm64: 'arm64',
  s390x: 's390',
  ppc64: 'powerpc',
  riscv64: 'riscv',
  loong64: 'loongarch',
};

/** uname -m names of the same machines (what doctor reads from the kernel). */
const UNAME_TO_NODE: Readonly<Record<string, string>> = { x86_64: 'x64', aarch64: 'arm64', ppc64le: 'ppc64', loongarch64: 'loong64' };

/** The __TARGET_ARCH_ suffix for `arch` (Node's or uname's name), or undefined when kernelchaos cannot build for it. */
export function bpfTargetArch(arch: string = process.arch): string | undefined {
  return BPF_TARGET_ARCH[UNAME_TO_NODE[arch] ?? arch];
}

/** Where each architecture was tested (README "What ran where"). */
export const ARCH_TESTED: Readonly<Record<string, string>> = {
  x86: 'faults tested in the x86-64 test VM',
  arm64: 'code generation unit-tested only; no arm64 kernel was run',
};

/**
 * -mcpu=v3: atomic fetch-and-add with a result (the exact `times` cap) needs BPF v3 (Linux 5.12+).
 * -g: BTF for CO-RE relocations and for the verifier's log.
 */
export function clangFlags(arch: string = process.arch): readonly string[] {
  const target = bpfTargetArch(arch);
  return ['-O2', '-g', '-target', 'bpf', '-mcpu=v3', ...(target ? [`-D__TARGET_ARCH_${target}`] : [])];
}

export const CLANG_FLAGS = clangFlags();

/** $KERNELCHAOS_CACHE, else /var/cache/kernelchaos when writable, else ~/.cache/kernelchaos. */
export function defaultCacheDir(): string {
  const env = process.env.KERNELCHAOS_CACHE;
  if (env) return env;
  const system = '/var/cache/kernelchaos';
  try {
    mkdirSync(system, { recursive: true });
    accessSync(system, constants.W_OK);
    return system;
  } catch {
    return join(homedir(), '.cache', 'kernelchaos');
  }
}

let clangMemo: string | undefined;

/**
 * Identifies the clang binary without running it (starting clang costs seconds in a slow VM):
 * its real path, size and mtime, which change whenever clang is upgraded.
 */
export function clangIdentity(): string {
  if (clangMemo) return clangMemo;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const candidate = join(dir, 'clang');
    try {
      accessSync(candidate, constants.X_OK);
      const real = realpathSync(candidate);
      const st = statSync(real);
      clangMemo = `${real}:${st.size}:${st.mtimeMs}`;
      return clangMemo;
    } catch {
      // not in this PATH entry
    }
  }
  throw new EngineError('compile-failed', 'clang is not installed (apt-get install clang llvm libbpf-dev): it compiles the fault program');
}

/** Longest clang run; a program within the validation budget compiles in a few seconds. */
export const CLANG_TIMEOUT_MS = 120_000;
/** Address space clang may use (ulimit -v), well inside the companion's 1Gi memory limit. */
export const CLANG_MEMORY_BYTES = 768 * 1024 * 1024;

export interface CompileOptions {
  cacheDir?: string;
  /** The kernel BTF to compile against (default: the running kernel's). */
  btfPath?: string;
  /** Overrides CLANG_TIMEOUT_MS (tests). */
  timeoutMs?: number;
  /** Overrides CLANG_MEMORY_BYTES (tests). */
  memoryBytes?: number;
}

/** One clang at a time per process: experiments arming together queue instead of multiplying memory. */
let compileQueue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(work: () => Promise<T>): Promise<T> {
  const run = compileQueue.then(work, work);
  compileQueue = run.catch(() => undefined);
  return run;
}

/** Runs clang under a memory cap (ulimit -v in a sh wrapper) and a timeout that kills it. */
function runClang(args: readonly string[], timeoutMs: number, memoryBytes: number): Promise<{ stdout: string; stderr: string }> {
  const kib = Math.floor(memoryBytes / 1024);
  return execFileAsync('sh', ['-c', `ulimit -v ${kib} && exec clang "$@"`, 'clang', ...args], {
    maxBuffer: 16 * 1024 * 1024,
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
}

export interface CompiledObject {
  /** The .o to hand to libbpf. */
  objectPath: string;
  /** True when it came from the cache. */
  cached: boolean;
  /** The content hash naming it. */
  key: string;
}

/** Keeps clang's diagnostics that matter: errors with their source lines, not the include noise. */
export function trimCompilerOutput(stderr: string, maxLines = 30): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '' && !/^In file included from/.test(l));
  const firstError = lines.findIndex((l) => /error:/.test(l));
  const from = firstError >= 0 ? firstError : 0;
  return lines.slice(from, from + maxLines).join('\n');
}

/** Everything an object depends on; nothing else (no probability, no times) may enter the key. */
export interface CacheKeyInputs {
  source: string;
  /** runtimeHeadersHash(): the kernelchaos headers the source includes. */
  headersHash: string;
  btfHash: string;
  /** clangIdentity() */
  clang: string;
  flags: readonly string[];
}

export function compileCacheKey(inputs: CacheKeyInputs): string {
  return createHash('sha256')
    .update([inputs.source, inputs.headersHash, inputs.btfHash, inputs.clang, ...inputs.flags].join('\0'))
    .digest('hex');
}

export async function compileProgram(source: string, options: CompileOptions = {}): Promise<CompiledObject> {
  if (!bpfTargetArch()) {
    throw new EngineError(
      'unsupported-kernel',
      `this machine's architecture (${process.arch}) has no libbpf register layout known to kernelchaos; supported: ${Object.keys(BPF_TARGET_ARCH).join(', ')}`,
    );
  }
  return oneAtATime(() => compileNow(source, options));
}

async function compileNow(source: string, options: CompileOptions): Promise<CompiledObject> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const vmlinux = await ensureVmlinuxHeader(cacheDir, options.btfPath ?? KERNEL_BTF);
  const clang = clangIdentity();
  const defines = vmlinux.gfpNofail === null ? [] : [`-DKC_GFP_NOFAIL=${vmlinux.gfpNofail}U`];
  const key = compileCacheKey({ source, headersHash: runtimeHeadersHash(), btfHash: vmlinux.btfHash, clang, flags: [...CLANG_FLAGS, ...defines] });
  const objectsDir = join(cacheDir, 'objects');
  const objectPath = join(objectsDir, `${key}.o`);
  if (existsSync(objectPath)) return { objectPath, cached: true, key };

  mkdirSync(objectsDir, { recursive: true });
  const sourcePath = join(objectsDir, `${key}.c`);
  writeFileSync(sourcePath, source);
  const tmp = `${objectPath}.${process.pid}.tmp`;
  const timeoutMs = options.timeoutMs ?? CLANG_TIMEOUT_MS;
  const memoryBytes = options.memoryBytes ?? CLANG_MEMORY_BYTES;
  try {
    await runClang([...CLANG_FLAGS, ...defines, '-I', vmlinux.includeDir, '-I', RUNTIME_HEADER_DIR, '-c', sourcePath, '-o', tmp], timeoutMs, memoryBytes);
  } catch (err) {
    const e = err as Omit<NodeJS.ErrnoException, 'code'> & { stderr?: string; killed?: boolean; signal?: string | null; code?: string | number };
    if (e.code === 127 && /not found/.test(e.stderr ?? '')) throw new EngineError('compile-failed', 'clang is not installed (apt-get install clang llvm libbpf-dev)');
    if (e.killed || e.signal === 'SIGKILL') {
      throw new EngineError('compile-failed', `clang did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped: the predicates are too costly to compile (${sourcePath})`);
    }
    if (/out of memory|bad_alloc|Cannot allocate memory|failed to map segment/i.test(e.stderr ?? '')) {
      throw new EngineError('compile-failed', `clang ran out of its ${Math.round(memoryBytes / 2 ** 20)} MiB memory cap: the predicates are too costly to compile (${sourcePath})`, trimCompilerOutput(e.stderr ?? ''));
    }
    const detail = trimCompilerOutput(e.stderr ?? e.message);
    throw new EngineError(
      'compile-failed',
      `clang could not compile the fault program (${sourcePath}); the predicate may name a member this kernel does not have`,
      detail,
    );
  }
  renameSync(tmp, objectPath);
  return { objectPath, cached: false, key };
}
