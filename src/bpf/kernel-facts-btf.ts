// Finds named FUNC entries in a raw BTF blob (/sys/kernel/btf/vmlinux). Hand-written because no
// maintained npm package parses BTF, and `bpftool btf dump` prints ~30 MB of text for vmlinux,
// which costs seconds (minutes in the emulated test VM) just to grep a few names.
// Format: Documentation/bpf/btf.rst (header, then the type section, then the string section).

const BTF_MAGIC = 0xeb9f;
const TYPE_HEADER_BYTES = 12;

/** Bytes that follow the 12-byte btf_type header, by kind (btf.rst, "Type Encoding"). */
function trailingBytes(kind: number, vlen: number): number | null {
  switch (kind) {
    case 1: return 4; // INT
    case 2: case 7: case 8: case 9: case 10: case 11: case 12: case 16: case 18: return 0;
    case 3: return 12; // ARRAY
    case 4: case 5: return vlen * 12; // STRUCT, UNION
    case 6: return vlen * 8; // ENUM
    case 13: return vlen * 8; // FUNC_PROTO
    case 14: return 4; // VAR
    case 15: return vlen * 12; // DATASEC
    case 17: return 4; // DECL_TAG
    case 19: return vlen * 12; // ENUM64
    default: return null;
  }
}

export class BtfFormatError extends Error {
  override name = 'BtfFormatError';
}

/**
 * Returns the BTF type id of each wanted function that the blob declares as a FUNC
 * (names missing from the result are not in BTF, so fentry/fexit/fmod_ret cannot attach to them).
 */
export function findBtfFunctions(blob: Uint8Array, wanted: readonly string[]): Map<string, number> {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (blob.byteLength < 24) throw new BtfFormatError('BTF blob is shorter than its header');
  const little = view.getUint16(0, true) === BTF_MAGIC;
  if (!little && view.getUint16(0, false) !== BTF_MAGIC) throw new BtfFormatError('not BTF (bad magic)');
  const hdrLen = view.getUint32(4, little);
  const typeOff = hdrLen + view.getUint32(8, little);
  const typeLen = view.getUint32(12, little);
  const strOff = hdrLen + view.getUint32(16, little);
  const strLen = view.getUint32(20, little);
  if (typeOff + typeLen > blob.byteLength || strOff + strLen > blob.byteLength) {
    throw new BtfFormatError('BTF sections run past the end of the blob');
  }
  // Compare names as bytes at their string offsets rather than decoding every string.
  const wantedBytes = new Map(wanted.map((name) => [name, Buffer.from(name + '\0', 'latin1')]));
  const found = new Map<string, number>();
  const nameAt = (off: number): string | null => {
    for (const [name, bytes] of wantedBytes) {
      const start = strOff + off;
      if (start + bytes.length > strOff + strLen) continue;
      let same = true;
      for (let i = 0; i < bytes.length; i++) {
        if (blob[start + i] !== bytes[i]) { same = false; break; }
      }
      if (same) return name;
    }
    return null;
  };
  let pos = typeOff;
  let id = 1; // type id 0 is void
  const end = typeOff + typeLen;
  while (pos + TYPE_HEADER_BYTES <= end) {
    const nameOff = view.getUint32(pos, little);
    const info = view.getUint32(pos + 4, little);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const extra = trailingBytes(kind, vlen);
    if (extra === null) throw new BtfFormatError(`unknown BTF kind ${kind} at type id ${id}`);
    if (kind === 12 && nameOff !== 0) {
      const name = nameAt(nameOff);
      if (name !== null && !found.has(name)) found.set(name, id);
    }
    pos += TYPE_HEADER_BYTES + extra;
    id++;
  }
  return found;
}
