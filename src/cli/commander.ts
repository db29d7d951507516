// The one way every subcommand is built on commander: no process.exit inside commander, --help and
// --version exit 0, every usage error exits 2 with a did-you-mean, the version from package.json,
// documented exit codes in --help, and `-f, --filename` (with `-` for stdin) spelled the same
// everywhere. New options go on the Command a subcommand builds; nothing here needs to change.
import { readFileSync } from 'node:fs';
import { CommanderError, Command, InvalidArgumentError, Option } from 'commander';
import { VERSION } from '../version.js';
import { LOG_FORMATS, LOG_LEVELS } from '../log.js';
import { PROFILE_CHOICES } from '../kube/crd-profile.js';

export { VERSION };

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

export interface ExitStatus {
  code: number;
  meaning: string;
}

/** The exit status of every usage error, whichever command. */
export const USAGE_EXIT: ExitStatus = { code: 2, meaning: 'usage error (unknown option, missing argument)' };

export interface SubcommandSpec {
  /** The subcommand's name, e.g. `validate`. */
  name: string;
  description: string;
  /** Documented in --help; the usage error (2) is added when missing. */
  exitCodes: readonly ExitStatus[];
  io?: CliIo;
}

export function exitCodesHelp(codes: readonly ExitStatus[]): string {
  const all = codes.some((c) => c.code === USAGE_EXIT.code) ? codes : [...codes, USAGE_EXIT];
  const width = Math.max(...all.map((c) => String(c.code).length));
  return ['Exit status:', ...[...all].sort((a, b) => a.code - b.code).map((c) => `  ${String(c.code).padStart(width)}  ${c.meaning}`)].join('\n');
}

/** Makes commander throw instead of exiting, and write to `io` (this process's stdout/stderr by default). */
export function forCli(command: Command, io: CliIo = processIo): Command {
  return command
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
}

/** A subcommand's Command: `kernelchaos NAME`, its version, exit codes and the shared error handling. */
export function subcommand(spec: SubcommandSpec): Command {
  const command = forCli(new Command(`kernelchaos ${spec.name}`), spec.io)
    .description(spec.description)
    .version(VERSION, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .addHelpText('after', `\n${exitCodesHelp(spec.exitCodes)}\n\nkernelchaos ${VERSION}`);
  return command;
}

export interface FilenameOptions {
  /** More than one -f allowed (validate); otherwise the last one counts. */
  repeatable?: boolean;
  /** What the file is, for --help. */
  what: string;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * `-f, --filename <path>` (`-` is stdin), plus `--file` as a hidden alias so older command lines work.
 * Read the value back with `filenames()`.
 */
export function addFilenameOption(command: Command, options: FilenameOptions): Command {
  const help = `${options.what}; - reads stdin${options.repeatable ? '; repeatable' : ''}`;
  return command
    .addOption(new Option('-f, --filename <path>', help).argParser(collect))
    .addOption(new Option('--file <path>', 'same as --filename').hideHelp().argParser(collect));
}

/** Every -f/--filename/--file given, in order of their kind (filename first). */
export function filenames(command: Command): string[] {
  const o = command.opts<{ filename?: string[]; file?: string[] }>();
  return [...(o.filename ?? []), ...(o.file ?? [])];
}

/** The exit code for an error commander threw (0 after --help/--version, else 2), or null for any other error. */
export function commanderExitCode(err: unknown): number | null {
  if (!(err instanceof CommanderError)) return null;
  return err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
}

/** Parses argv (without the subcommand); null to go on, else the exit code (help shown or usage error printed). */
export function parseCli(command: Command, argv: readonly string[]): number | null {
  try {
    command.parse([...argv], { from: 'user' });
    return null;
  } catch (err) {
    const code = commanderExitCode(err);
    if (code !== null) return code;
    throw err;
  }
}

/** Reports a usage problem found after parsing the way commander reports its own (exit 2). */
export function usageError(command: Command, message: string): number {
  try {
    command.error(`error: ${message}`, { exitCode: 2, code: 'kernelchaos.usage' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
  }
  return 2;
}

/** Exactly one -f for the commands that read one manifest; the exit code when it is not. */
export function oneFilename(command: Command): string | number {
  const files = filenames(command);
  if (files.length === 0) return usageError(command, "required option '-f, --filename <path>' not specified");
  return files[files.length - 1] as string;
}

/** The text of `-` (stdin) or null for a path; for commands that read one manifest synchronously. */
export function readStdinIfDash(path: string): string | null {
  return path === '-' ? readFileSync(0, 'utf8') : null;
}

/** `--log-level` (or LOG_LEVEL) and `--log-format` (or LOG_FORMAT) for every long-running command; read with logOptions(). */
export function addLogOptions(command: Command): Command {
  return command
    // No commander .env(): an empty or unknown LOG_LEVEL is the logger's to report, not a usage error.
    .addOption(new Option('--log-level <level>', 'log level (default: $LOG_LEVEL, else info)').choices(LOG_LEVELS))
    .addOption(new Option('--log-format <format>', 'json, or text (default: $LOG_FORMAT, else text on a terminal, json otherwise)').choices(LOG_FORMATS));
}

/** `--crd-profile` for the webhook and the controller, read as `crdProfile` (a ProfileChoice). */
export function addProfileOption(command: Command): Command {
  return command.addOption(
    new Option(
      '--crd-profile <profile>',
      "install profile: auto = from the installed kernelchaos.chaos-mesh.org CRD's schema; standalone or chaos-mesh = insist (start-up fails if the CRD says otherwise)",
    )
      .choices(PROFILE_CHOICES)
      .default('auto'),
  );
}

/** Option parser for a TCP port (0 = any free port); commander reports a bad value as a usage error naming the option. */
export function portNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError(`must be a port number 0..65535, got '${value}'`);
  return n;
}

/** Option parser for a positive number of seconds, returned in milliseconds. */
export function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`must be a positive number of seconds, got '${value}'`);
  return n * 1000;
}
