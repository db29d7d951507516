// Runs shell scripts inside the test kernel (../shared/testkernel, see its README) under QEMU.
// Every boot costs ~4 s plus ~1.2 s per node start, so tests batch many checks into one script.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');
/** ../shared/testkernel beside the project; KERNELCHAOS_TESTKERNEL_DIR for a checkout elsewhere (a git worktree). */
const TESTKERNEL_DIR = process.env.KERNELCHAOS_TESTKERNEL_DIR ?? resolve(PROJECT_ROOT, '..', 'shared', 'testkernel');
export const VM_RUN = join(TESTKERNEL_DIR, 'vm-run.sh');
/** Scratch space shared read-write with the guest (host /tmp is not visible in the guest). */
export const VM_SCRATCH = join(PROJECT_ROOT, '.vmcache');

/** The kernel the VM tests boot: KERNELCHAOS_TEST_KERNEL, else ../shared/testkernel/bzImage. */
export function testKernelPath(): string {
  return process.env.KERNELCHAOS_TEST_KERNEL ?? join(TESTKERNEL_DIR, 'bzImage');
}

/**
 * Whether the test kernel has a config option, from the `config` file beside it (bzImage ->
 * config, bzImage-6.12 -> config-6.12). Tests skip what the kernel cannot do by this, with the reason.
 */
export function testKernelHas(option: string): boolean {
  const config = testKernelConfig();
  return config === null || new RegExp(`^${option}=y$`, 'm').test(config);
}

function testKernelConfig(): string | null {
  try {
    return readFileSync(testKernelPath().replace(/bzImage([^/]*)$/, 'config$1'), 'utf8');
  } catch {
    return null; // no config beside it: assume a full kernel
  }
}

/** [major, minor] of the test kernel from its config header, or null. */
export function testKernelVersion(): [number, number] | null {
  const m = /^# Linux\/\S+ (\d+)\.(\d+)/m.exec(testKernelConfig() ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/**
 * Whether the test kernel has should_failslab (failtype 0) / should_fail_alloc_page (1): always
 * before 6.11, from 6.11 only with CONFIG_FAILSLAB / CONFIG_FAIL_PAGE_ALLOC.
 */
export function testKernelHasSite(failtype: 0 | 1): boolean {
  const v = testKernelVersion();
  if (v === null || v[0] < 6 || (v[0] === 6 && v[1] < 11)) return true;
  return testKernelHas(failtype === 0 ? 'CONFIG_FAILSLAB' : 'CONFIG_FAIL_PAGE_ALLOC');
}

export type VmAvailability = { ok: true } | { ok: false; reason: string };

export function vmAvailability(): VmAvailability {
  if (process.env.KERNELCHAOS_SKIP_VM === '1') return { ok: false, reason: 'KERNELCHAOS_SKIP_VM=1 is set' };
  const kernel = testKernelPath();
  if (!existsSync(VM_RUN) || !existsSync(kernel)) return { ok: false, reason: `no test kernel at ${kernel}` };
  for (const bin of ['qemu-system-x86_64', 'busybox']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) {
      return { ok: false, reason: `${bin} is not installed (apt-get install qemu-system-x86 busybox-static)` };
    }
  }
  if (!existsSync(join(PROJECT_ROOT, 'dist', 'cli', 'main.js'))) {
    return { ok: false, reason: 'dist/ is not built (npm run build)' };
  }
  return { ok: true };
}

export interface VmResult {
  /** The script's exit status; 125 when the guest reported none (panic, time-out). */
  code: number;
  /** Console output (kernel messages included). */
  output: string;
}

/** Runs `script` (POSIX sh) in the guest with the project root as working directory. */
export async function runInVm(script: string, options: { timeoutSeconds?: number; memMb?: number } = {}): Promise<VmResult> {
  mkdirSync(VM_SCRATCH, { recursive: true });
  const name = `script-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.sh`;
  const path = join(VM_SCRATCH, name);
  writeFileSync(path, `set -u\ncd ${PROJECT_ROOT}\n${script}\n`, { mode: 0o755 });
  const args = ['--timeout', String(options.timeoutSeconds ?? 300), '--mem', String(options.memMb ?? 1024), '--rw', PROJECT_ROOT, '--', 'sh', path];
  return new Promise((resolvePromise) => {
    const child = spawn(VM_RUN, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('close', (code) => resolvePromise({ code: code ?? 125, output }));
  });
}

/** Reads a file that a guest script wrote under VM_SCRATCH. */
export function readScratch(name: string): string {
  return readFileSync(join(VM_SCRATCH, name), 'utf8');
}
