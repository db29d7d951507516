// What the running kernel offers the attach-mode choice: which functions have BTF (so fentry,
// fexit and fmod_ret can attach to them) and the error-injection list, and the parsed BTF itself
// for the type check of parameters and predicates (typecheck.ts).
import { readFileSync } from 'node:fs';
import { BtfReader } from './btf-reader.js';
import { findBtfFunctions } from './kernel-facts-btf.js';
import { checkCallchainAgainstBtf, type TypedRequest } from './typecheck.js';
import type { FieldError } from '../api/types.js';

export const KERNEL_BTF_PATH = '/sys/kernel/btf/vmlinux';

const readers = new Map<string, BtfReader | null>();

/**
 * The kernel BTF at `path`, or null when the kernel has none. The blob (~5 MB) is read and indexed
 * once per process: a running kernel's BTF never changes.
 */
export function kernelBtf(path = KERNEL_BTF_PATH): BtfReader | null {
  if (!readers.has(path)) {
    let reader: BtfReader | null = null;
    try {
      reader = new BtfReader(readFileSync(path));
    } catch {
      reader = null;
    }
    readers.set(path, reader);
  }
  return readers.get(path) ?? null;
}

/** The subset of `names` that the kernel BTF at `path` declares as functions, or null when the kernel has no BTF. */
export function kernelBtfFunctions(names: readonly string[], path = KERNEL_BTF_PATH): Set<string> | null {
  const reader = kernelBtf(path);
  if (!reader) return null;
  return new Set(findBtfFunctions(reader, names).keys());
}

/**
 * Where a call chain's parameters and predicates do not match the BTF at `btfPath` (paths from
 * `spec.failKernRequest`); empty when they match or there is nothing typed to check. Without a
 * readable BTF a typed frame cannot be checked, so it is a problem too.
 */
export function requestTypeProblems(req: TypedRequest, btfPath = KERNEL_BTF_PATH): FieldError[] {
  if (!req.site && !req.callchain.some((f) => f.parameters.length > 0 || f.predicate !== null)) return [];
  const btf = kernelBtf(btfPath);
  if (!btf) {
    return [{ path: 'spec.failKernRequest.callchain', message: `parameters and predicates are checked against the kernel's BTF, and ${btfPath} cannot be read as BTF` }];
  }
  return checkCallchainAgainstBtf(req, btf).map((e) => ({ path: `spec.failKernRequest.${e.path}`, message: e.message }));
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
