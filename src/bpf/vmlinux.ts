// vmlinux.h for the running kernel, made from its BTF with bpftool and cached by the BTF's hash,
// so no kernel headers are needed and a kernel upgrade gets a fresh header.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EngineError } from './types.js';

const execFileAsync = promisify(execFile);

export const KERNEL_BTF = '/sys/kernel/btf/vmlinux';

export interface VmlinuxHeader {
  /** Directory holding `vmlinux.h` (pass to clang with -I). */
  includeDir: string;
  /** sha256 of the BTF blob the header was made from. */
  btfHash: string;
  /** ___GFP_NOFAIL as this kernel's BTF defines it (enum ___GFP_NOFAIL_BIT, 6.10+), or null when it is a macro. */
  gfpNofail: number | null;
}

export function hashFile(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Reads ___GFP_NOFAIL_BIT from a vmlinux.h, if the kernel exposes it as an enum. */
export function gfpNofailFromHeader(header: string): number | null {
  const m = /\b___GFP_NOFAIL_BIT = (\d+),/.exec(header);
  if (!m?.[1]) return null;
  const bit = Number(m[1]);
  return bit >= 0 && bit < 32 ? 2 ** bit : null;
}

/** Makes (or finds in `cacheDir`) the vmlinux.h for the BTF at `btfPath`. */
const memo = new Map<string, Promise<VmlinuxHeader>>();

export function ensureVmlinuxHeader(cacheDir: string, btfPath: string = KERNEL_BTF): Promise<VmlinuxHeader> {
  const key = `${cacheDir}\0${btfPath}`;
  let found = memo.get(key);
  if (!found) {
    // The BTF of a running kernel never changes: hash and dump it once per process.
    found = makeHeader(cacheDir, btfPath);
    found.catch(() => memo.delete(key));
    memo.set(key, found);
  }
  return found;
}

async function makeHeader(cacheDir: string, btfPath: string): Promise<VmlinuxHeader> {
  if (!existsSync(btfPath)) {
    throw new EngineError(
      'unsupported-kernel',
      `${btfPath} does not exist: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y is needed to compile fault programs)`,
    );
  }
  const btfHash = hashFile(btfPath);
  const includeDir = join(cacheDir, 'vmlinux', btfHash.slice(0, 32));
  const header = join(includeDir, 'vmlinux.h');
  const facts = join(includeDir, 'facts.json');
  if (existsSync(facts)) {
    // The header is big; what we need from it is kept beside it.
    const saved = JSON.parse(readFileSync(facts, 'utf8')) as { gfpNofail: number | null };
    return { includeDir, btfHash, gfpNofail: saved.gfpNofail };
  }
  if (!existsSync(header)) {
    mkdirSync(includeDir, { recursive: true });
    let text: string;
    try {
      const { stdout } = await execFileAsync('bpftool', ['btf', 'dump', 'file', btfPath, 'format', 'c'], {
        maxBuffer: 256 * 1024 * 1024,
      });
      text = stdout;
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') {
        throw new EngineError('compile-failed', 'bpftool is not installed (apt-get install bpftool): it makes vmlinux.h from the kernel BTF');
      }
      throw new EngineError('compile-failed', `bpftool could not dump ${btfPath}`, e.stderr ?? e.message);
    }
    // Write then rename: concurrent runs never see half a header.
    const tmp = `${header}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, header);
  }
  const gfpNofail = gfpNofailFromHeader(readFileSync(header, 'utf8'));
  writeFileSync(`${facts}.${process.pid}.tmp`, JSON.stringify({ gfpNofail }));
  renameSync(`${facts}.${process.pid}.tmp`, facts);
  return { includeDir, btfHash, gfpNofail };
}
