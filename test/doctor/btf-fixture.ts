// Builds small BTF blobs for fixture /sys trees.

/** A minimal little-endian BTF blob: int, a func proto, FUNCs and a struct in between. */
export function btfBlob(funcs: string[], extraKind?: number): Buffer {
  const strings: string[] = [''];
  const off = (s: string): number => {
    const at = strings.join('\0').length + 1;
    strings.push(s);
    return at;
  };
  const types: Buffer[] = [];
  const type = (nameOff: number, kind: number, vlen: number, sizeOrType: number, extra: Buffer = Buffer.alloc(0)): void => {
    const b = Buffer.alloc(12);
    b.writeUInt32LE(nameOff, 0);
    b.writeUInt32LE(((kind & 0x1f) << 24) | vlen, 4);
    b.writeUInt32LE(sizeOrType, 8);
    types.push(Buffer.concat([b, extra]));
  };
  type(off('int'), 1, 0, 4, Buffer.from([32, 0, 0, 1])); // [1] INT
  type(0, 13, 1, 1, Buffer.alloc(8)); // [2] FUNC_PROTO int (int)
  type(off('bio'), 4, 2, 16, Buffer.alloc(24)); // [3] STRUCT bio with 2 members
  for (const f of funcs) type(off(f), 12, 0, 2); // [4..] FUNC
  if (extraKind !== undefined) type(0, extraKind, 0, 0);
  const typeSec = Buffer.concat(types);
  const strSec = Buffer.from(strings.join('\0') + '\0', 'latin1');
  const hdr = Buffer.alloc(24);
  hdr.writeUInt16LE(0xeb9f, 0);
  hdr.writeUInt8(1, 2);
  hdr.writeUInt32LE(24, 4);
  hdr.writeUInt32LE(0, 8);
  hdr.writeUInt32LE(typeSec.length, 12);
  hdr.writeUInt32LE(typeSec.length, 16);
  hdr.writeUInt32LE(strSec.length, 20);
  return Buffer.concat([hdr, typeSec, strSec]);
}
