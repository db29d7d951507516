// Which kernel functions have BTF (so fentry/fexit/fmod_ret can attach to them), read straight from
// the raw BTF blob. Hand-written because it is ~60 lines over a stable, documented format
// (Documentation/bpf/btf.rst) and spares a bpftool dump of 100k+ lines per arm.
import { readFileSync } from 'node:fs';

const BTF_MAGIC = 0xeb9f;
const KIND_FUNC = 12;

/** Bytes that follow the 12-byte btf_type header, per kind (vlen = number of members/params/values). */
function trailingBytes(kind: number, vlen: number): number {
  switch (kind) {
    case 1: return 4; // INT
    case 3: return 12; // ARRAY
    case 4: case 5: return 12 * vlen; // STRUCT, UNION
    case 6: return 8 * vlen; // ENUM
    case 13: return 8 * vlen; // FUNC_PROTO
    case 14: return 4; // VAR
    case 15: return 12 * vlen; // DATASEC
    case 17: return 4; // DECL_TAG
    case 19: return 12 * vlen; // ENUM64
    default: return 0; // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
  }
}

/** Names of every FUNC in a BTF blob. Throws on a blob that is not BTF. */
export function btfFunctionNames(blob: Buffer): Set<string> {
  if (blob.length < 24 || blob.readUInt16LE(0) !== BTF_MAGIC) throw new Error('not a little-endian BTF blob');
  const hdrLen = blob.readUInt32LE(4);
  const typeOff = hdrLen + blob.readUInt32LE(8);
  const typeEnd = typeOff + blob.readUInt32LE(12);
  const strOff = hdrLen + blob.readUInt32LE(16);
  const names = new Set<string>();
  for (let at = typeOff; at + 12 <= typeEnd; ) {
    const nameOff = blob.readUInt32LE(at);
    const info = blob.readUInt32LE(at + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    if (kind === KIND_FUNC) {
      const start = strOff + nameOff;
      const end = blob.indexOf(0, start);
      names.add(blob.toString('latin1', start, end));
    }
    at += 12 + trailingBytes(kind, vlen);
  }
  return names;
}

const memo = new Map<string, Set<string>>();

/** FUNC names in the kernel BTF at `path`, or null when the kernel has none. Memoized per path. */
export function kernelBtfFunctions(path = '/sys/kernel/btf/vmlinux'): Set<string> | null {
  const known = memo.get(path);
  if (known) return known;
  let blob: Buffer;
  try {
    blob = readFileSync(path);
  } catch {
    return null;
  }
  const names = btfFunctionNames(blob);
  memo.set(path, names);
  return names;
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
