// What the running kernel offers the attach-mode choice: which functions have BTF (so fentry,
// fexit and fmod_ret can attach to them) and the error-injection list. The BTF scan itself is
// H6's findBtfFunctions (kernel-facts-btf.ts), shared with `kernelchaos doctor`.
import { readFileSync } from 'node:fs';
import { findBtfFunctions } from './kernel-facts-btf.js';

export const KERNEL_BTF_PATH = '/sys/kernel/btf/vmlinux';

const blobs = new Map<string, Buffer | null>();

/**
 * The subset of `names` that the kernel BTF at `path` declares as functions, or null when the
 * kernel has no BTF. The blob (~5 MB) is read once per process.
 */
export function kernelBtfFunctions(names: readonly string[], path = KERNEL_BTF_PATH): Set<string> | null {
  if (!blobs.has(path)) {
    let blob: Buffer | null = null;
    try {
      blob = readFileSync(path);
    } catch {
      blob = null;
    }
    blobs.set(path, blob);
  }
  const blob = blobs.get(path);
  if (!blob) return null;
  return new Set(findBtfFunctions(blob, names).keys());
}

/**
 * Functions on the kernel's error-injection list (the only ones fmod_ret and bpf_override_return may
 * change), or null when debugfs is not readable here.
 */
export function errorInjectionList(path = '/sys/kernel/debug/error_injection/list'): Set<string> | null {
  try {
    const text = readFileSync(path, 'utf8');
    return new Set(text.split('\n').map((l) => l.split(/\s+/)[0] ?? '').filter((n) => n !== ''));
  } catch {
    return null;
  }
}
