// The companion as a real process runs until SIGTERM, idle or armed, and then exits 0 by itself
// (the loop drains: nothing is left attached or listening). Two processes: the real CLI (its BPF
// engine cannot arm on this host, which has no kprobes, so it stays idle), and runCompanion with
// the recording engine of the lifecycle tests to go through arm, disarm and re-arm (the VM test
// does that with the real engine and real containers).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED_YAML } from '../fixtures/seed.js';
import { podManifest } from './fakes.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const UID = '0f0e0d0c-0b0a-4909-8807-060504030201';
const APP = 'ab'.repeat(32);

const POD = podManifest('web', {
  namespace: 'chaos-mount', uid: UID,
  node: 'node-1',
  qosClass: 'BestEffort',
  experiments: ['chaos-testing/kernel-chaos-example'],
  containers: [{ name: 'app', id: APP }],
});

// runCompanion with the recording engine; prints one line per lifecycle change. It installs no
// timer of its own: if the companion held nothing alive, this process would exit by itself.
const FAKE_LAUNCH = `
const { runCompanion } = await import(${JSON.stringify(join(ROOT, 'src/companion/run.ts'))});
const { validateKernelChaos } = await import(${JSON.stringify(join(ROOT, 'src/api/validate.ts'))});
const { silentLog } = await import(${JSON.stringify(join(ROOT, 'src/kube/log.ts'))});
const { FakeEngine } = await import(${JSON.stringify(join(ROOT, 'test/companion/fakes.ts'))});
const [dir, cgroupRoot] = process.argv.slice(1);
const engine = new FakeEngine();
const running = await runCompanion(
  { node: 'node-1', source: { kind: 'manifests', dir, pollIntervalMs: 100 }, cgroupRoot, procRoot: '/nonexistent' },
  { engine, validate: validateKernelChaos, log: silentLog },
);
running.companion.on('change', (c) => console.log('CHANGE ' + c.kind + ' live=' + engine.live().length));
console.log('READY');
process.once('SIGTERM', () => void running.stop('SIGTERM').then(() => console.log('STOPPED live=' + engine.live().length)));
`;

const CLI_LAUNCH = `const { main } = await import(${JSON.stringify(join(ROOT, 'src/cli/main.ts'))}); process.exitCode = await main(process.argv.slice(1));`;

interface Proc {
  child: ChildProcessWithoutNullStreams;
  out: () => string;
  exited: Promise<number | null>;
  /** Resolves once `pattern` has occurred `count` times in stdout+stderr; rejects if the process exits first. */
  waitFor(pattern: RegExp, count?: number): Promise<void>;
}

function launch(code: string, args: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, '--', ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (code) => {
      exitCode = code;
      r(code);
      for (const w of [...waiters]) w();
    }),
  );
  return {
    child,
    out: () => out,
    exited,
    waitFor: (pattern, count = 1) =>
      new Promise<void>((res, rej) => {
        const check = (): void => {
          const n = out.match(new RegExp(pattern.source, 'g'))?.length ?? 0;
          if (n >= count) {
            waiters.splice(waiters.indexOf(check), 1);
            res();
          } else if (exitCode !== undefined) {
            waiters.splice(waiters.indexOf(check), 1);
            rej(new Error(`process exited ${exitCode} before ${pattern} x${count}:\n${out}`));
          }
        };
        waiters.push(check);
        check();
      }),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const alive = (p: Proc): boolean => p.child.exitCode === null && p.child.signalCode === null;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kc-keepalive-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cgroupTree(name: string): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'kubepods', 'besteffort', `pod${UID}`, APP), { recursive: true });
  writeFileSync(join(root, 'cgroup.controllers'), 'cpu memory pids\n');
  return root;
}

describe('kernelchaos companion stays up until SIGTERM', () => {
  it('the CLI with --manifests and no gRPC: idle for 10 s, through a refused arm, then exits 0 on SIGTERM', async () => {
    const manifests = join(dir, 'cli-manifests');
    mkdirSync(manifests);
    const p = launch(CLI_LAUNCH, ['companion', '--node', 'node-1', '--manifests', manifests, '--cgroup-root', cgroupTree('cli-cgroup'), '--proc-root', join(dir, 'proc')]);
    await p.waitFor(/companion running/);
    await sleep(10_000);
    expect(alive(p), p.out()).toBe(true);
    // A targeted pod and an experiment: this host's kernel refuses BPF tracing, so arming fails;
    // the companion reports it and stays up for the retry.
    writeFileSync(join(manifests, 'pod.yaml'), POD);
    writeFileSync(join(manifests, 'seed.yaml'), SEED_YAML);
    await p.waitFor(/arming failed|fault armed/);
    unlinkSync(join(manifests, 'seed.yaml'));
    await sleep(2000);
    expect(alive(p), p.out()).toBe(true);
    p.child.kill('SIGTERM');
    expect(await p.exited, p.out()).toBe(0);
    expect(p.out()).toContain('all faults detached: companion received SIGTERM');
  }, 60_000);

  it('runCompanion: idle, armed, disarmed, idle again, re-armed, and exits by itself after stop', async () => {
    const manifests = join(dir, 'fake-manifests');
    mkdirSync(manifests);
    writeFileSync(join(manifests, 'pod.yaml'), POD);
    const p = launch(FAKE_LAUNCH, [manifests, cgroupTree('fake-cgroup')]);
    await p.waitFor(/READY/);
    await sleep(3000);
    expect(alive(p), p.out()).toBe(true);
    writeFileSync(join(manifests, 'seed.yaml'), SEED_YAML);
    await p.waitFor(/CHANGE armed live=1/);
    unlinkSync(join(manifests, 'seed.yaml'));
    await p.waitFor(/CHANGE disarmed live=0/);
    // Nothing armed any more: the process must still be there to see the experiment come back.
    await sleep(3000);
    expect(alive(p), p.out()).toBe(true);
    writeFileSync(join(manifests, 'seed.yaml'), SEED_YAML);
    await p.waitFor(/CHANGE armed live=1/, 2);
    p.child.kill('SIGTERM');
    // No process.exit anywhere: the process ends because stop released everything it held.
    expect(await p.exited, p.out()).toBe(0);
    expect(p.out()).toMatch(/CHANGE disarmed live=0[\s\S]*CHANGE disarmed live=0[\s\S]*STOPPED live=0/);
  }, 60_000);
});
