// `kernelchaos validate` end to end through its entry point (the same main() that bin/ runs),
// with real files in a temporary directory.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runValidate } from '../../src/cli/validate.js';
import { main as cliMain } from '../../src/cli/main.js';
import { seed, withSpec } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kc-validate-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function run(argv: string[], stdinText?: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runValidate(argv, {
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    ...(stdinText !== undefined ? { stdin: Readable.from([stdinText]) } : {}),
  });
  return { code, out, err };
}

const good = file('good.yaml', stringify(seed()));
const bad = file(
  'bad.yaml',
  [
    stringify(withSpec({ failKernRequest: { probability: 101 } })),
    stringify({ ...withSpec({ failKernRequst: {} }), metadata: { name: 'typo' } }),
  ].join('---\n'),
);
const mixed = file(
  'mixed.yaml',
  [
    stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'chaos-mount' } }),
    stringify(seed()),
    stringify({ apiVersion: 'kernelchaos.dev/v1alpha1', kind: 'KernelChaosPolicy', metadata: { name: 'p', namespace: 'x' }, spec: { maxProbability: 50 } }),
  ].join('---\n'),
);

describe('kernelchaos validate', () => {
  it('checks Schedules and Workflows of KernelChaos; never exits 0 on one it did not check', async () => {
    const fixtures = (name: string): string => join(import.meta.dirname, '..', 'fixtures', 'chaos-mesh', name);
    const ok = await run(['-f', fixtures('composed-schedule-kernelchaos.yaml'), '-f', fixtures('composed-workflow-kernelchaos.yaml')]);
    expect(ok.code).toBe(0);
    expect(ok.out.trim().split('\n').at(-1)).toBe('2 valid, 0 invalid');
    const bad = await run(['-f', fixtures('composed-schedule-kernelchaos-bad.yaml')]);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('Schedule/chaos-mesh/bad-schedule: spec.kernelChaos.failKernRequest.probability: must be 0..100');
    const pod = await run(['-f', fixtures('cm-examples-schedule-podchaos.yaml')]);
    expect(pod.code).toBe(1);
    expect(pod.out).toContain("Schedule/default/schedule-pod-kill-example: not checked: spec.podChaos: PodChaos is Chaos Mesh's to validate");
    expect(pod.out.trim().split('\n').at(-1)).toBe('0 valid, 0 invalid, 1 not checked (Chaos Mesh kinds only its webhook validates)');
  });

  it('exits 0 for valid manifests and prints a summary with warnings', async () => {
    const r = await run(['-f', good]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      `${good}:11:3: KernelChaos/chaos-testing/kernel-chaos-example: warning: every matching call fails until the experiment is deleted: set spec.failKernRequest.times or spec.duration\n` +
        '1 valid, 0 invalid, 1 warning\n',
    );
    expect(r.err).toBe('');
  });

  it('exits 1 and prints FILE:LINE:COL: KIND/NAMESPACE/NAME: FIELD: message for each problem', async () => {
    const r = await run(['-f', bad]);
    expect(r.code).toBe(1);
    const lines = r.out.trim().split('\n');
    const badLines = stringify(withSpec({ failKernRequest: { probability: 101 } })).split('\n');
    const probLine = badLines.findIndex((l) => l.includes('probability:')) + 1;
    const probCol = (badLines[probLine - 1] ?? '').indexOf('probability') + 1;
    expect(lines).toContain(
      `${bad}:${probLine}:${probCol}: KernelChaos/chaos-testing/kernel-chaos-example: spec.failKernRequest.probability: must be 0..100 (a percent; omitted or 0 = every call), got 101`,
    );
    // No namespace in the manifest: the one it would land in (-n, else default).
    expect(lines.some((l) => l.endsWith(': KernelChaos/default/typo: spec.failKernRequst: unknown field: did you mean failKernRequest?'))).toBe(true);
    expect(lines.at(-1)).toBe('0 valid, 2 invalid, 1 warning');
  });

  it('validates KernelChaosPolicy too and skips other kinds', async () => {
    const r = await run(['-f', mixed]);
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').at(-1)).toBe('2 valid, 0 invalid, 1 skipped (other kinds), 1 warning');
  });

  it('prints JSON for machines', async () => {
    const r = await run(['-f', good, '-f', bad, '-f', mixed, '--output', 'json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out) as {
      valid: boolean;
      summary: Record<string, number>;
      documents: { source: string; status: string; kind: string; errors?: { path: string; line?: number }[]; reason?: string }[];
    };
    expect(report.valid).toBe(false);
    expect(report.summary).toEqual({ valid: 3, invalid: 2, denied: 0, unchecked: 0, skipped: 1, readErrors: 0, warnings: 3 });
    expect(report.documents.map((d) => d.status)).toEqual(['valid', 'invalid', 'invalid', 'skipped', 'valid', 'valid']);
    expect(report.documents[3]).toMatchObject({ kind: 'Namespace', reason: 'kind Namespace is not validated by kernelchaos' });
    expect(report.documents[1]?.errors?.map((e) => e.path)).toEqual(['spec.failKernRequest.probability']);
    // Errors carry the line of the field in the file (bad.yaml's first document: probability on line 15).
    const badLines = stringify(withSpec({ failKernRequest: { probability: 101 } })).split('\n');
    expect(report.documents[1]?.errors?.[0]).toMatchObject({ line: badLines.findIndex((l) => l.includes('probability:')) + 1 });
  });

  it('reads stdin with -f -', async () => {
    const r = await run(['-f', '-'], JSON.stringify(withSpec({ mode: 'fixed' })));
    expect(r.code).toBe(1);
    expect(r.out).toContain('-:1:1: KernelChaos/chaos-testing/kernel-chaos-example: spec.value: is required with mode fixed');
  });

  it('reports unparseable YAML as invalid with its line', async () => {
    const broken = file('broken.yaml', 'kind: KernelChaos\nspec: [\n');
    const r = await run(['-f', broken]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:1: invalid YAML: `));
  });

  it('validates kind typos rather than skipping them', async () => {
    const r = await run(['-f', '-'], stringify({ ...seed(), kind: 'KernelChoas' }));
    expect(r.code).toBe(1);
    expect(r.out).toContain('KernelChoas/chaos-testing/kernel-chaos-example: kind: must be KernelChaos, got "KernelChoas"');
  });

  it('exits 2 on read errors, still reporting the rest', async () => {
    const r = await run(['-f', join(dir, 'nope.yaml'), '-f', good]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${join(dir, 'nope.yaml')}: cannot read: ENOENT`);
    expect(r.out).toContain('1 valid, 0 invalid, 1 unreadable, 1 warning');
  });

  it('exits 2 on usage errors and 0 for --help', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run([])).err).toContain('no manifests given');
    expect((await run(['-f', good, '--output', 'xml'])).code).toBe(2);
    expect((await run(['--bogus'])).code).toBe(2);
    const positional = await run([good]);
    expect(positional.code).toBe(2);
    expect(positional.err).toContain(`pass manifests with -f (e.g. -f ${good})`);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('FILE:LINE:COL: KIND/NAMESPACE/NAME: FIELD: message');
  });

  it('is reachable through the kernelchaos entry point', async () => {
    const write = process.stdout.write.bind(process.stdout);
    let captured = '';
    process.stdout.write = ((chunk: string | Uint8Array) => {
      captured += String(chunk);
      return true;
    }) as typeof process.stdout.write;
    try {
      expect(await cliMain(['validate', '-f', good])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(captured).toContain('1 valid, 0 invalid');
  });
});
