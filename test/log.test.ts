// One logger setup for every component: the same base fields, JSON by default, text on request or
// on a terminal, LOG_LEVEL and --log-level honoured, and nothing printed outside the logger (the
// real CLI processes, as a Deployment or DaemonSet runs them).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, logSettings } from '../src/log.js';
import { VERSION } from '../src/version.js';

const repo = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'kc-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  lines: string[];
  code: number | null;
}

/** Runs the CLI until `until` matches the output (then SIGTERM), or it exits by itself. */
function runCli(args: string[], env: NodeJS.ProcessEnv, until?: RegExp): Promise<Run> {
  return new Promise((resolveRun) => {
    const base = { ...process.env };
    delete base.LOG_LEVEL;
    delete base.LOG_FORMAT;
    const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'test/tls/run-cli.ts'), ...args], {
      cwd: repo,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let signalled = false;
    const onData = (c: Buffer): void => {
      out += c.toString();
      if (until && !signalled && until.test(out)) {
        signalled = true;
        // Let anything else the process has to say within a moment arrive first.
        setTimeout(() => child.kill('SIGTERM'), 500);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code) => resolveRun({ lines: out.split('\n').filter((l) => l !== ''), code }));
  });
}

function json(lines: string[]): Record<string, unknown>[] {
  return lines.map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON log line (printed outside the logger?): ${l}`);
    }
  });
}

describe('logger setup', () => {
  it('picks the level from the flag, else LOG_LEVEL; the format from the flag, LOG_FORMAT, else the terminal', () => {
    expect(logSettings({ component: 'x', env: {}, isTTY: false })).toEqual({ level: 'info', format: 'json' });
    expect(logSettings({ component: 'x', env: { LOG_LEVEL: 'debug' }, isTTY: true })).toEqual({ level: 'debug', format: 'text' });
    expect(logSettings({ component: 'x', level: 'warn', env: { LOG_LEVEL: 'debug', LOG_FORMAT: 'json' }, isTTY: true })).toEqual({ level: 'warn', format: 'json' });
    expect(logSettings({ component: 'x', env: { LOG_LEVEL: 'loud' }, isTTY: false })).toMatchObject({ level: 'info', invalid: 'loud' });
  });

  it('writes the same base fields in JSON, and readable lines in text', () => {
    let out = '';
    const sink = new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) });
    createLogger({ component: 'webhook', env: {}, isTTY: false, destination: sink }).info({ port: 1 }, 'listening');
    expect(JSON.parse(out)).toMatchObject({ level: 30, component: 'webhook', version: VERSION, pid: process.pid, port: 1, msg: 'listening' });
    expect(JSON.parse(out).hostname).toEqual(expect.any(String));
    out = '';
    createLogger({ component: 'webhook', format: 'text', env: {}, isTTY: false, destination: sink }).info({ port: 1 }, 'listening');
    expect(out).toMatch(/^\[[\d:.]+\] INFO: webhook: listening\n\s+port: 1\n/);
  });

  it('webhook and companion: JSON lines only, with component, version, pid and hostname; LOG_LEVEL honoured', { timeout: 120_000 }, async () => {
    const [webhook, companion, quiet] = await Promise.all([
      runCli(['webhook', '--self-signed', '--port', '0', '--host', '127.0.0.1'], {}, /"msg":"listening"/),
      runCli(['companion', '--node', 'n1', '--manifests', dir], {}, /"msg":"companion running"/),
      // At warn, the webhook's info lines (listening, shutting down) are left out, its warning is not.
      runCli(['webhook', '--self-signed', '--port', '0', '--host', '127.0.0.1'], { LOG_LEVEL: 'warn' }, /using an empty store/),
    ]);
    // The webhook stops cleanly on SIGTERM (the idle companion's own lifetime is not this test's subject).
    expect(webhook.code).toBe(0);
    for (const [name, run] of [['webhook', webhook], ['companion', companion]] as const) {
      const lines = json(run.lines);
      expect(lines.length, name).toBeGreaterThan(1);
      for (const l of lines) expect(l, name).toMatchObject({ component: name, version: VERSION, pid: expect.any(Number), hostname: expect.any(String), time: expect.any(String) });
    }
    const levels = json(quiet.lines).map((l) => l.level as number);
    expect(levels.length).toBeGreaterThan(0);
    expect(levels.every((l) => l >= 40)).toBe(true);
  });

  it('an error after the logger exists is a log line, not plain text in the stream; --log-format text is readable', { timeout: 120_000 }, async () => {
    const [bad, text] = await Promise.all([
      runCli(['webhook', '--self-signed', '--manifests', join(dir, 'nope')], {}),
      runCli(['webhook', '--self-signed', '--port', '0', '--host', '127.0.0.1', '--log-format', 'text'], {}, /INFO: webhook: listening/),
    ]);
    expect(bad.code).toBe(2);
    const lines = json(bad.lines);
    expect(lines.at(-1)).toMatchObject({ level: 50, component: 'webhook' });
    expect(String(lines.at(-1)?.msg)).toContain(`--manifests: manifest directory ${join(dir, 'nope')} cannot be read`);
    expect(text.code).toBe(0);
    expect(text.lines.some((l) => /^\[[\d:.]+\] INFO: webhook: listening$/.test(l))).toBe(true);
    expect(text.lines.some((l) => l.startsWith('{'))).toBe(false);
  });
});
