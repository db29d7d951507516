// Golden outputs of `kernelchaos validate` in each format, over the inputs in test/golden/validate/inputs
// (paths relative to the repository, as a user in its root would type them). UPDATE_GOLDEN=1 rewrites
// the expected files; review the diff before committing.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runValidate } from '../../src/cli/validate.js';

const repo = resolve(import.meta.dirname, '../..');
const goldenDir = join(repo, 'test/golden/validate');
const inputs = 'test/golden/validate/inputs';
const NOW = ['--now', '2025-01-06T10:00:00Z'];

interface Golden {
  name: string;
  args: string[];
  code: number;
  tty?: boolean;
  env?: NodeJS.ProcessEnv;
}

const CASES: Golden[] = [
  { name: 'text.txt', args: ['-f', inputs], code: 1 },
  { name: 'quiet.txt', args: ['-f', inputs, '--quiet'], code: 1 },
  { name: 'no-warnings.txt', args: ['-f', `${inputs}/experiments.yaml`, '--no-warnings'], code: 1 },
  { name: 'json.json', args: ['-f', inputs, '-o', 'json'], code: 1 },
  { name: 'yaml.yaml', args: ['-f', inputs, '-o', 'yaml'], code: 1 },
  { name: 'junit.xml', args: ['-f', inputs, '-o', 'junit', '--strict'], code: 1 },
  { name: 'color.txt', args: ['-f', `${inputs}/shop.yaml`], code: 1, tty: true, env: {} },
];

async function run(c: Golden): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runValidate([...c.args, ...NOW], {
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    isTTY: c.tty ?? false,
    env: c.env ?? {},
  });
  return { code, out, err };
}

function golden(name: string, actual: string): string {
  const path = join(goldenDir, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) writeFileSync(path, actual);
  return readFileSync(path, 'utf8');
}

describe('kernelchaos validate output (golden)', () => {
  for (const c of CASES) {
    it(`${c.args.filter((a) => !a.startsWith(inputs)).join(' ')} -> ${c.name}`, async () => {
      const r = await run(c);
      expect(r.code).toBe(c.code);
      // -o yaml puts the problems on stderr so stdout stays a clean stream for kubectl apply -f -.
      const actual = c.name === 'yaml.yaml' ? `${r.out}# stderr:\n${r.err.trimEnd().replace(/^/gm, '# ')}\n` : r.out;
      expect(actual).toBe(golden(c.name, actual));
    });
  }

  it('colours only on a terminal and never with NO_COLOR', async () => {
    const shop = ['-f', `${inputs}/shop.yaml`];
    expect((await run({ name: '', args: shop, code: 1, tty: true, env: {} })).out).toContain('\u001b[');
    expect((await run({ name: '', args: shop, code: 1, tty: true, env: { NO_COLOR: '1' } })).out).not.toContain('\u001b[');
    expect((await run({ name: '', args: shop, code: 1, tty: false, env: {} })).out).not.toContain('\u001b[');
  });

  it('--strict fails on warnings alone; --no-warnings drops them', async () => {
    const warned = ['-f', `${inputs}/experiments.yaml`];
    const onlyWarned = (await run({ name: '', args: [...warned, '--quiet'], code: 1 })).out;
    expect(onlyWarned).not.toContain('warning');
    const text = 'apiVersion: chaos-mesh.org/v1alpha1\nkind: KernelChaos\nmetadata: {name: w, namespace: a}\nspec:\n  mode: all\n  selector: {namespaces: [a]}\n  failKernRequest: {failtype: 0, callchain: [{funcname: ext4_fill_super}]}\n';
    const io = (out: { s: string }) => ({ stdout: (x: string) => (out.s += x), stderr: () => {}, stdin: (async function* () { yield text; })() });
    const a = { s: '' };
    expect(await runValidate(['-f', '-'], io(a))).toBe(0);
    expect(a.s).toContain('warning: every matching call fails');
    expect(await runValidate(['-f', '-', '--strict'], io({ s: '' }))).toBe(1);
    const c = { s: '' };
    expect(await runValidate(['-f', '-', '--strict', '--no-warnings'], io(c))).toBe(0);
    expect(c.s).toBe('1 valid, 0 invalid\n');
    expect(await runValidate(['-f', '-', '--quiet'], io({ s: '' }))).toBe(0);
  });
});
