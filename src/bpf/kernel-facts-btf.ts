// Finds named FUNC entries in a raw BTF blob (/sys/kernel/btf/vmlinux), for the attach-mode choice
// and `kernelchaos doctor`. Hand-written (btf-reader.ts) because no maintained npm package parses
// BTF, and `bpftool btf dump` prints ~30 MB of text for vmlinux, which costs seconds (minutes in the
// emulated test VM) just to grep a few names.
import { BtfReader } from './btf-reader.js';

export { BtfFormatError } from './btf-reader.js';

/**
 * Returns the BTF type id of each wanted function that the blob declares as a FUNC
 * (names missing from the result are not in BTF, so fentry/fexit/fmod_ret cannot attach to them).
 */
export function findBtfFunctions(blob: Uint8Array | BtfReader, wanted: readonly string[]): Map<string, number> {
  const reader = blob instanceof BtfReader ? blob : new BtfReader(blob);
  const found = new Map<string, number>();
  for (const name of wanted) {
    const func = reader.find(name, ['func']);
    if (func && !found.has(name)) found.set(name, func.id);
  }
  return found;
}
