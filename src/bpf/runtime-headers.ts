// The static C every fault program includes (src/bpf/*.h, shipped with the package beside dist/):
// where it is, its content hash (part of the compile cache key), and the complete unit with the
// headers inlined (what `render` prints).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EngineError } from './types.js';

/**
 * src/bpf of the package: this module runs as src/bpf/runtime-headers.ts (tsx, tests) or
 * dist/bpf/runtime-headers.js (the CLI, the companion image); both are two levels below the root.
 */
export const RUNTIME_HEADER_DIR = resolve(import.meta.dirname, '..', '..', 'src', 'bpf');

/** Every kernelchaos header, in include order. */
export const RUNTIME_HEADERS = ['kc_maps.h', 'kc_target_v1.bpf.h', 'kc_target.bpf.h', 'kc_runtime.bpf.h'] as const;
export type RuntimeHeader = (typeof RUNTIME_HEADERS)[number];
/** The one every generated file includes (it includes the others). */
export const RUNTIME_INCLUDE: RuntimeHeader = 'kc_runtime.bpf.h';

const texts = new Map<RuntimeHeader, string>();

export function runtimeHeader(name: RuntimeHeader): string {
  const known = texts.get(name);
  if (known !== undefined) return known;
  const path = join(RUNTIME_HEADER_DIR, name);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new EngineError('compile-failed', `kernelchaos's BPF header ${path} is missing: the package must ship src/bpf/*.h beside dist/ (reinstall it, or copy them in the image)`);
  }
  texts.set(name, text);
  return text;
}

/** sha256 over every header: a changed header must not reuse objects compiled from the old one. */
let headersHash: string | undefined;
export function runtimeHeadersHash(): string {
  if (headersHash !== undefined) return headersHash;
  const h = createHash('sha256');
  for (const name of RUNTIME_HEADERS) h.update(name).update('\0').update(runtimeHeader(name)).update('\0');
  headersHash = h.digest('hex');
  return headersHash;
}

const INCLUDE = /^#include "(kc_[a-z0-9_.]+\.h)"[^\n]*$/gm;

function isRuntimeHeader(name: string): name is RuntimeHeader {
  return (RUNTIME_HEADERS as readonly string[]).includes(name);
}

/**
 * `source` with each kernelchaos header it includes pasted in place (once, as its include guard
 * would), so it compiles with only vmlinux.h and libbpf's headers on the include path.
 */
export function inlineRuntimeHeaders(source: string): string {
  const done = new Set<string>();
  const expand = (text: string): string =>
    text.replace(INCLUDE, (line, name: string) => {
      if (!isRuntimeHeader(name)) return line;
      if (done.has(name)) return `/* ${name}: already included above */`;
      done.add(name);
      return `/* ---- begin ${name} (kernelchaos src/bpf/${name}) ---- */\n${expand(runtimeHeader(name)).trimEnd()}\n/* ---- end ${name} ---- */`;
    });
  return expand(source);
}
