import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { btfFunctionNames, kernelBtfFunctions } from '../../src/bpf/btf.js';

/** A tiny BTF blob: INT, PTR, a FUNC_PROTO with one param, and two FUNCs. */
function tinyBtf(): Buffer {
  const strings = Buffer.from('\0int\0should_failslab\0d_alloc_parallel\0x\0', 'latin1');
  const types: number[] = [];
  const type = (nameOff: number, kind: number, vlen: number, sizeOrType: number, ...extra: number[]) =>
    types.push(nameOff, (kind << 24) | vlen, sizeOrType, ...extra);
  type(1, 1, 0, 4, 32); // [1] INT 'int' size 4, encoding word
  type(0, 2, 0, 1); // [2] PTR -> int
  type(0, 13, 1, 1, 38, 2); // [3] FUNC_PROTO returns int, one param 'x' of type 2
  type(5, 12, 0, 3); // [4] FUNC should_failslab
  type(21, 12, 0, 3); // [5] FUNC d_alloc_parallel
  const typeBytes = Buffer.alloc(types.length * 4);
  types.forEach((v, i) => typeBytes.writeUInt32LE(v >>> 0, i * 4));
  const header = Buffer.alloc(24);
  header.writeUInt16LE(0xeb9f, 0);
  header.writeUInt8(1, 2);
  header.writeUInt32LE(24, 4);
  header.writeUInt32LE(0, 8);
  header.writeUInt32LE(typeBytes.length, 12);
  header.writeUInt32LE(typeBytes.length, 16);
  header.writeUInt32LE(strings.length, 20);
  return Buffer.concat([header, typeBytes, strings]);
}

describe('btfFunctionNames', () => {
  it('lists FUNC names, stepping over the trailing data of other kinds', () => {
    expect([...btfFunctionNames(tinyBtf())]).toEqual(['should_failslab', 'd_alloc_parallel']);
  });

  it('refuses a blob that is not BTF', () => {
    expect(() => btfFunctionNames(Buffer.from('ELF not btf at all, long enough'))).toThrow(/not a little-endian BTF blob/);
  });

  const haveKernelBtf = existsSync('/sys/kernel/btf/vmlinux') && spawnSync('sh', ['-c', 'command -v bpftool']).status === 0;
  it.skipIf(!haveKernelBtf)('agrees with bpftool on the running kernel', () => {
    const dump = spawnSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux'], { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
    const expected = new Set([...dump.stdout.matchAll(/^\[\d+\] FUNC '([^']+)'/gm)].map((m) => m[1]));
    const found = kernelBtfFunctions();
    expect(found?.size).toBe(expected.size);
    expect(found?.has('__x64_sys_mount')).toBe(expected.has('__x64_sys_mount'));
  });
});
