// The logging surface the kube modules need; a pino Logger satisfies it.
import { createLogger } from '../log.js';

export interface Log {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** The components' logger (src/log.ts) for a module given none: same fields, format and LOG_LEVEL. */
export function defaultLog(name: string): Log {
  return createLogger({ component: name });
}

export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
