// examples/ is what users copy: Chaos Mesh's documented KernelChaos manifests (unchanged), bcc
// inject_example.txt's call chains and chaos-mesh/bpfki's examples rewritten as KernelChaos, and a
// KernelChaosPolicy. Every one must validate, and must mean what its comment says (the parsed
// call chain the BPF generator receives). Forms that cannot be expressed are refused clearly.
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { readManifestSources, type ManifestDocument } from '../../src/api/manifests.js';
import { validateKernelChaos, validateKernelChaosPolicy, type KernelChaosVerdict } from '../../src/api/validate.js';
import type { Expr, ParsedFailKernRequest } from '../../src/api/predicate/ast.js';
import { runValidate } from '../../src/cli/validate.js';
import { SEED_YAML } from '../fixtures/seed.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLES = join(ROOT, 'examples');

/** The examples this suite documents; more may be added, none may silently disappear. */
const EXPECTED_FILES = [
  'chaos-mesh/kernel-chaos-example.yaml',
  'chaos-mesh/kernel-chaos-example-chaos-testing.yaml',
  'chaos-mesh/kernel-chaos-example-v1.0.yaml',
  'bcc-inject/fail-mount.yaml',
  'bcc-inject/fail-mount-explicit.yaml',
  'bcc-inject/fail-btrfs-mount.yaml',
  'bcc-inject/fail-btrfs-close-devices.yaml',
  'bcc-inject/fail-dentry-bananas.yaml',
  'bcc-inject/fail-btrfs-superblock-bio.yaml',
  'bcc-inject/fail-mount-1-percent.yaml',
  'bcc-inject/fail-mount-count.yaml',
  'bpfki/fail-ext4-mount.yaml',
  'bpfki/fail-alloc-page.yaml',
  'policy/kernelchaospolicy.yaml',
];

type OkDocument = Extract<ManifestDocument, { ok: true }>;
let documents: OkDocument[] = [];

beforeAll(async () => {
  const read = await readManifestSources([EXAMPLES]);
  const failed = read.filter((d) => !d.ok);
  expect(failed, 'every example file parses').toEqual([]);
  documents = read.filter((d): d is OkDocument => d.ok);
});

function kindOf(object: unknown): unknown {
  return typeof object === 'object' && object !== null ? (object as { kind?: unknown }).kind : undefined;
}

function docsOfKind(kind: string): OkDocument[] {
  return documents.filter((d) => kindOf(d.object) === kind);
}

function example(file: string): OkDocument {
  const found = documents.filter((d) => relative(EXAMPLES, d.source) === file);
  expect(found, `${file} holds exactly one document`).toHaveLength(1);
  return found[0] as OkDocument;
}

function valid(file: string): Extract<KernelChaosVerdict, { valid: true }> {
  const verdict = validateKernelChaos(example(file).object);
  if (!verdict.valid) throw new Error(`${file}: ${JSON.stringify(verdict.errors)}`);
  return verdict;
}

function parsedOf(file: string): ParsedFailKernRequest {
  return valid(file).parsed;
}

function funcnames(parsed: ParsedFailKernRequest): string[] {
  return parsed.callchain.map((f) => f.funcname);
}

/** The predicate AST without source spans or resolved parameters, for comparison. */
function shape(e: Expr | null): unknown {
  if (e === null) return null;
  switch (e.kind) {
    case 'int':
      return { int: e.value };
    case 'string':
    case 'char':
      return { [e.kind]: e.value };
    case 'param':
      return { param: e.name };
    case 'member':
      return { member: e.member, arrow: e.arrow, of: shape(e.object) };
    case 'unary':
      return { op: e.op, operand: shape(e.operand) };
    case 'binary':
      return { op: e.op, left: shape(e.left), right: shape(e.right) };
    case 'conditional':
      return { test: shape(e.test), then: shape(e.then), otherwise: shape(e.otherwise) };
    case 'strcmp':
      return { fn: e.fn, subject: shape(e.subject), literal: e.literal, length: e.length };
  }
}

describe('examples/', () => {
  it('holds every documented example, each starting with a comment that says where it comes from', () => {
    const files = new Set(documents.map((d) => relative(EXAMPLES, d.source)));
    for (const file of EXPECTED_FILES) {
      expect(files.has(file), `${file} exists`).toBe(true);
      const firstLine = readFileSync(join(EXAMPLES, file), 'utf8').split('\n')[0] ?? '';
      expect(firstLine, `${file} starts with a comment line`).toMatch(/^# \S.{20,}/);
    }
  });

  it('every KernelChaos in examples/ validates (as kernelchaos validate and the webhook see it)', () => {
    const chaos = docsOfKind('KernelChaos');
    expect(chaos.length).toBeGreaterThanOrEqual(13);
    const failures = chaos
      .map((d) => ({ file: relative(EXAMPLES, d.source), verdict: validateKernelChaos(d.object) }))
      .filter(({ verdict }) => !verdict.valid);
    expect(failures).toEqual([]);
  });

  it('kernelchaos validate -f examples/ exits 0 and reports every example valid', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runValidate(['-f', EXAMPLES, '--output', 'json'], { stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
    expect(err.join('')).toBe('');
    expect(code).toBe(0);
    const text = out.join('');
    for (const file of EXPECTED_FILES) expect(text).toContain(join(EXAMPLES, file));
    expect(text).not.toMatch(/"status":\s*"invalid"/);
  });

  it('every KernelChaosPolicy in examples/ validates', () => {
    const policies = docsOfKind('KernelChaosPolicy');
    expect(policies.length).toBeGreaterThanOrEqual(1);
    for (const d of policies) {
      const verdict = validateKernelChaosPolicy(d.object);
      expect(verdict.valid ? [] : verdict.errors, relative(EXAMPLES, d.source)).toEqual([]);
    }
  });
});

describe("Chaos Mesh's documented examples", () => {
  // The YAML blocks of the Chaos Mesh website, byte for byte (chaos-mesh/website history): the seed's text in namespace chaos-mesh.
  const current = SEED_YAML.replace('namespace: chaos-testing', 'namespace: chaos-mesh');
  const docs: [string, string][] = [
    ['chaos-mesh/kernel-chaos-example.yaml', current],
    ['chaos-mesh/kernel-chaos-example-chaos-testing.yaml', current.replace('namespace: chaos-mesh', 'namespace: chaos-testing')],
    [
      'chaos-mesh/kernel-chaos-example-v1.0.yaml',
      current
        .replace('namespace: chaos-mesh', 'namespace: chaos-testing')
        .replace(`      - funcname: '__x64_sys_mount'`, `        - funcname: "__x64_sys_mount"`),
    ],
  ];

  it.each(docs)('%s is the docs text unchanged below its comment line', (file, text) => {
    const body = readFileSync(join(EXAMPLES, file), 'utf8').split('\n').slice(1).join('\n');
    expect(body).toBe(text);
  });

  it.each(docs)('%s fails slab allocations under __x64_sys_mount in one pod of chaos-mount', (file) => {
    const { chaos, parsed } = valid(file);
    expect(chaos.spec.mode).toBe('one');
    expect(chaos.spec.selector.namespaces).toEqual(['chaos-mount']);
    expect(parsed.failtype).toBe(0);
    expect(funcnames(parsed)).toEqual(['__x64_sys_mount']);
    expect(parsed.callchain[0]?.predicate).toBeNull();
    // Omitted probability and times: every call fails, without limit (the doc's mount loop).
    expect(parsed.probability).toBe(0);
    expect(parsed.times).toBe(0);
  });

  it("refuses the v0.x docs' pingcap.com/v1alpha1 apiVersion, naming the one to use", () => {
    const manifest = structuredClone(example('chaos-mesh/kernel-chaos-example-v1.0.yaml').object) as Record<string, unknown>;
    manifest.apiVersion = 'pingcap.com/v1alpha1';
    const verdict = validateKernelChaos(manifest);
    expect(verdict.valid).toBe(false);
    if (verdict.valid) return;
    expect(verdict.errors.map((e) => e.path)).toEqual(['apiVersion']);
    expect(verdict.errors[0]?.message).toContain('chaos-mesh.org/v1alpha1');
  });
});

describe("bcc inject_example.txt's call chains as KernelChaos", () => {
  it("'SyS_mount()': every mount, via __x64_sys_mount", () => {
    const parsed = parsedOf('bcc-inject/fail-mount.yaml');
    expect(parsed.failtype).toBe(0);
    expect(funcnames(parsed)).toEqual(['__x64_sys_mount']);
    expect(parsed.callchain[0]?.predicate).toBeNull();
  });

  it("'(true) => SyS_mount()(true)': the explicit predicate parses to the constant 1", () => {
    const parsed = parsedOf('bcc-inject/fail-mount-explicit.yaml');
    expect(funcnames(parsed)).toEqual(['__x64_sys_mount']);
    expect(shape(parsed.callchain[0]?.predicate ?? null)).toEqual({ int: 1n });
  });

  it("'mount_subtree() => btrfs_mount()': outermost first, so btrfs_mount then mount_subtree", () => {
    expect(funcnames(parsedOf('bcc-inject/fail-btrfs-mount.yaml'))).toEqual(['btrfs_mount', 'mount_subtree']);
  });

  it("'btrfs_alloc_device() => btrfs_close_devices()'", () => {
    expect(funcnames(parsedOf('bcc-inject/fail-btrfs-close-devices.yaml'))).toEqual(['btrfs_close_devices', 'btrfs_alloc_device']);
  });

  it("d_alloc_parallel(...)(STRCMP(name->name, 'bananas')): the second argument compared with \"bananas\"", () => {
    const frame = parsedOf('bcc-inject/fail-dentry-bananas.yaml').callchain[0];
    expect(frame?.funcname).toBe('d_alloc_parallel');
    expect(frame?.parameters.map((p) => [p.index, p.name, p.type.base, p.type.pointerDepth, p.type.qualifiers])).toEqual([
      [0, 'parent', { kind: 'struct', name: 'dentry' }, 1, []],
      [1, 'name', { kind: 'struct', name: 'qstr' }, 1, ['const']],
    ]);
    expect(shape(frame?.predicate ?? null)).toEqual({
      fn: 'STRCMP',
      subject: { member: 'name', arrow: true, of: { param: 'name' } },
      literal: 'bananas',
      length: null,
    });
  });

  it('bio to sector 128: failtype 2 with a member-access predicate on the bio', () => {
    const parsed = parsedOf('bcc-inject/fail-btrfs-superblock-bio.yaml');
    expect(parsed.failtype).toBe(2);
    expect(parsed.headers).toEqual(['linux/blkdev.h']);
    expect(funcnames(parsed)).toEqual(['submit_bio']);
    expect(shape(parsed.callchain[0]?.predicate ?? null)).toEqual({
      op: '==',
      left: { member: 'bi_sector', arrow: false, of: { member: 'bi_iter', arrow: true, of: { param: 'bio' } } },
      right: { int: 128n },
    });
  });

  it('-P 0.01 is probability 1 (percent), -c 3 is times 3', () => {
    expect(parsedOf('bcc-inject/fail-mount-1-percent.yaml')).toMatchObject({ probability: 1, times: 0 });
    expect(parsedOf('bcc-inject/fail-mount-count.yaml')).toMatchObject({ probability: 0, times: 3 });
  });

  describe('what inject.py accepts but a parsed predicate must refuse, with the field and the fix', () => {
    const base = (): OkDocument => example('bcc-inject/fail-mount.yaml');
    function withFrame(frame: Record<string, string>, extra: Record<string, unknown> = {}): unknown {
      const m = structuredClone(base().object) as { spec: { failKernRequest: Record<string, unknown> } };
      m.spec.failKernRequest = { ...m.spec.failKernRequest, callchain: [frame], ...extra };
      return m;
    }
    function errorsOf(input: unknown): { path: string; message: string }[] {
      const verdict = validateKernelChaos(input);
      expect(verdict.valid).toBe(false);
      return verdict.valid ? [] : verdict.errors;
    }

    it("STRCMP(name->name, 'bananas') as written in inject_example.txt: use double quotes", () => {
      const errors = errorsOf(
        withFrame({
          funcname: 'd_alloc_parallel',
          parameters: 'struct dentry *parent, const struct qstr *name',
          predicate: "STRCMP(name->name, 'bananas')",
        }),
      );
      expect(errors.map((e) => e.path)).toEqual(['spec.failKernRequest.callchain[0].predicate']);
      expect(errors[0]?.message).toMatch(/double quotes/);
      expect(errors[0]?.message).toMatch(/\b19\b/);
    });

    it('the superblock example\'s statement expression ({ ... }) is refused at its position', () => {
      const predicate =
        '(({struct gendisk *d = bio->bi_disk; dev_t disk = d->part0; disk == MKDEV(254,16);}) && bio->bi_iter.bi_sector == 128)';
      const errors = errorsOf(withFrame({ funcname: 'submit_bio', parameters: 'struct bio *bio', predicate }, { failtype: 2 }));
      expect(errors.map((e) => e.path)).toEqual(['spec.failKernRequest.callchain[0].predicate']);
      expect(errors[0]?.message).toMatch(/'\{'/);
      expect(errors[0]?.message).toMatch(/\b2\b/);
    });

    it('a predicate naming an undeclared parameter (inject.py needs the signature up to it)', () => {
      const errors = errorsOf(withFrame({ funcname: 'd_alloc_parallel', predicate: 'STRCMP(name->name, "bananas")' }));
      expect(errors.map((e) => e.path)).toEqual(['spec.failKernRequest.callchain[0].predicate']);
      expect(errors[0]?.message).toMatch(/name/);
    });

    it('-P 0.01 written as probability: 0.01 is told to write a percent', () => {
      const m = structuredClone(base().object) as { spec: { failKernRequest: Record<string, unknown> } };
      m.spec.failKernRequest.probability = 0.01;
      const errors = errorsOf(m);
      expect(errors.map((e) => e.path)).toEqual(['spec.failKernRequest.probability']);
      expect(errors[0]?.message).toMatch(/percent/);
    });
  });
});

describe("chaos-mesh/bpfki's examples as KernelChaos", () => {
  it('fail-ext4-mount: ext4_mount then mount_subtree', () => {
    const parsed = parsedOf('bpfki/fail-ext4-mount.yaml');
    expect(parsed.failtype).toBe(0);
    expect(funcnames(parsed)).toEqual(['ext4_mount', 'mount_subtree']);
  });

  it('fail-alloc-page: page allocations anywhere, 10%, at most 100, one minute every ten', () => {
    const { chaos, parsed } = valid('bpfki/fail-alloc-page.yaml');
    expect(parsed).toMatchObject({ failtype: 1, callchain: [], probability: 10, times: 100 });
    expect(chaos.spec).toMatchObject({ mode: 'fixed', value: '1', duration: '60s', scheduler: { cron: '@every 10m' }, containerNames: ['app'] });
  });
});

describe('manifests copied from blog posts', () => {
  // Shapes seen in chaos-engineering write-ups: fields borrowed from other chaos kinds or invented.
  const meta = { apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'KernelChaos', metadata: { name: 'kernel-fault', namespace: 'shop' } };
  const selector = { namespaces: ['shop'], labelSelectors: { app: 'backend' } };

  function errorPaths(input: unknown): string[] {
    const verdict = validateKernelChaos(input);
    expect(verdict.valid).toBe(false);
    return verdict.valid ? [] : verdict.errors.map((e) => e.path);
  }

  it('spec.action and spec.slab (as in StressChaos/IOChaos) are named, and failKernRequest is asked for', () => {
    const manifest = { ...meta, spec: { action: 'slab', mode: 'one', selector, slab: { slabinfo: true }, duration: '30s', scheduler: { cron: '@every 2m' } } };
    const verdict = validateKernelChaos(manifest);
    expect(verdict.valid).toBe(false);
    if (verdict.valid) return;
    expect(verdict.errors.map((e) => e.path)).toEqual(['spec.action', 'spec.failKernRequest', 'spec.slab']);
    // Told which field they meant, not only that the field is unknown.
    for (const e of verdict.errors) expect(e.message).toMatch(/failtype|failKernRequest/);
  });

  it('failKernRequest.action and .errno are refused, not half-applied', () => {
    const manifest = {
      ...meta,
      spec: { mode: 'one', selector, failKernRequest: { callchain: [{ funcname: '__x64_sys_write' }], failtype: 0, probability: 100, times: 1, action: 'fail-syscall', errno: 5 } },
    };
    expect(errorPaths(manifest)).toEqual(['spec.failKernRequest.action', 'spec.failKernRequest.errno']);
  });

  it('a fault without failtype is refused at spec.failKernRequest.failtype', () => {
    const manifest = { ...meta, spec: { mode: 'one', selector, failKernRequest: { callchain: [{ funcname: 'bio_alloc' }], probability: 20, times: 10 } } };
    expect(errorPaths(manifest)).toEqual(['spec.failKernRequest.failtype']);
  });
});
