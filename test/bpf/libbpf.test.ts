import { writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BpfObject, classifyFailure, trimVerifierLog } from '../../src/bpf/libbpf.js';
import { EngineError } from '../../src/bpf/types.js';

const VERIFIER_FAILURE = [
  "libbpf: prog 'kc_site': BPF program load failed: Permission denied\n",
  "libbpf: prog 'kc_site': -- BEGIN PROG LOAD LOG --\n",
  'func#0 @0\n',
  ...Array.from({ length: 30 }, (_, i) => `${i}: (b7) r1 = ${i}\n`),
  '31: (61) r2 = *(u32 *)(r0 +0)\n',
  "R0 invalid mem access 'map_value_or_null'\n",
  'processed 31 insns (limit 1000000) max_states_per_insn 0 total_states 2 peak_states 2 mark_read 1\n',
  '-- END PROG LOAD LOG --\n',
  "libbpf: prog 'kc_site': failed to load: -13\n",
];

describe('trimVerifierLog', () => {
  it('keeps the verifier lines just before its verdict, not the statistics or the listing head', () => {
    const trimmed = trimVerifierLog(VERIFIER_FAILURE, 3);
    expect(trimmed).toBe("29: (b7) r1 = 29\n31: (61) r2 = *(u32 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'");
  });

  it("falls back to libbpf's last lines when there is no verifier log", () => {
    const lines = ['libbpf: loading object x\n', "libbpf: failed to find kernel BTF type ID of 'd_alloc_parallel': -3\n"];
    expect(trimVerifierLog(lines)).toContain("failed to find kernel BTF type ID of 'd_alloc_parallel'");
  });
});

describe('classifyFailure', () => {
  it('tells a verifier rejection, a missing function, a missing capability and an old kernel apart', () => {
    expect(classifyFailure('load', 13, VERIFIER_FAILURE.join(''))).toBe('verifier-rejected');
    expect(classifyFailure('load', 3, "libbpf: failed to find kernel BTF type ID of 'nosuch': -3")).toBe('missing-symbol');
    expect(classifyFailure('attach', 2, "libbpf: prog 'kc_enter_0': failed to create kprobe 'nosuch+0x0' perf event: No such file or directory")).toBe('missing-symbol');
    expect(classifyFailure('load', 1, "libbpf: prog 'kc_site': BPF program load failed: Operation not permitted")).toBe('missing-capability');
    expect(classifyFailure('attach', 95, 'libbpf: attach failed')).toBe('unsupported-kernel');
  });
});

describe('BpfObject (libbpf through koffi)', () => {
  const dir = resolve(import.meta.dirname, '..', '..', '.vmcache', 'libbpf-test');

  it("reports a missing object with libbpf's own words, captured through the print callback", () => {
    const error = (() => {
      try {
        BpfObject.load('/nonexistent/kc.o');
        return null;
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).message).toContain('libbpf could not open /nonexistent/kc.o: ENOENT');
    expect((error as EngineError).detail).toContain('failed to open /nonexistent/kc.o');
  });

  it('refuses a file that is not a BPF ELF object without crashing the process', () => {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'garbage.o');
    writeFileSync(path, 'this is not an ELF file\n');
    expect(() => BpfObject.load(path)).toThrow(EngineError);
  });
});
