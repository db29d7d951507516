import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { parseManifestText, readManifestSources, type ManifestDocument } from '../../src/api/manifests.js';

const objects = (docs: ManifestDocument[]): unknown[] => docs.map((d) => (d.ok ? d.object : `error@${d.line}: ${d.message}`));

describe('parseManifestText', () => {
  it('splits multi-document YAML with lines and skips empty documents', () => {
    const docs = parseManifestText('---\nkind: A\n---\n# only a comment\n---\n\n---\nkind: B\nitems: 1\n', 'm.yaml');
    expect(docs).toHaveLength(2);
    expect(docs).toMatchObject([
      { ok: true, source: 'm.yaml', index: 0, line: 2, object: { kind: 'A' } },
      { ok: true, source: 'm.yaml', index: 1, line: 8, object: { kind: 'B', items: 1 } },
    ]);
    expect(parseManifestText('', 'm.yaml')).toEqual([]);
    expect(parseManifestText('# nothing\n', 'm.yaml')).toEqual([]);
  });
  it('reports a YAML syntax error with its line and keeps the other documents', () => {
    const docs = parseManifestText('kind: A\n---\nkind: B\nspec: [\n  a\n---\nkind: C\n', 'm.yaml');
    expect(docs[0]).toMatchObject({ ok: true, object: { kind: 'A' } });
    expect(docs[1]).toMatchObject({ ok: false, error: 'parse', index: 1 });
    expect(docs[1]?.line).toBeGreaterThanOrEqual(4);
    expect(docs[2]).toMatchObject({ ok: true, object: { kind: 'C' } });
  });
  it('rejects duplicate keys (which kubectl also refuses)', () => {
    expect(parseManifestText('a: 1\na: 2\n', 'm.yaml')[0]).toMatchObject({ ok: false, line: 2, message: 'invalid YAML: Map keys must be unique' });
  });
  it('parses JSON, and reports JSON errors with their line', () => {
    expect(objects(parseManifestText('{"kind": "KernelChaos"}', 'm.json'))).toEqual([{ kind: 'KernelChaos' }]);
    expect(parseManifestText('{\n"kind": 1,\n,}', 'm.json')[0]).toMatchObject({ ok: false, error: 'parse', line: 3 });
    expect(parseManifestText('{\n"kind":\n}', 'm.json')[0]).toMatchObject({ ok: false, message: "invalid JSON: Unexpected token '}'" });
    // A .yaml file in flow style is still YAML.
    expect(objects(parseManifestText('{kind: A}', 'm.yaml'))).toEqual([{ kind: 'A' }]);
  });
  it('accepts a byte-order mark and CRLF line ends', () => {
    expect(objects(parseManifestText('\ufeff{"kind": "A"}', 'bom.json'))).toEqual([{ kind: 'A' }]);
    expect(objects(parseManifestText('\ufeffkind: A\r\nspec:\r\n  x: 1\r\n', 'crlf.yaml'))).toEqual([{ kind: 'A', spec: { x: 1 } }]);
  });
  it('locates field paths to lines, falling back to the nearest written parent', () => {
    const text = ['kind: KernelChaos', 'spec:', '  selector:', '    "app.kubernetes.io/x": 1', '  failKernRequest:', '    callchain:', '      - funcname: a', '      - funcname: b', '        predicate: x'].join('\n');
    const [doc] = parseManifestText(text, 'l.yaml');
    if (!doc?.ok || !doc.locate) throw new Error('expected a located document');
    expect(doc.locate('kind')).toBe(1);
    expect(doc.locate('spec.failKernRequest.callchain[1].predicate')).toBe(9);
    expect(doc.locate('spec.failKernRequest.callchain[1]')).toBe(8);
    expect(doc.locate('spec.failKernRequest.callchain[0].funcname')).toBe(7);
    expect(doc.locate('spec.selector["app.kubernetes.io/x"]')).toBe(4);
    expect(doc.locate('spec.failKernRequest.failtype')).toBe(5); // missing: its parent's line
    expect(doc.locate('')).toBe(1);
  });
  it('expands kind: List (kubectl get -o yaml)', () => {
    const docs = parseManifestText('apiVersion: v1\nkind: List\nitems:\n- kind: A\n- kind: B\n---\nkind: C\n', 'l.yaml');
    expect(docs.map((d) => [d.index, d.ok && d.object])).toEqual([
      [0, { kind: 'A' }],
      [1, { kind: 'B' }],
      [2, { kind: 'C' }],
    ]);
  });
  it('refuses hostile YAML without crashing: alias bombs, deep nesting, binary garbage', () => {
    const bomb = ['a: &a [x,x,x,x,x,x,x,x,x,x]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]', `d: [${Array(200).fill('*c').join(',')}]`].join('\n');
    expect(parseManifestText(bomb, 'b.yaml')[0]).toMatchObject({ ok: false, error: 'parse' });
    expect(parseManifestText('['.repeat(200_000), 'd.yaml')[0]).toMatchObject({ ok: false, message: 'nests more than 100 levels of [ ] or { }' });
    expect(parseManifestText(`a:\n  ${'- '.repeat(20_000)}x`, 'd.yaml')[0]).toMatchObject({ ok: false, message: 'nests more than 50 sequences on one line' });
    const indented = Array.from({ length: 2000 }, (_, i) => `${' '.repeat(i)}k:`).join('\n');
    expect(parseManifestText(indented, 'd.yaml')[0]).toMatchObject({ ok: false, message: 'line is indented more than 256 columns' });
    expect(parseManifestText('[1]'.repeat(50) + '{'.repeat(50), 'ok.json')[0]?.ok).toBe(false);
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)).toString('latin1');
    expect(() => parseManifestText(garbage, 'g.yaml')).not.toThrow();
  });
});

describe('readManifestSources', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kc-manifests-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'tree', 'nested', 'deeper'), { recursive: true });
  writeFileSync(join(dir, 'tree', 'b.yaml'), 'kind: B\n');
  writeFileSync(join(dir, 'tree', 'a.yml'), 'kind: A1\n---\nkind: A2\n');
  writeFileSync(join(dir, 'tree', 'nested', 'c.json'), '{"kind": "C"}');
  writeFileSync(join(dir, 'tree', 'nested', 'deeper', 'd.YAML'), 'kind: D\n');
  writeFileSync(join(dir, 'tree', 'notes.txt'), 'kind: ignored\n');
  symlinkSync(join(dir, 'tree'), join(dir, 'tree', 'nested', 'loop'));
  mkdirSync(join(dir, 'empty'));

  it('reads files and directories recursively in sorted order, ignoring other extensions and symlinked directories', async () => {
    const docs = await readManifestSources([join(dir, 'tree')]);
    expect(docs.map((d) => [d.source.slice(dir.length + 1), d.index, d.ok && (d.object as { kind: string }).kind])).toEqual([
      ['tree/a.yml', 0, 'A1'],
      ['tree/a.yml', 1, 'A2'],
      ['tree/b.yaml', 0, 'B'],
      ['tree/nested/c.json', 0, 'C'],
      ['tree/nested/deeper/d.YAML', 0, 'D'],
    ]);
  });
  it('reads stdin for -, once', async () => {
    const stdin = Readable.from([Buffer.from('kind: S1\n---\n'), 'kind: S2\n']);
    const docs = await readManifestSources(['-', join(dir, 'tree', 'b.yaml'), '-'], { stdin });
    expect(objects(docs)).toEqual([{ kind: 'S1' }, { kind: 'S2' }, { kind: 'B' }, 'error@0: stdin can be read only once']);
  });
  it('reports unreadable sources as read errors', async () => {
    const docs = await readManifestSources([join(dir, 'missing.yaml'), join(dir, 'empty')]);
    expect(docs).toMatchObject([
      { ok: false, error: 'read', message: expect.stringContaining('ENOENT') },
      { ok: false, error: 'read', message: 'no .yaml, .yml or .json files in this directory' },
    ]);
  });
});
