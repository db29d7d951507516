// The one way subcommands hand commander's parse outcome back to main(): no process.exit inside
// commander, --help/--version exit 0, every usage error exits 2.
import { CommanderError, type Command } from 'commander';

/** Makes commander throw instead of exiting, and write to this process's stdout/stderr. */
export function forCli(command: Command): Command {
  return command
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });
}

/** The exit code for an error commander threw (0 after --help/--version, else 2), or null for any other error. */
export function commanderExitCode(err: unknown): number | null {
  if (!(err instanceof CommanderError)) return null;
  return err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
}
