// A reader for raw BTF (/sys/kernel/btf/vmlinux): the kernel's own description of its types, used to
// check a manifest's `parameters` and `predicate` before any C is generated. Pure: takes the bytes.
// Format: Documentation/bpf/btf.rst (header, then the type section, then the string section).
// One pass records where each type starts; types are decoded and names indexed only when asked.

const BTF_MAGIC = 0xeb9f;
const TYPE_HEADER_BYTES = 12;

export const BtfKind = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

export class BtfFormatError extends Error {
  override name = 'BtfFormatError';
}

/** Bytes that follow the 12-byte btf_type header, by kind (btf.rst, "Type Encoding"); null for an unknown kind. */
export function trailingBytes(kind: number, vlen: number): number | null {
  switch (kind) {
    case BtfKind.INT: case BtfKind.VAR: case BtfKind.DECL_TAG: return 4;
    case BtfKind.PTR: case BtfKind.FWD: case BtfKind.TYPEDEF: case BtfKind.VOLATILE: case BtfKind.CONST:
    case BtfKind.RESTRICT: case BtfKind.FUNC: case BtfKind.FLOAT: case BtfKind.TYPE_TAG: return 0;
    case BtfKind.ARRAY: return 12;
    case BtfKind.STRUCT: case BtfKind.UNION: case BtfKind.DATASEC: case BtfKind.ENUM64: return vlen * 12;
    case BtfKind.ENUM: case BtfKind.FUNC_PROTO: return vlen * 8;
    default: return null;
  }
}

export interface BtfMember {
  name: string;
  type: number;
  bitOffset: number;
  /** Non-zero for a bitfield. */
  bitfieldSize: number;
}

export interface BtfParam {
  name: string;
  /** 0 for the `...` of a variadic prototype. */
  type: number;
}

/** One decoded type. `id` 0 is void. */
export type BtfType =
  | { kind: 'void'; id: 0 }
  | { kind: 'int'; id: number; name: string; size: number; signed: boolean; char: boolean; bool: boolean }
  | { kind: 'ptr'; id: number; type: number }
  | { kind: 'array'; id: number; type: number; nelems: number }
  | { kind: 'struct' | 'union'; id: number; name: string; size: number; members: BtfMember[] }
  | { kind: 'enum'; id: number; name: string; size: number; signed: boolean }
  | { kind: 'fwd'; id: number; name: string; union: boolean }
  | { kind: 'typedef'; id: number; name: string; type: number }
  | { kind: 'volatile' | 'const' | 'restrict'; id: number; type: number }
  | { kind: 'type_tag'; id: number; name: string; type: number }
  | { kind: 'func'; id: number; name: string; type: number }
  | { kind: 'func_proto'; id: number; returns: number; params: BtfParam[] }
  | { kind: 'float'; id: number; name: string; size: number }
  | { kind: 'other'; id: number; name: string };

export class BtfReader {
  private readonly view: DataView;
  private readonly little: boolean;
  private readonly strOff: number;
  private readonly strLen: number;
  /** Byte offset of each type's header, by id (index 0 unused). */
  private readonly offsets: Uint32Array;
  private readonly cache = new Map<number, BtfType>();
  private names: Map<string, number[]> | null = null;

  constructor(private readonly blob: Uint8Array) {
    this.view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    if (blob.byteLength < 24) throw new BtfFormatError('BTF blob is shorter than its header');
    this.little = this.view.getUint16(0, true) === BTF_MAGIC;
    if (!this.little && this.view.getUint16(0, false) !== BTF_MAGIC) throw new BtfFormatError('not BTF (bad magic)');
    const hdrLen = this.u32(4);
    const typeOff = hdrLen + this.u32(8);
    const typeLen = this.u32(12);
    this.strOff = hdrLen + this.u32(16);
    this.strLen = this.u32(20);
    if (typeOff + typeLen > blob.byteLength || this.strOff + this.strLen > blob.byteLength) {
      throw new BtfFormatError('BTF sections run past the end of the blob');
    }
    const offsets: number[] = [0];
    let pos = typeOff;
    const end = typeOff + typeLen;
    while (pos + TYPE_HEADER_BYTES <= end) {
      const info = this.u32(pos + 4);
      const kind = (info >>> 24) & 0x1f;
      const extra = trailingBytes(kind, info & 0xffff);
      if (extra === null) throw new BtfFormatError(`unknown BTF kind ${kind} at type id ${offsets.length}`);
      offsets.push(pos);
      pos += TYPE_HEADER_BYTES + extra;
    }
    if (pos > end) throw new BtfFormatError('the last BTF type runs past the type section');
    this.offsets = Uint32Array.from(offsets);
  }

  /** Number of types, void included. */
  get count(): number {
    return this.offsets.length;
  }

  private u32(at: number): number {
    return this.view.getUint32(at, this.little);
  }

  private str(off: number): string {
    if (off >= this.strLen) throw new BtfFormatError(`string offset ${off} is past the string section`);
    const start = this.strOff + off;
    let end = start;
    const limit = this.strOff + this.strLen;
    while (end < limit && this.blob[end] !== 0) end++;
    return Buffer.from(this.blob.buffer, this.blob.byteOffset + start, end - start).toString('latin1');
  }

  /** The type with this id; throws BtfFormatError for an id the blob does not have. */
  type(id: number): BtfType {
    if (id === 0) return { kind: 'void', id: 0 };
    const hit = this.cache.get(id);
    if (hit) return hit;
    const pos = this.offsets[id];
    if (pos === undefined || id < 0) throw new BtfFormatError(`type id ${id} is not in this BTF`);
    const decoded = this.decode(id, pos);
    this.cache.set(id, decoded);
    return decoded;
  }

  private decode(id: number, pos: number): BtfType {
    const nameOff = this.u32(pos);
    const info = this.u32(pos + 4);
    const sizeOrType = this.u32(pos + 8);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kindFlag = (info >>> 31) === 1;
    const body = pos + TYPE_HEADER_BYTES;
    const name = (): string => this.str(nameOff);
    switch (kind) {
      case BtfKind.INT: {
        const encoding = (this.u32(body) >>> 24) & 0x0f;
        return { kind: 'int', id, name: name(), size: sizeOrType, signed: (encoding & 1) !== 0, char: (encoding & 2) !== 0, bool: (encoding & 4) !== 0 };
      }
      case BtfKind.PTR: return { kind: 'ptr', id, type: sizeOrType };
      case BtfKind.ARRAY: return { kind: 'array', id, type: this.u32(body), nelems: this.u32(body + 8) };
      case BtfKind.STRUCT: case BtfKind.UNION: {
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++) {
          const at = body + i * 12;
          const offset = this.u32(at + 8);
          members.push({
            name: this.str(this.u32(at)),
            type: this.u32(at + 4),
            bitOffset: kindFlag ? offset & 0xffffff : offset,
            bitfieldSize: kindFlag ? offset >>> 24 : 0,
          });
        }
        return { kind: kind === BtfKind.STRUCT ? 'struct' : 'union', id, name: name(), size: sizeOrType, members };
      }
      case BtfKind.ENUM: case BtfKind.ENUM64: return { kind: 'enum', id, name: name(), size: sizeOrType, signed: kindFlag };
      case BtfKind.FWD: return { kind: 'fwd', id, name: name(), union: kindFlag };
      case BtfKind.TYPEDEF: return { kind: 'typedef', id, name: name(), type: sizeOrType };
      case BtfKind.VOLATILE: return { kind: 'volatile', id, type: sizeOrType };
      case BtfKind.CONST: return { kind: 'const', id, type: sizeOrType };
      case BtfKind.RESTRICT: return { kind: 'restrict', id, type: sizeOrType };
      case BtfKind.TYPE_TAG: return { kind: 'type_tag', id, name: name(), type: sizeOrType };
      case BtfKind.FUNC: return { kind: 'func', id, name: name(), type: sizeOrType };
      case BtfKind.FUNC_PROTO: {
        const params: BtfParam[] = [];
        for (let i = 0; i < vlen; i++) params.push({ name: this.str(this.u32(body + i * 8)), type: this.u32(body + i * 8 + 4) });
        return { kind: 'func_proto', id, returns: sizeOrType, params };
      }
      case BtfKind.FLOAT: return { kind: 'float', id, name: name(), size: sizeOrType };
      default: return { kind: 'other', id, name: name() };
    }
  }

  /** Ids of the named types with this name (any kind), in id order. The index is built on first use. */
  idsNamed(name: string): readonly number[] {
    if (!this.names) {
      const names = new Map<string, number[]>();
      for (let id = 1; id < this.offsets.length; id++) {
        const nameOff = this.u32(this.offsets[id] as number);
        if (nameOff === 0) continue;
        const n = this.str(nameOff);
        const list = names.get(n);
        if (list) list.push(id);
        else names.set(n, [id]);
      }
      this.names = names;
    }
    return this.names.get(name) ?? [];
  }

  /** The first type of one of `kinds` named `name`, or null. */
  find<K extends BtfType['kind']>(name: string, kinds: readonly K[]): Extract<BtfType, { kind: K }> | null {
    for (const id of this.idsNamed(name)) {
      const t = this.type(id);
      if ((kinds as readonly string[]).includes(t.kind)) return t as Extract<BtfType, { kind: K }>;
    }
    return null;
  }

  /** A struct or union with this tag that has members (a full definition, not a forward declaration). */
  findComposite(kind: 'struct' | 'union', name: string): Extract<BtfType, { kind: 'struct' | 'union' }> | null {
    for (const id of this.idsNamed(name)) {
      const t = this.type(id);
      if (t.kind === kind) return t;
    }
    return null;
  }

  /** The FUNC named `name` and its prototype, or null when this BTF does not describe it. */
  func(name: string): { func: Extract<BtfType, { kind: 'func' }>; proto: Extract<BtfType, { kind: 'func_proto' }> } | null {
    const func = this.find(name, ['func']);
    if (!func) return null;
    const proto = this.type(func.type);
    if (proto.kind !== 'func_proto') throw new BtfFormatError(`FUNC ${name} points at a ${proto.kind}, not a FUNC_PROTO`);
    return { func, proto };
  }
}

/** Skips typedefs, qualifiers and type tags; returns the underlying type and the tags met on the way. */
export function resolveType(btf: BtfReader, id: number): { type: BtfType; tags: string[] } {
  const tags: string[] = [];
  let t = btf.type(id);
  for (let hops = 0; hops < 64; hops++) {
    if (t.kind === 'typedef' || t.kind === 'const' || t.kind === 'volatile' || t.kind === 'restrict') t = btf.type(t.type);
    else if (t.kind === 'type_tag') {
      tags.push(t.name);
      t = btf.type(t.type);
    } else return { type: t, tags };
  }
  throw new BtfFormatError(`type id ${id} is a chain of more than 64 typedefs or qualifiers`);
}

/** A C rendering of a BTF type (`const struct qstr *`, `unsigned long`), for error messages. */
export function formatType(btf: BtfReader, id: number, depth = 0): string {
  if (depth > 16) return '...';
  const t = btf.type(id);
  switch (t.kind) {
    case 'void': return 'void';
    case 'int': case 'float': case 'typedef': return t.name;
    case 'struct': case 'union': return `${t.kind} ${t.name || '(anonymous)'}`;
    case 'enum': return `enum ${t.name || '(anonymous)'}`;
    case 'fwd': return `${t.union ? 'union' : 'struct'} ${t.name}`;
    case 'const': case 'volatile': case 'restrict': {
      const inner = btf.type(t.type);
      if (inner.kind === 'ptr') return `${formatType(btf, t.type, depth + 1)} ${t.kind}`;
      return `${t.kind} ${formatType(btf, t.type, depth + 1)}`;
    }
    case 'type_tag': return `${formatType(btf, t.type, depth + 1)} __${t.name}`;
    case 'ptr': {
      const inner = btf.type(t.type);
      if (inner.kind === 'func_proto') return `${formatType(btf, inner.returns, depth + 1)} (*)(${formatParams(btf, inner, depth + 1)})`;
      const text = formatType(btf, t.type, depth + 1);
      return text.endsWith('*') ? `${text}*` : `${text} *`;
    }
    case 'array': return `${formatType(btf, t.type, depth + 1)}[${t.nelems}]`;
    case 'func_proto': return `${formatType(btf, t.returns, depth + 1)} (${formatParams(btf, t, depth + 1)})`;
    case 'func': return t.name;
    case 'other': return t.name || '?';
  }
}

function formatParams(btf: BtfReader, proto: Extract<BtfType, { kind: 'func_proto' }>, depth: number): string {
  if (proto.params.length === 0) return 'void';
  return proto.params.map((p) => (p.type === 0 ? '...' : formatType(btf, p.type, depth))).join(', ');
}

/** `unsigned long ksys_mmap_pgoff(unsigned long addr, unsigned long len, ...)` as the kernel declares it. */
export function formatPrototype(btf: BtfReader, name: string, proto: Extract<BtfType, { kind: 'func_proto' }>): string {
  const params = proto.params.length === 0
    ? 'void'
    : proto.params.map((p) => {
        if (p.type === 0) return '...';
        const type = formatType(btf, p.type);
        return p.name ? `${type}${type.endsWith('*') ? '' : ' '}${p.name}` : type;
      }).join(', ');
  const ret = formatType(btf, proto.returns);
  return `${ret}${ret.endsWith('*') ? '' : ' '}${name}(${params})`;
}
