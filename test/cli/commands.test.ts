// The command tree: every subcommand's --help (usage, exit codes, the package version), help
// <command>, did-you-mean, -f/--filename with stdin and the old --file, and shell completion that
// bash really executes.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, SUBCOMMANDS } from '../../src/cli/main.js';

const repo = resolve(import.meta.dirname, '../..');
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
const example = join(repo, 'examples/cluster/kernel-chaos-example.yaml');

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
  process.stdout.write = ((c: string | Uint8Array) => (out.push(String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => (err.push(String(c)), true)) as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

/** The CLI as a process, from source (stdin matters for `-f -`). */
function cli(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'test/tls/run-cli.ts'), ...args], { cwd: repo, input: input ?? '', encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('kernelchaos command tree', () => {
  for (const name of Object.keys(SUBCOMMANDS)) {
    it(`${name} --help: usage, options, exit codes and version`, async () => {
      const r = await capture([name, '--help']);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`Usage: kernelchaos ${name}`);
      expect(r.out).toMatch(/Exit status:\n\s+0 /);
      expect(r.out).toMatch(/\n\s+2\s+usage/);
      expect(r.out).toContain(`kernelchaos ${version}`);
      expect(r.out).toContain('-V, --version');
      // help <command> prints the same.
      expect((await capture(['help', name])).out).toBe(r.out);
    });
  }

  it('documents -f, --filename with stdin on every command that reads a manifest, and run exit status 125', async () => {
    for (const name of ['validate', 'render', 'run', 'doctor']) {
      expect((await capture([name, '--help'])).out, name).toMatch(/-f, --filename <path>\s+.*- reads stdin/s);
    }
    expect((await capture(['run', '--help'])).out).toMatch(/125\s+run itself failed before the command started/);
  });

  it('suggests the command meant, and exits 2', async () => {
    const r = await capture(['validte']);
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown command 'validte'");
    expect(r.err).toContain('Did you mean validate?');
    expect((await capture(['help', 'rendr'])).err).toContain('Did you mean render?');
    const option = await capture(['validate', '--filenme', example]);
    expect(option.code).toBe(2);
    expect(option.err).toContain('Did you mean --filename?');
  });

  it('prints the version from package.json, and the command list with no command (exit 2)', async () => {
    expect((await capture(['--version'])).out.trim()).toBe(version);
    expect((await capture(['render', '--version'])).out.trim()).toBe(version);
    const root = await capture(['--help']);
    expect(root.code).toBe(0);
    expect(root.out).toContain(version);
    for (const name of Object.keys(SUBCOMMANDS)) expect(root.out).toContain(name);
    const none = await capture([]);
    expect(none.code).toBe(2);
    expect(none.err).toContain('Usage: kernelchaos <command>');
  });

  it('render reads -f - from stdin, and still takes --file', { timeout: 60_000 }, async () => {
    const text = readFileSync(example, 'utf8');
    const stdin = cli(['render', '-f', '-', '--hooks'], text);
    expect(stdin.stderr).not.toContain('ENOENT');
    expect(stdin.status).toBe(0);
    expect(stdin.stdout).toContain('fmod_ret/should_failslab');
    const old = cli(['render', '--file', example, '--hooks']);
    expect(old.status).toBe(0);
    expect(old.stdout).toBe(stdin.stdout);
    const missing = await capture(['render', '--hooks']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("required option '-f, --filename <path>' not specified");
  });

  it('completion bash: a script bash runs, completing commands, options and their values', async () => {
    const r = await capture(['completion', 'bash']);
    expect(r.code).toBe(0);
    const complete = (words: string[]): string[] => {
      const script = `${r.out}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _kernelchaos; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return execFileSync('bash', ['-c', script], { encoding: 'utf8' }).split('\n').filter((l) => l !== '');
    };
    expect(complete(['kernelchaos', 'val'])).toEqual(['validate']);
    expect(complete(['kernelchaos', 'validate', '--out'])).toEqual(['--output']);
    expect(complete(['kernelchaos', 'validate', '-o', ''])).toEqual(['text', 'json', 'yaml', 'junit']);
    expect(complete(['kernelchaos', 'certs', ''])).toEqual(expect.arrayContaining(['ca', 'serve']));
    expect(complete(['kernelchaos', 'help', 'ren'])).toEqual(['render']);
    expect((await capture(['completion', 'fish'])).code).toBe(2);
  });

  it('completion zsh: a compdef script naming every command', async () => {
    const r = await capture(['completion', 'zsh']);
    expect(r.code).toBe(0);
    expect(r.out.startsWith('#compdef kernelchaos')).toBe(true);
    for (const name of Object.keys(SUBCOMMANDS)) expect(r.out).toContain(`'${name}:`);
    expect(r.out).toContain("'--output[--output]:value:(text json yaml junit)'");
    const zsh = spawnSync('zsh', ['-n'], { input: r.out });
    // Syntax-checked wherever zsh is installed.
    if (zsh.error === undefined) expect(zsh.status).toBe(0);
  });
});
