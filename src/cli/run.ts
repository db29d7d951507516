// `kernelchaos run -f SPEC [--attach-mode M] [--] CMD...`: one command under one KernelChaos on this
// host, no cluster. The fault is armed for a fresh cgroup before the command starts (a tiny shell
// wrapper joins the cgroup, then execs the command, so every process of CMD is a target from its
// first instruction); it is disarmed when `duration` ends, the command exits, or run is
// interrupted. If run is SIGKILLed the kernel drops the programs with its file descriptors, and a
// watchdog kills the command's cgroup (every process of CMD) and removes it.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { Option, type Command } from 'commander';
import { addFilenameOption, oneFilename, parseCli, processIo, readStdinIfDash, subcommand, type CliIo } from './commander.js';
import { BpfFaultEngine, type ArmedDetails } from '../bpf/engine.js';
import { createRunCgroup, removeCgroup, type RunCgroup } from '../bpf/cgroup.js';
import { GenerateError } from '../bpf/generate.js';
import { loadSpecFile, SpecFileError, type LocalSpec } from '../bpf/spec-file.js';
import { EngineError, type ArmedFault, type ArmOptions, type AttachMode } from '../bpf/types.js';
import type { ParsedFailKernRequest } from '../api/predicate/ast.js';
import { LiveLine, type LiveTerminal } from './run-live.js';

const PREFIX = 'kernelchaos run:';
/** Exit status when run itself fails before the command could start (as timeout(1) and env(1)). */
const RUN_FAILED = 125;

/**
 * Outlives run: its stdin is a pipe only run holds, so EOF means run is gone (even SIGKILLed, even
 * a zombie nobody reaps); then it kills every process in cgroup $1 (cgroup.kill, or one by one on
 * kernels before 5.14) and removes the cgroup.
 */
const WATCHDOG = [
  'cat > /dev/null',
  '[ -d "$1" ] || exit 0',
  'echo 1 > "$1/cgroup.kill" 2>/dev/null || for p in $(cat "$1/cgroup.procs"); do kill -9 "$p"; done',
  'i=0; while [ -n "$(cat "$1/cgroup.procs")" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done',
  'find "$1" -depth -type d -exec rmdir {} \\; 2>/dev/null',
].join('\n');

/** sh joins the cgroup given as $1 and execs the rest: no process of CMD ever runs outside it. */
const WRAPPER = 'echo $$ > "$1/cgroup.procs" || exit 125; shift; exec "$@"';

let err: LiveTerminal = process.stderr;

function say(line: string): void {
  err.write(`${PREFIX} ${line}\n`);
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)}s` : `${Math.round(ms)}ms`;
}

interface Parsed {
  file: string;
  attachMode: AttachMode;
  cacheDir?: string;
  syscallEntry: boolean;
  live: boolean;
  command: string[];
}

/** What run needs from the machine; tests replace parts of it. */
export interface RunDeps {
  engine: { arm(request: ParsedFailKernRequest, cgroups: readonly bigint[], options?: ArmOptions): Promise<ArmedFault & { details: ArmedDetails }> };
  createCgroup: () => RunCgroup;
  removeCgroup: (path: string) => boolean;
  stderr: LiveTerminal;
}

export const EXIT_CODES = [
  { code: 0, meaning: "the command's own exit status (any code it returns is passed through; 128+N when killed by signal N)" },
  { code: 2, meaning: 'usage error, or the manifest is unreadable or invalid (nothing was run)' },
  { code: RUN_FAILED, meaning: 'run itself failed before the command started: no cgroup, the fault could not be armed, or the command could not be started' },
];

export function command(io: CliIo = processIo): Command {
  return addFilenameOption(
    subcommand({ name: 'run', description: 'Run one command under a KernelChaos fault on this host (no cluster needed).', exitCodes: EXIT_CODES, io }),
    { what: 'the KernelChaos manifest (YAML or JSON)' },
  )
    .addOption(new Option('--attach-mode <mode>', 'trampolines (fentry/fmod_ret), kprobes, or choose per kernel').choices(['auto', 'trampoline', 'kprobe']).default('auto'))
    .option('--no-syscall-entry', 'on a kernel without should_failslab/should_fail_alloc_page (>= 6.11 without CONFIG_FAILSLAB/CONFIG_FAIL_PAGE_ALLOC), refuse instead of failing the chain\'s outermost frame (a syscall) with ENOMEM at entry')
    .option('--cache-dir <dir>', 'where compiled programs are cached (default $KERNELCHAOS_CACHE, /var/cache/kernelchaos or ~/.cache/kernelchaos)')
    .option('--no-live', 'no live status line on a terminal (calls, faults, time left)')
    .argument('<command...>', 'the command to run (put it after --)')
    .passThroughOptions();
}

function parseArgs(argv: string[]): Parsed | number {
  const cmd = command();
  const parsed = parseCli(cmd, argv);
  if (parsed !== null) return parsed;
  const file = oneFilename(cmd);
  if (typeof file === 'number') return file;
  const opts = cmd.opts<{ attachMode: AttachMode; cacheDir?: string; syscallEntry: boolean; live: boolean }>();
  return { ...opts, file, command: cmd.args };
}

function describeError(err: unknown): string {
  if (err instanceof EngineError) return `${err.message}${err.detail ? `\n${err.detail}` : ''}`;
  if (err instanceof GenerateError || err instanceof SpecFileError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

export async function main(argv: string[], deps: Partial<RunDeps> = {}): Promise<number> {
  err = deps.stderr ?? process.stderr;
  const args = parseArgs(argv);
  if (typeof args === 'number') return args;

  let spec: LocalSpec;
  try {
    spec = loadSpecFile(args.file, readStdinIfDash(args.file) ?? undefined);
  } catch (err) {
    if (err instanceof SpecFileError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  // Warnings about cluster-only fields or the experiment's lifetime do not apply here: locally the
  // fault lasts as long as the command (or spec.duration).
  const local = spec.warnings.filter(
    (w) => !w.includes('until the experiment is deleted') && !spec.clusterOnly.some((k) => w.startsWith(`spec.${k} `)),
  );
  for (const w of local) say(`warning: ${w}`);
  if (spec.clusterOnly.length > 0) {
    say(`${spec.clusterOnly.map((k) => `spec.${k}`).join(', ')} ${spec.clusterOnly.length === 1 ? 'does' : 'do'} not apply locally: the fault targets this command and its children only.`);
  }

  const remove = deps.removeCgroup ?? removeCgroup;
  let cgroup: RunCgroup;
  try {
    cgroup = (deps.createCgroup ?? createRunCgroup)();
  } catch (e) {
    say(describeError(e));
    return RUN_FAILED;
  }

  // Not in the cgroup and in its own session: killing run (or its process group) leaves it to clean up.
  const watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'kernelchaos-run-watchdog', cgroup.path], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  watchdog.on('error', () => say('could not start the watchdog: if run is killed, remove the command\'s processes and its cgroup by hand'));
  watchdog.unref();
  (watchdog.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null)?.unref?.();
  const stopWatchdog = (): void => {
    watchdog.kill('SIGKILL');
  };


  // Compiling takes seconds: a Ctrl-C meanwhile must say what it stopped, and leave nothing behind.
  const armStarted = performance.now();
  let interrupted: NodeJS.Signals | null = null;
  const onEarlySignal = (signal: NodeJS.Signals): void => {
    if (interrupted === null) say(`${signal} received while arming the fault (generate, compile, load, attach); stopping once the kernel step in progress returns`);
    interrupted = signal;
  };
  const early = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, () => onEarlySignal(s)] as const);
  for (const [s, fn] of early) process.on(s, fn);
  let armed: (ArmedFault & { details: ArmedDetails }) | undefined;
  let armError: unknown;
  try {
    armed = await (deps.engine ?? new BpfFaultEngine()).arm(spec.request, [cgroup.id], {
      attachMode: args.attachMode,
      syscallEntry: args.syscallEntry,
      ...(args.cacheDir ? { cacheDir: args.cacheDir } : {}),
      hierarchy: cgroup.hierarchy,
    });
  } catch (e) {
    armError = e;
  } finally {
    for (const [s, fn] of early) process.off(s, fn);
  }
  if (interrupted !== null) {
    const signal: NodeJS.Signals = interrupted;
    armed?.disarm();
    stopWatchdog();
    remove(cgroup.path);
    say(
      `interrupted by ${signal} while arming ${spec.name} (after ${formatMs(performance.now() - armStarted)}): ` +
        `${armed ? 'the fault had just been attached and is now removed' : 'nothing was attached'}; the command was not started`,
    );
    return 128 + constants.signals[signal];
  }
  if (!armed) {
    stopWatchdog();
    remove(cgroup.path);
    say(`could not arm the fault: ${describeError(armError)}`);
    return RUN_FAILED;
  }
  const fault = armed;
  if (fault.details.program.site.form === 'syscall-entry' || cgroup.hierarchy.kind !== 'v2') say(`mechanism: ${fault.mechanism}`);
  say(`armed ${spec.name} in ${fault.mode} mode (${fault.details.modeReason}) for cgroup ${cgroup.path} in ${formatMs(fault.details.armMs)}${fault.details.cached ? ' (cached object)' : ''}`);

  const armedAt = performance.now();
  const live = new LiveLine(
    args.live ? err : { write: () => true },
    () => ({ counters: fault.counters(), leftMs: spec.durationMs === null ? null : spec.durationMs - (performance.now() - armedAt) }),
    fault.details.program.site.funcname,
  );
  let disarmedBy: string | null = null;
  const disarm = (why: string): void => {
    if (disarmedBy !== null) return;
    disarmedBy = why;
    fault.disarm();
    live.stop();
  };
  const timer = spec.durationMs !== null ? setTimeout(() => disarm(`duration ${formatMs(spec.durationMs ?? 0)} ended`), spec.durationMs) : null;

  const [file, ...rest] = args.command;
  const child = spawn('/bin/sh', ['-c', WRAPPER, 'kernelchaos-run', cgroup.path, file ?? 'true', ...rest], { stdio: 'inherit' });
  const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const onSignal = (signal: NodeJS.Signals): void => {
    disarm(`${signal} received`);
    live.stop();
    child.kill(signal);
  };
  for (const s of forwarded) process.on(s, onSignal);
  live.start();

  const status = await new Promise<number>((resolve) => {
    child.on('error', (e) => {
      say(`could not start the command: ${e.message}`);
      resolve(RUN_FAILED);
    });
    child.on('close', (code, signal) => {
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });

  if (timer) clearTimeout(timer);
  for (const s of forwarded) process.off(s, onSignal);
  disarm('the command exited');
  stopWatchdog();
  const counters = fault.counters();
  const removed = remove(cgroup.path);
  const site = fault.details.program.site;
  say(
    `${counters.calls} calls of ${site.funcname} ${fault.details.program.hooks.length > 1 ? 'with the chain complete' : 'seen'}, ${counters.faults} faults injected (failtype ${site.failtype}: ${site.effect}; ${fault.mode} mode); ` +
      `disarmed: ${disarmedBy ?? 'the command exited'}; exit status ${status}`,
  );
  if (!removed) say(`could not remove ${cgroup.path}; remove it with rmdir once its processes end`);
  return status;
}
