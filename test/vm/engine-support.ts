// Host-side preparation for the engine VM tests, so the guest (20x slower) only runs workloads:
// C fixtures compiled with cc, the guest kernel's BTF copied out once, and every test program
// compiled on the host against it. The compile cache key is (source, BTF hash, clang binary,
// flags), so the guest's `kernelchaos run` finds each object already built.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { compileProgram } from '../../src/bpf/compile.js';
import { generateProgram, type ProgramMode } from '../../src/bpf/generate.js';
import { loadSpecFile } from '../../src/bpf/spec-file.js';
import type { SiteForm } from '../../src/bpf/sites.js';
import type { BpfTargetHierarchy } from '../../src/bpf/cgroup-hierarchy.js';
import type { FailKernRequest } from '../../src/api/types.js';
import { runInVm, testKernelPath, VM_SCRATCH } from './harness.js';

export const ENGINE_CACHE = join(VM_SCRATCH, 'engine-cache');
export const FIXTURES_BIN = join(VM_SCRATCH, 'fixtures-bin');
export const SPEC_DIR = join(VM_SCRATCH, 'engine-specs');
const FIXTURES_SRC = resolve(import.meta.dirname, 'fixtures');

/** cc where there is one; CI installs clang (for BPF), which compiles these helpers as well. */
function cCompiler(): string {
  return spawnSync('sh', ['-c', 'command -v cc']).status === 0 ? 'cc' : 'clang';
}

/** Compiles test/vm/fixtures/*.c into .vmcache/fixtures-bin (the guest runs the host's binaries). */
export function buildFixtures(): void {
  mkdirSync(FIXTURES_BIN, { recursive: true });
  const cc = cCompiler();
  execFileSync(cc, ['-O2', '-Wall', '-o', join(FIXTURES_BIN, 'mount-many'), join(FIXTURES_SRC, 'mount-many.c')]);
  execFileSync(cc, ['-O2', '-Wall', '-pthread', '-o', join(FIXTURES_BIN, 'create-files'), join(FIXTURES_SRC, 'create-files.c')]);
  execFileSync(cc, ['-O2', '-Wall', '-pthread', '-o', join(FIXTURES_BIN, 'frame-loop'), join(FIXTURES_SRC, 'frame-loop.c')]);
  execFileSync(cc, ['-O2', '-Wall', '-pthread', '-o', join(FIXTURES_BIN, 'read-then-pipe'), join(FIXTURES_SRC, 'read-then-pipe.c')]);
}

/** A KernelChaos manifest as a user writes it, saved where the guest can read it. */
export function writeSpec(name: string, failKernRequest: FailKernRequest, extra: Record<string, unknown> = {}): string {
  mkdirSync(SPEC_DIR, { recursive: true });
  const doc = {
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: { name, namespace: 'chaos-testing' },
    spec: { mode: 'one', selector: { namespaces: ['chaos-mount'] }, failKernRequest, ...extra },
  };
  const path = join(SPEC_DIR, `${name}.yaml`);
  writeFileSync(path, stringify(doc));
  return path;
}

/** The test kernel's BTF, copied out of a guest once per kernel image. */
export async function guestBtf(): Promise<string> {
  const kernel = testKernelPath();
  const st = statSync(kernel);
  const stamp = createHash('sha256').update(`${kernel}:${st.size}:${st.mtimeMs}`).digest('hex').slice(0, 16);
  const dir = join(VM_SCRATCH, 'guest-btf', stamp);
  const path = join(dir, 'vmlinux');
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    const result = await runInVm(`cp /sys/kernel/btf/vmlinux ${dir}/vmlinux.tmp && mv ${dir}/vmlinux.tmp ${path}`, { timeoutSeconds: 120 });
    if (result.code !== 0 || !existsSync(path)) throw new Error(`could not copy the guest BTF:\n${result.output.slice(-2000)}`);
  }
  return path;
}

/**
 * Compiles a spec's program in both modes against the guest BTF (in the form the guest kernel will
 * use, for the hierarchy the guest's targets are in).
 */
export async function precompile(
  specPath: string,
  btfPath: string,
  modes: ProgramMode[] = ['trampoline', 'kprobe'],
  form: SiteForm = 'site',
  target: BpfTargetHierarchy = { kind: 'default' },
): Promise<void> {
  const spec = loadSpecFile(specPath);
  for (const mode of modes) {
    await compileProgram(generateProgram(spec.request, mode, { form, target }).source, { cacheDir: ENGINE_CACHE, btfPath });
  }
}
