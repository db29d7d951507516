// `kernelchaos run` around the fault, without a kernel: the live line on a terminal, and a Ctrl-C
// that arrives while the fault is still being armed. The engine is a gated double (the VM tests
// run the real one); the command is a real process.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ArmedDetails } from '../../src/bpf/engine.js';
import type { ArmedFault } from '../../src/bpf/types.js';
import { main, type RunDeps } from '../../src/cli/run.js';
import { LiveLine, liveText } from '../../src/cli/run-live.js';
import { SEED_YAML } from '../fixtures/seed.js';
import { waitFor } from '../fakes/wait.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kc-run-live-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

class Term {
  text = '';
  constructor(readonly isTTY: boolean, readonly columns = 200) {}
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

function fakeFault(): ArmedFault & { details: ArmedDetails; disarmed: boolean; calls: bigint; faults: bigint } {
  const f = {
    id: 'fake',
    mode: 'trampoline' as const,
    mechanism: 'fmod_ret on should_failslab',
    disarmed: false,
    calls: 0n,
    faults: 0n,
    counters() {
      return { calls: f.calls, faults: f.faults };
    },
    setTargetCgroups() {},
    disarm() {
      f.disarmed = true;
    },
    details: {
      program: { site: { funcname: 'should_failslab', failtype: 0, effect: 'slab allocation fails (ENOMEM)' }, hooks: [{}, {}] },
      objectPath: '/nonexistent',
      cached: true,
      modeReason: 'test double',
      armMs: 1,
    } as unknown as ArmedDetails,
  };
  return f;
}

function deps(term: Term, arm: RunDeps['engine']['arm']): { deps: Partial<RunDeps>; removed: string[] } {
  const removed: string[] = [];
  const cgroup = join(dir, 'cg');
  // The wrapper writes its pid to cgroup.procs: a plain directory stands in for the cgroup.
  mkdirSync(cgroup, { recursive: true });
  return {
    removed,
    deps: {
      stderr: term,
      engine: { arm },
      createCgroup: () => ({ path: cgroup, id: 1n, hierarchy: { kind: 'v2', root: '/sys/fs/cgroup' } }),
      removeCgroup: (p) => {
        removed.push(p);
        return true;
      },
    },
  };
}

describe('live line', () => {
  it('formats calls, faults and the time left', () => {
    expect(liveText({ calls: 120n, faults: 7n }, 83_400, 'should_failslab')).toBe('kernelchaos run: armed: 120 calls of should_failslab, 7 faults injected, 1m24s left');
    expect(liveText({ calls: 0n, faults: 0n }, null, 'should_fail_bio')).toMatch(/until the command exits$/);
  });

  it('redraws in place on a terminal, erases itself when stopped, and stays silent in a pipe', () => {
    const tty = new Term(true);
    let faults = 1n;
    const line = new LiveLine(tty, () => ({ counters: { calls: 10n, faults }, leftMs: 5000 }), 'should_failslab');
    line.start();
    faults = 4n;
    line.draw();
    line.stop();
    expect(tty.text).toBe(
      '\rkernelchaos run: armed: 10 calls of should_failslab, 1 faults injected, 5s left\x1b[K' +
        '\rkernelchaos run: armed: 10 calls of should_failslab, 4 faults injected, 5s left\x1b[K' +
        '\r\x1b[K',
    );
    const pipe = new Term(false);
    const quiet = new LiveLine(pipe, () => ({ counters: { calls: 1n, faults: 1n }, leftMs: null }), 'x');
    quiet.start();
    quiet.stop();
    expect(pipe.text).toBe('');
  });
});

describe('kernelchaos run', () => {
  it('shows the live line while the command runs on a terminal, then the summary on a clean line', async () => {
    writeFileSync(join(dir, 'seed.yaml'), SEED_YAML);
    const term = new Term(true);
    const fault = fakeFault();
    const d = deps(term, () => Promise.resolve(fault));
    fault.calls = 12n;
    fault.faults = 3n;
    const status = await main(['-f', join(dir, 'seed.yaml'), '--', 'sleep', '1.2'], d.deps);
    expect(status).toBe(0);
    expect(term.text).toContain('\rkernelchaos run: armed: 12 calls of should_failslab, 3 faults injected, until the command exits\x1b[K');
    // Erased before the summary, which starts at the line's beginning.
    expect(term.text).toContain('\r\x1b[Kkernelchaos run: 12 calls of should_failslab');
    expect(fault.disarmed).toBe(true);
  });

  it('a SIGINT while arming says what was interrupted, starts nothing and leaves nothing attached', async () => {
    writeFileSync(join(dir, 'seed.yaml'), SEED_YAML);
    const term = new Term(false);
    const fault = fakeFault();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let arming = false;
    const d = deps(term, async () => {
      arming = true;
      await gate;
      return fault;
    });
    const marker = join(dir, 'started');
    const running = main(['-f', join(dir, 'seed.yaml'), '--', 'touch', marker], d.deps);
    await waitFor('arming started', () => arming);
    process.emit('SIGINT');
    // The kernel step in progress finishes (here: the attach completes after the signal).
    release();
    expect(await running).toBe(130);
    expect(term.text).toContain('kernelchaos run: SIGINT received while arming the fault');
    expect(term.text).toMatch(/interrupted by SIGINT while arming chaos-testing\/kernel-chaos-example \(after \d+m?s\): the fault had just been attached and is now removed; the command was not started/);
    expect(fault.disarmed).toBe(true);
    expect(d.removed).toEqual([join(dir, 'cg')]);
    expect(existsSync(marker)).toBe(false);
  });
});
