// The logging surface the kube modules need; a pino Logger satisfies it.
import { pino } from 'pino';

export interface Log {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Structured JSON logs on stderr (stdout stays free for command output). */
export function defaultLog(name: string): Log {
  return pino({ name, level: process.env.LOG_LEVEL ?? 'info' }, pino.destination(2));
}

export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
