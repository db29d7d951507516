// The TypeScript side's map names, layouts and limits (src/bpf/layout.ts) against the C headers
// the programs are built from: parsed here (fixed-width fields at natural alignment, as kc_maps.h
// promises), and, where clang is installed, checked by the compiler itself with _Static_assert.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { encodeSettings, LIMITS, MAP_LAYOUT, MAP_NAMES, SETTINGS_SECTION } from '../../src/bpf/layout.js';
import { RUNTIME_HEADER_DIR, runtimeHeader } from '../../src/bpf/runtime-headers.js';

const SIZES: Record<string, number> = { __u8: 1, __u16: 2, __u32: 4, __u64: 8, __s32: 4, __s64: 8 };

interface Field {
  name: string;
  offset: number;
  size: number;
}

function defines(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^#define (\w+) ("[^"]*"|\S+)/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

/** struct name -> fields with offsets, and its size, from plain C struct definitions. */
function parseStructs(text: string): Map<string, { fields: Field[]; size: number }> {
  const defs = defines(text);
  const structs = new Map<string, { fields: Field[]; size: number }>();
  for (const m of text.matchAll(/^struct (\w+) \{\n([^}]*)\};/gm)) {
    const fields: Field[] = [];
    let offset = 0;
    let align = 1;
    for (const f of (m[2] ?? '').replace(/\/\*[^]*?\*\//g, '').matchAll(/(\w+)\s+(\w+)(?:\[(\w+)\])?;/g)) {
      const size = SIZES[f[1] ?? ''];
      if (size === undefined) throw new Error(`struct ${m[1]}: field type ${f[1]} is not a fixed-width type`);
      const count = f[3] === undefined ? 1 : Number(defs.get(f[3]) ?? f[3]);
      offset = Math.ceil(offset / size) * size;
      fields.push({ name: f[2] ?? '', offset, size: size * count });
      offset += size * count;
      align = Math.max(align, size);
    }
    structs.set(m[1] ?? '', { fields, size: Math.ceil(offset / align) * align });
  }
  return structs;
}

const maps = runtimeHeader('kc_maps.h');
const structs = parseStructs(maps);
const camel = (s: string): string => s.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());

/** The layout.ts entry of every struct kc_maps.h defines (struct kc_X <-> MAP_LAYOUT.X). */
const LAYOUTS: Record<string, Record<string, number>> = MAP_LAYOUT;

describe('src/bpf/layout.ts matches kc_maps.h', () => {
  it('every struct: size and every field offset (snake_case in C, camelCase in TypeScript)', () => {
    expect([...structs.keys()].sort()).toEqual(Object.keys(LAYOUTS).map((k) => `kc_${k}`).sort());
    for (const [name, struct] of structs) {
      const layout = LAYOUTS[name.replace(/^kc_/, '')] ?? {};
      expect(layout.size, `${name} size`).toBe(struct.size);
      for (const field of struct.fields) {
        if (field.name === 'pad') continue;
        expect(layout[camel(field.name)], `${name}.${field.name}`).toBe(field.offset);
      }
    }
  });

  it('the limits and the settings section', () => {
    const defs = defines(maps);
    expect({
      targets: Number(defs.get('KC_MAX_TARGETS')),
      verdicts: Number(defs.get('KC_MAX_VERDICTS')),
      frames: Number(defs.get('KC_MAX_FRAMES')),
      threads: Number(defs.get('KC_MAX_THREADS')),
      cgroupLevels: Number(defs.get('KC_MAX_CGROUP_LEVELS')),
    }).toEqual(LIMITS);
    expect(defs.get('KC_SETTINGS_SECTION')).toBe(JSON.stringify(SETTINGS_SECTION));
    expect(encodeSettings({ times: 3, probability: 40, chainLength: 2, retTrampoline: 0xffffffff81000000n }).toString('hex')).toBe(
      '0300000000000000' + '28000000' + '02000000' + '00000081ffffffff',
    );
  });

  it('every map the loader opens by name is defined in the headers, with the value struct the layout describes', () => {
    const text = runtimeHeader('kc_target.bpf.h') + runtimeHeader('kc_runtime.bpf.h');
    const defined = new Map([...text.matchAll(/struct \{\n((?:\t[^\n]*\n)*?)\} (\w+) SEC\("\.maps"\);/g)].map((m) => [m[2] ?? '', m[1] ?? '']));
    expect([...defined.keys()].sort()).toEqual(Object.values(MAP_NAMES).sort());
    const valueOf = (name: string): string | undefined => /__type\(value, (?:struct )?(\w+)\)/.exec(defined.get(name) ?? '')?.[1];
    expect(valueOf(MAP_NAMES.config)).toBe('kc_config');
    expect(valueOf(MAP_NAMES.counters)).toBe('kc_counters');
    expect(valueOf(MAP_NAMES.claims)).toBe('kc_claims');
    expect(valueOf(MAP_NAMES.verdicts)).toBe('kc_verdict');
    expect(valueOf(MAP_NAMES.threads)).toBe('kc_thread');
    expect(valueOf(MAP_NAMES.chain)).toBe('kc_chain');
    expect(valueOf(MAP_NAMES.targets)).toBe('__u8');
    expect(defined.get(MAP_NAMES.targets)).toContain('__uint(max_entries, KC_MAX_TARGETS);');
  });

  const clang = spawnSync('sh', ['-c', 'command -v clang']).status === 0;
  it.skipIf(!clang)('clang agrees: _Static_assert on every offset and size', () => {
    const asserts: string[] = [];
    for (const [name, struct] of structs) {
      const layout = LAYOUTS[name.replace(/^kc_/, '')] ?? {};
      asserts.push(`_Static_assert(sizeof(struct ${name}) == ${layout.size}, "${name} size");`);
      for (const f of struct.fields) {
        if (f.name !== 'pad') asserts.push(`_Static_assert(__builtin_offsetof(struct ${name}, ${f.name}) == ${layout[camel(f.name)]}, "${name}.${f.name}");`);
      }
    }
    const source = ['typedef unsigned char __u8; typedef unsigned int __u32; typedef unsigned long long __u64; typedef long long __s64;', '#include "kc_maps.h"', ...asserts].join('\n');
    const r = spawnSync('clang', ['-target', 'bpf', '-fsyntax-only', '-I', RUNTIME_HEADER_DIR, '-x', 'c', '-'], { input: source, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
