// Property tests: no input, however hostile, makes validation or parsing throw; every answer is a
// well-formed verdict; and generated valid predicates parse to the tree they were printed from.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateKernelChaos, validateKernelChaosPolicy, MAX_WARNING_LENGTH } from '../../src/api/validate.js';
import { parseParameters, parsePredicate, PredicateError, type Expr, type Parameter } from '../../src/api/predicate/index.js';
import { parseManifestText } from '../../src/api/manifests.js';
import { parseSchedule } from '../../src/api/cron.js';
import { parseGoDuration } from '../../src/api/duration.js';
import { seed, type Json } from './helpers.js';

function wellFormed(v: ReturnType<typeof validateKernelChaos> | ReturnType<typeof validateKernelChaosPolicy>): void {
  for (const w of v.warnings) {
    expect(typeof w).toBe('string');
    expect(w.length).toBeLessThanOrEqual(MAX_WARNING_LENGTH);
  }
  if (!v.valid) {
    expect(v.errors.length).toBeGreaterThan(0);
    for (const e of v.errors) {
      expect(typeof e.path).toBe('string');
      expect(typeof e.message).toBe('string');
      expect(e.message.length).toBeGreaterThan(0);
      expect(e.message.length).toBeLessThan(1000);
      expect(e.message).not.toMatch(/\n\s+at /); // no stack traces
    }
  }
}

/** Paths into the seed where mutations land. */
const SEED_PATHS: string[][] = [
  [],
  ['apiVersion'],
  ['kind'],
  ['metadata'],
  ['metadata', 'name'],
  ['metadata', 'namespace'],
  ['spec'],
  ['spec', 'mode'],
  ['spec', 'value'],
  ['spec', 'selector'],
  ['spec', 'selector', 'namespaces'],
  ['spec', 'selector', 'labelSelectors'],
  ['spec', 'selector', 'expressionSelectors'],
  ['spec', 'selector', 'pods'],
  ['spec', 'failKernRequest'],
  ['spec', 'failKernRequest', 'failtype'],
  ['spec', 'failKernRequest', 'probability'],
  ['spec', 'failKernRequest', 'times'],
  ['spec', 'failKernRequest', 'headers'],
  ['spec', 'failKernRequest', 'callchain'],
  ['spec', 'failKernRequest', 'callchain', '0'],
  ['spec', 'failKernRequest', 'callchain', '0', 'funcname'],
  ['spec', 'failKernRequest', 'callchain', '0', 'parameters'],
  ['spec', 'failKernRequest', 'callchain', '0', 'predicate'],
  ['spec', 'duration'],
  ['spec', 'scheduler'],
  ['spec', 'scheduler', 'cron'],
  ['spec', 'remoteCluster'],
  ['spec', 'containerNames'],
];

function setAt(root: Json, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root);
  let node: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path.at(-1) as string] = value;
  return copy;
}

const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('', '\u0000', '../../../etc/passwd', '{{}}', '__proto__', 'constructor', '#include <x>', 'a'.repeat(100_000), '; rm -rf /'),
);
const value = fc.oneof(
  fc.anything({ maxDepth: 4, withNullPrototype: true, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true }),
  hostileString,
  fc.double(),
  fc.integer(),
);

describe('validation never throws', () => {
  it('on arbitrary values', () => {
    fc.assert(
      fc.property(value, (input) => {
        wellFormed(validateKernelChaos(input));
        wellFormed(validateKernelChaosPolicy(input));
      }),
      { numRuns: 300 },
    );
  });

  it('on the seed with a random value at a random field', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SEED_PATHS), value, (path, v) => {
        const input = setAt(seed(), path, v);
        const verdict = validateKernelChaos(input);
        wellFormed(verdict);
        if (verdict.valid) expect(verdict.parsed.callchain.length).toBeLessThanOrEqual(16);
      }),
      { numRuns: 1000 },
    );
  });

  it('on objects with hostile keys and prototypes', () => {
    const proto = JSON.parse('{"__proto__": {"polluted": true}, "spec": {"__proto__": {"mode": "all"}}}') as unknown;
    wellFormed(validateKernelChaos(proto));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const nullProto = Object.assign(Object.create(null) as object, seed());
    expect(validateKernelChaos(nullProto).valid).toBe(true);
    const throwing = { ...seed(), get spec(): never { throw new Error('boom'); } };
    const v = validateKernelChaos(throwing);
    expect(v.valid).toBe(false);
  });

  it('on deep nesting, huge strings, huge lists and cycles', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const v1 = validateKernelChaos({ ...seed(), spec: { ...(seed().spec as Json), selector: { pods: { a: deep } } } });
    expect(v1.valid).toBe(false);
    wellFormed(v1);
    let deepObject: Json = {};
    for (let i = 0; i < 100_000; i++) deepObject = { a: deepObject };
    wellFormed(validateKernelChaos(deepObject));
    wellFormed(validateKernelChaos(setAt(seed(), ['spec', 'failKernRequest', 'callchain', '0', 'predicate'], 'x'.repeat(10_000_000))));
    wellFormed(validateKernelChaos(setAt(seed(), ['spec', 'selector', 'namespaces'], Array.from({ length: 100_000 }, (_, i) => `ns-${i}`))));
    const callchain = Array.from({ length: 100_000 }, () => ({ funcname: 'f', predicate: '('.repeat(1000) }));
    wellFormed(validateKernelChaos(setAt(seed(), ['spec', 'failKernRequest', 'callchain'], callchain)));
    const wide: Json = {};
    for (let i = 0; i < 10_000; i++) wide[`field${i}`] = i;
    const v2 = validateKernelChaos({ ...seed(), spec: wide });
    wellFormed(v2);
    if (!v2.valid) {
      expect(v2.errors).toHaveLength(101);
      expect(v2.errors.at(-1)).toEqual({ path: '', message: expect.stringMatching(/^and \d+ more errors$/) });
    }
    const huge: Json = {};
    for (let i = 0; i < 60_000; i++) huge[`f${i}`] = i;
    expect(validateKernelChaos({ ...seed(), spec: huge })).toMatchObject({
      valid: false,
      errors: [{ path: '', message: 'has more than 50000 fields and list items: far more than any manifest' }],
    });
    const cyclic: Json = seed();
    (cyclic.spec as Json).self = cyclic;
    wellFormed(validateKernelChaos(cyclic));
  });
});

describe('parsers never throw anything but their own errors', () => {
  it('parsePredicate and parseParameters on random text', () => {
    const params = parseParameters('struct dentry *parent, const struct qstr *name, unsigned long flags');
    const cChars = fc.constantFrom(...'abcnpx_()->.!~-+*/%<>=&^|?:,"\'\\ 0123456789;{}[]#\n\tSTRCMP'.split(''));
    const cLike = fc.array(cChars, { maxLength: 80 }).map((a) => a.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string(), cLike, fc.string({ unit: 'binary' })), (text) => {
        for (const run of [() => parsePredicate(text, params), () => parseParameters(text)]) {
          try {
            run();
          } catch (e) {
            expect(e).toBeInstanceOf(PredicateError);
            const pe = e as PredicateError;
            expect(pe.position).toBeGreaterThanOrEqual(0);
            expect(pe.position).toBeLessThanOrEqual(text.length);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('parseManifestText, parseSchedule and parseGoDuration on random text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.json()), (text) => {
        const docs = parseManifestText(text, 'fuzz.yaml');
        for (const d of docs) wellFormed(validateKernelChaos(d.ok ? d.object : null));
        expect(typeof parseSchedule(text).ok).toBe('boolean');
        const ms = parseGoDuration(text);
        expect(ms === null || Number.isFinite(ms)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('generated predicates round-trip', () => {
  const PARAMS: Parameter[] = parseParameters('struct dentry *parent, const struct qstr *name, unsigned long flags');

  /** Fully parenthesised C for a tree, which the parser must read back to the same tree. */
  function print(e: Expr): string {
    switch (e.kind) {
      case 'int': return e.value.toString();
      case 'char': return `'\\x${e.value.toString(16)}'`;
      case 'string': return JSON.stringify(e.value);
      case 'param': return e.name;
      case 'member': return `${print(e.object)}${e.arrow ? '->' : '.'}${e.member}`;
      case 'unary': return `${e.op}(${print(e.operand)})`;
      case 'binary': return `(${print(e.left)} ${e.op} ${print(e.right)})`;
      case 'conditional': return `(${print(e.test)} ? ${print(e.then)} : ${print(e.otherwise)})`;
      case 'strcmp': return `${e.fn}(${print(e.subject)}, ${JSON.stringify(e.literal)}${e.length === null ? '' : `, ${e.length}`})`;
    }
  }

  const field = fc.constantFrom('d_name', 'len', 'name', 'd_flags', 'hash');
  const memberChain = fc.tuple(fc.constantFrom('parent', 'name'), fc.array(field, { minLength: 1, maxLength: 3 })).map(([p, fs]) => `${p}->${fs.join('.')}`);
  const { expr } = fc.letrec<{ expr: string; leaf: string }>((tie) => ({
    leaf: fc.oneof(
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String),
      fc.integer({ min: 0, max: 255 }).map((c) => `'\\x${c.toString(16)}'`),
      fc.constant('flags'),
      memberChain,
      fc.tuple(memberChain, fc.string({ unit: fc.constantFrom(...'abcxyz_-./'.split('')), maxLength: 20 })).map(([m, s]) => `STRCMP(${m}, ${JSON.stringify(s)})`),
      fc.tuple(memberChain, fc.integer({ min: 1, max: 256 })).map(([m, n]) => `STRNCMP(${m}, "bananas", ${n})`),
    ),
    expr: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      tie('leaf'),
      fc.tuple(fc.constantFrom('!', '-', '~'), tie('expr')).map(([op, x]) => `${op}(${x})`),
      fc.tuple(tie('expr'), fc.constantFrom('||', '&&', '|', '^', '&', '==', '!=', '<', '<=', '>', '>=', '<<', '>>', '+', '-', '*', '/', '%'), tie('expr')).map(([a, op, b]) => `(${a} ${op} ${b})`),
      fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([a, b, c]) => `(${a} ? ${b} : ${c})`),
    ),
  }));

  it('parse(print(parse(text))) equals parse(text)', () => {
    fc.assert(
      fc.property(expr, (text) => {
        let tree: Expr;
        try {
          tree = parsePredicate(text, PARAMS);
        } catch (e) {
          // Only the depth limit may refuse a generated predicate.
          expect((e as Error).message).toContain('nests too deeply');
          return;
        }
        const again = parsePredicate(print(tree), PARAMS);
        expect(print(again)).toBe(print(tree));
      }),
      { numRuns: 500 },
    );
  });
});
