// `kernelchaos render` and the parts of `kernelchaos run` that need no kernel (argument and spec errors).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main as render } from '../../src/cli/render.js';
import { main as run } from '../../src/cli/run.js';
import { loadSpecFile, SpecFileError } from '../../src/bpf/spec-file.js';
import { ensureVmlinuxHeader, KERNEL_BTF } from '../../src/bpf/vmlinux.js';
import { clangFlags } from '../../src/bpf/compile.js';
import { SEED_YAML } from '../fixtures/seed.js';

const DIR = resolve(import.meta.dirname, '..', '..', '.vmcache', 'cli-test');
mkdirSync(DIR, { recursive: true });

function specFile(name: string, text: string): string {
  const path = join(DIR, name);
  writeFileSync(path, text);
  return path;
}


function capture(): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
  return { out: () => out, err: () => err };
}

afterEach(() => vi.restoreAllMocks());

describe('kernelchaos render', () => {
  it("prints the seed example's program: fmod_ret at should_failslab, fentry/fexit on __x64_sys_mount", async () => {
    const io = capture();
    const code = await render(['-f', specFile('seed.yaml', SEED_YAML)]);
    expect(code).toBe(0);
    expect(io.out()).toContain('SEC("fmod_ret/should_failslab")');
    expect(io.out()).toContain('SEC("fentry/__x64_sys_mount")');
    expect(io.out()).toContain('#include "vmlinux.h"');
  });

  const clang = existsSync(KERNEL_BTF) && spawnSync('sh', ['-c', 'command -v clang && command -v bpftool']).status === 0;
  it('prints one complete unit: the headers pasted in, the load-time settings named; it compiles with only vmlinux.h', async () => {
    const io = capture();
    const spec = SEED_YAML.replace('failtype: 0', 'failtype: 0\n    probability: 30\n    times: 4');
    expect(await render(['-f', specFile('seed-settings.yaml', spec)])).toBe(0);
    const text = io.out();
    expect(text.split('\n')[0]).toMatch(/^\/\/ kernelchaos render: one complete unit: the generated file with kc_maps.h, kc_target_v1.bpf.h, kc_target.bpf.h, kc_runtime.bpf.h pasted in/);
    expect(text).toContain('probability 30, times 4, chain length 1');
    expect(text).not.toMatch(/^#include "kc_/m);
    expect(text).toContain('/* ---- begin kc_target.bpf.h');
    if (!clang) return;
    const header = await ensureVmlinuxHeader(join(DIR, 'cache'));
    const file = join(DIR, 'render-unit.bpf.c');
    writeFileSync(file, text);
    const r = spawnSync('clang', [...clangFlags(), '-I', header.includeDir, '-c', file, '-o', `${file}.o`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);

  it('--mode kprobe and --hooks list the programs', async () => {
    const io = capture();
    expect(await render(['-f', specFile('seed.yaml', SEED_YAML), '--mode', 'kprobe', '--hooks'])).toBe(0);
    expect(io.out().trim().split('\n')).toEqual([
      'kc_site\tkprobe/should_failslab\tsite',
      'kc_enter_0\tkprobe/__x64_sys_mount\tframe-entry',
      'kc_exit_0\tkretprobe/__x64_sys_mount\tframe-exit',
      'kc_thread_exit\traw_tp/sched_process_exit\tthread-exit',
    ]);
  });

  it('an invalid manifest gets the field path and no program', async () => {
    const io = capture();
    const bad = SEED_YAML.replace('failtype: 0', 'failtype: 0\n    probability: 101').replace("'__x64_sys_mount'", "'__x64_sys_mount; rm -rf /'");
    expect(await render(['-f', specFile('bad.yaml', bad)])).toBe(1);
    expect(io.out()).toBe('');
    expect(io.err()).toContain('spec.failKernRequest.probability');
    expect(io.err()).toContain('spec.failKernRequest.callchain[0].funcname');
  });

  it('an unknown --mode is a usage error', async () => {
    capture();
    expect(await render(['-f', specFile('seed.yaml', SEED_YAML), '--mode', 'uprobe'])).toBe(2);
  });
});

describe('kernelchaos run (no kernel needed)', () => {
  it('refuses an invalid spec before touching cgroups or BPF (exit 2, field path)', async () => {
    const io = capture();
    const bad = SEED_YAML.replace('failtype: 0', 'failtype: 7');
    expect(await run(['-f', specFile('bad-run.yaml', bad), '--', 'true'])).toBe(2);
    expect(io.err()).toContain('spec.failKernRequest.failtype');
  });

  it('needs a command', async () => {
    capture();
    expect(await run(['-f', specFile('seed.yaml', SEED_YAML)])).toBe(2);
  });
});

describe('loadSpecFile', () => {
  it('reads the one KernelChaos among other documents, with its duration and the cluster-only fields', () => {
    const text = `apiVersion: v1\nkind: Namespace\nmetadata: {name: chaos-mount}\n---\n${SEED_YAML.replace('spec:\n', 'spec:\n  duration: 1m30s\n  scheduler:\n    cron: "@every 5m"\n')}`;
    const spec = loadSpecFile('mixed.yaml', text);
    expect(spec.name).toBe('chaos-testing/kernel-chaos-example');
    expect(spec.durationMs).toBe(90_000);
    expect(spec.clusterOnly).toEqual(['selector', 'mode', 'scheduler']);
    expect(spec.request.callchain.map((f) => f.funcname)).toEqual(['__x64_sys_mount']);
  });

  it('refuses a file with no KernelChaos, or two', () => {
    expect(() => loadSpecFile('none.yaml', 'kind: ConfigMap\n')).toThrow(SpecFileError);
    expect(() => loadSpecFile('two.yaml', `${SEED_YAML}---\n${SEED_YAML}`)).toThrow(/exactly one KernelChaos document, found 2/);
  });
});
