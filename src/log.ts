// The one logger setup of every component (webhook, controller, companion, informers): the same base
// fields (component, version, pid, hostname), JSON lines on stderr by default, human-readable lines
// (pino-pretty) on a terminal or with --log-format text; the level from --log-level or LOG_LEVEL.
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import type { PrettyOptions } from 'pino-pretty';
import { VERSION } from './version.js';

type PrettyFactory = (options: PrettyOptions) => NodeJS.WritableStream;

/** pino-pretty is loaded only for text logs: commands that never log do not pay for it. */
function prettyStream(options: PrettyOptions): NodeJS.WritableStream {
  const load = createRequire(import.meta.url)('pino-pretty') as PrettyFactory | { default: PrettyFactory };
  return (typeof load === 'function' ? load : load.default)(options);
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerSetup {
  component: string;
  /** Default: LOG_LEVEL, else info. An unknown level falls back to info (with a warning line). */
  level?: string;
  /** Default: LOG_FORMAT, else text on a terminal, json otherwise. */
  format?: LogFormat;
  env?: NodeJS.ProcessEnv;
  /** Whether the destination is a terminal; default: stderr's. */
  isTTY?: boolean;
  /**
   * Which standard stream (default stderr, so a command's output on stdout stays clean; the servers
   * keep logging to stdout as they always have: kubectl logs shows both).
   */
  stream?: 'stdout' | 'stderr';
  /** Instead of a standard stream (tests). */
  destination?: NodeJS.WritableStream;
}

function isLevel(value: string | undefined): value is LogLevel {
  return value !== undefined && (LOG_LEVELS as readonly string[]).includes(value);
}

function isFormat(value: string | undefined): value is LogFormat {
  return value !== undefined && (LOG_FORMATS as readonly string[]).includes(value);
}

/** The effective level and format. Pure. */
export function logSettings(setup: LoggerSetup): { level: LogLevel; format: LogFormat; invalid?: string } {
  const env = setup.env ?? process.env;
  const wanted = setup.level ?? env.LOG_LEVEL;
  const level = isLevel(wanted) ? wanted : 'info';
  const envFormat = env.LOG_FORMAT;
  const tty = setup.isTTY ?? (setup.stream === 'stdout' ? process.stdout : process.stderr).isTTY === true;
  const format = setup.format ?? (isFormat(envFormat) ? envFormat : tty ? 'text' : 'json');
  return { level, format, ...(wanted !== undefined && wanted !== '' && !isLevel(wanted) ? { invalid: wanted } : {}) };
}

export function createLogger(setup: LoggerSetup): Logger {
  const { level, format, invalid } = logSettings(setup);
  const env = setup.env ?? process.env;
  const options = {
    level,
    base: { component: setup.component, version: VERSION, pid: process.pid, hostname: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const fd = setup.stream === 'stdout' ? 1 : 2;
  const destination = setup.destination ?? pino.destination({ fd, sync: true });
  const logger =
    format === 'text'
      ? pino(
          options,
          prettyStream({
            destination: destination as PrettyOptions['destination'],
            sync: true,
            colorize: (setup.isTTY ?? (fd === 1 ? process.stdout : process.stderr).isTTY === true) && !env.NO_COLOR,
            ignore: 'pid,hostname,version,component',
            translateTime: 'SYS:HH:MM:ss.l',
            messageFormat: '{component}: {msg}',
            hideObject: false,
          }),
        )
      : pino(options, destination);
  if (invalid !== undefined) logger.warn({ given: invalid }, `unknown log level '${invalid}': using info (${LOG_LEVELS.join(', ')})`);
  return logger;
}
