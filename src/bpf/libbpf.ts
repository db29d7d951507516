// libbpf from Node.js through koffi (FFI) over the system's libbpf.so.1.
//
// Why koffi and not an N-API addon: nothing to compile at install time (the companion image and
// `npm ci` need no C toolchain for Node), the whole binding is this one file, and the dozen
// libbpf calls we make are coarse (open, load, attach, a few map updates), so FFI call overhead
// does not matter. libbpf does the hard parts: ELF parsing, CO-RE relocation, attach by section.
//
// Links are owned by this process (no pinning): when it exits or is killed, the kernel closes the
// link fds and detaches every program.
import koffi from 'koffi';
import { EngineError } from './types.js';

type Pointer = bigint;

interface LibbpfApi {
  openFile: (path: string, opts: null) => Pointer | null;
  load: (obj: Pointer) => number;
  close: (obj: Pointer) => void;
  findProgram: (obj: Pointer, name: string) => Pointer | null;
  findMap: (obj: Pointer, name: string) => Pointer | null;
  mapValueSize: (map: Pointer) => number;
  setInitialValue: (map: Pointer, data: Buffer, size: number) => number;
  attach: (prog: Pointer) => Pointer | null;
  destroyLink: (link: Pointer) => number;
  mapFd: (map: Pointer) => number;
  mapUpdate: (fd: number, key: Buffer, value: Buffer, flags: bigint) => number;
  mapLookup: (fd: number, key: Buffer, value: Buffer) => number;
  mapDelete: (fd: number, key: Buffer) => number;
  mapNextKey: (fd: number, key: Buffer | null, next: Buffer) => number;
  possibleCpus: () => number;
}

let api: LibbpfApi | undefined;
/** Messages libbpf printed during the current call (warnings and info; the verifier log is a warning). */
let sink: string[] | null = null;
const LIBBPF_DEBUG = 2;

function loadApi(): LibbpfApi {
  if (api) return api;
  let lib: ReturnType<typeof koffi.load>;
  let libc: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load('libbpf.so.1');
    libc = koffi.load('libc.so.6');
  } catch (err) {
    throw new EngineError('libbpf-missing', 'libbpf.so.1 could not be loaded (apt-get install libbpf1, or libbpf-dev)', String(err));
  }
  // libbpf hands us printf-style (format, va_list); on x86-64 a va_list argument is a pointer, so
  // vsnprintf can format it for us.
  const vsnprintf = libc.func('int vsnprintf(void *buf, size_t size, void *fmt, void *ap)');
  const printProto = koffi.proto('int kc_libbpf_print_fn(int level, void *fmt, void *ap)');
  const setPrint = lib.func('void *libbpf_set_print(kc_libbpf_print_fn *fn)');
  const buffer = Buffer.alloc(16 * 1024);
  const printer = koffi.register((level: number, fmt: Pointer, ap: Pointer): number => {
    if (sink === null || (level >= LIBBPF_DEBUG && process.env.KERNELCHAOS_LIBBPF_DEBUG !== '1')) return 0;
    const n = vsnprintf(buffer, buffer.length, fmt, ap) as number;
    sink.push(buffer.toString('utf8', 0, Math.max(0, Math.min(n, buffer.length - 1))));
    return 0;
  }, koffi.pointer(printProto));
  setPrint(printer);
  api = {
    openFile: lib.func('void *bpf_object__open_file(const char *path, void *opts)'),
    load: lib.func('int bpf_object__load(void *obj)'),
    close: lib.func('void bpf_object__close(void *obj)'),
    findProgram: lib.func('void *bpf_object__find_program_by_name(void *obj, const char *name)'),
    findMap: lib.func('void *bpf_object__find_map_by_name(void *obj, const char *name)'),
    mapValueSize: lib.func('uint32_t bpf_map__value_size(void *map)'),
    setInitialValue: lib.func('int bpf_map__set_initial_value(void *map, const void *data, size_t size)'),
    attach: lib.func('void *bpf_program__attach(void *prog)'),
    destroyLink: lib.func('int bpf_link__destroy(void *link)'),
    mapFd: lib.func('int bpf_map__fd(void *map)'),
    mapUpdate: lib.func('int bpf_map_update_elem(int fd, void *key, void *value, uint64_t flags)'),
    mapLookup: lib.func('int bpf_map_lookup_elem(int fd, void *key, void *value)'),
    mapDelete: lib.func('int bpf_map_delete_elem(int fd, void *key)'),
    mapNextKey: lib.func('int bpf_map_get_next_key(int fd, void *key, void *next_key)'),
    possibleCpus: lib.func('int libbpf_num_possible_cpus(void)'),
  } as LibbpfApi;
  return api;
}

/** Runs `fn` collecting what libbpf prints meanwhile. */
function withLog<T>(fn: () => T): { value: T; log: string[] } {
  const log: string[] = [];
  const previous = sink;
  sink = log;
  try {
    return { value: fn(), log };
  } finally {
    sink = previous;
  }
}

function errnoName(errno: number): string {
  const found = Object.entries(koffi.os.errno).find(([, v]) => v === errno);
  return found ? found[0] : `errno ${errno}`;
}

/**
 * The part of a load log a user needs: the verifier's last lines before its statistics (where it
 * says what it refused), or libbpf's own error lines when there was no verifier log.
 */
export function trimVerifierLog(lines: readonly string[], keep = 12): string {
  const text = lines.join('');
  const begin = text.lastIndexOf('-- BEGIN PROG LOAD LOG --');
  const end = text.lastIndexOf('-- END PROG LOAD LOG --');
  if (begin >= 0 && end > begin) {
    const body = text
      .slice(begin, end)
      .split('\n')
      .slice(1)
      .filter((l) => l.trim() !== '' && !/^(processed \d+ insns|verification time|stack depth|mark_precise|\s*;)/.test(l));
    return body.slice(-keep).join('\n');
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-keep)
    .join('\n');
}

/** Classifies a failed load or attach from errno and libbpf's messages. */
export function classifyFailure(stage: 'load' | 'attach', errno: number, log: string): EngineError['reason'] {
  if (/failed to find (kernel )?BTF (type ID of|for extern)|failed to resolve|No such file or directory|not found in kallsyms|failed to find valid kernel BTF/i.test(log) && !/BEGIN PROG LOAD LOG/.test(log)) {
    return 'missing-symbol';
  }
  if (/BEGIN PROG LOAD LOG/.test(log)) return 'verifier-rejected';
  if (errno === 1 /* EPERM */) return 'missing-capability';
  if (errno === 2 /* ENOENT */ || errno === 3 /* ESRCH */) return 'missing-symbol';
  if (errno === 95 /* EOPNOTSUPP */ || errno === 524 /* ENOTSUPP */ || errno === 22 /* EINVAL */) return 'unsupported-kernel';
  if (errno === 13 /* EACCES */) return stage === 'load' ? 'verifier-rejected' : 'missing-capability';
  return 'unsupported-kernel';
}

export class BpfMap {
  constructor(
    readonly name: string,
    readonly fd: number,
  ) {}

  update(key: Buffer, value: Buffer): void {
    const rc = loadApi().mapUpdate(this.fd, key, value, 0n);
    if (rc !== 0) throw new EngineError('unsupported-kernel', `updating BPF map ${this.name} failed: ${errnoName(-rc)}`);
  }

  /** The value for `key`, or null when absent. `size` is the value size (times CPUs for per-CPU maps). */
  lookup(key: Buffer, size: number): Buffer | null {
    const value = Buffer.alloc(size);
    const rc = loadApi().mapLookup(this.fd, key, value);
    if (rc === -2) return null;
    if (rc !== 0) throw new EngineError('unsupported-kernel', `reading BPF map ${this.name} failed: ${errnoName(-rc)}`);
    return value;
  }

  delete(key: Buffer): boolean {
    return loadApi().mapDelete(this.fd, key) === 0;
  }

  keys(keySize: number): Buffer[] {
    const keys: Buffer[] = [];
    let previous: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(keySize);
      if (loadApi().mapNextKey(this.fd, previous, next) !== 0) return keys;
      keys.push(next);
      previous = next;
    }
  }
}

export class BpfLink {
  private destroyed = false;
  constructor(
    readonly program: string,
    private readonly ptr: Pointer,
  ) {}

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    loadApi().destroyLink(this.ptr);
  }
}

/** A loaded BPF object. Close it to free programs and maps (links must be destroyed first). */
export class BpfObject {
  private closed = false;

  private constructor(private readonly ptr: Pointer) {}

  /**
   * Opens and loads (verifies) every program of the object at `path`. `rodata`: the bytes of one
   * read-only data section (const volatile settings), written before load; the kernel freezes them.
   */
  static load(path: string, options: { rodata?: { section: string; data: Buffer } } = {}): BpfObject {
    const lib = loadApi();
    const opened = withLog(() => lib.openFile(path, null));
    if (opened.value === null) {
      const errno = koffi.errno();
      throw new EngineError('unsupported-kernel', `libbpf could not open ${path}: ${errnoName(errno)}`, trimVerifierLog(opened.log));
    }
    const obj = new BpfObject(opened.value);
    if (options.rodata) {
      try {
        obj.setRodata(options.rodata.section, options.rodata.data);
      } catch (err) {
        obj.close();
        throw err;
      }
    }
    const loaded = withLog(() => lib.load(opened.value as Pointer));
    if (loaded.value !== 0) {
      obj.close();
      const errno = -loaded.value;
      const log = opened.log.concat(loaded.log).join('');
      const reason = classifyFailure('load', errno, log);
      const headline: Record<EngineError['reason'], string> = {
        'missing-capability':
          process.getuid?.() === 0
            ? 'the kernel refused to load BPF programs (EPERM) although this runs as root: CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN are missing (a container without them?) or the kernel is locked down'
            : 'the kernel refused to load the fault program: run as root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN are needed)',
        'missing-symbol': 'the kernel lacks a function or type the fault program needs (see detail)',
        'verifier-rejected': 'the BPF verifier rejected the fault program',
        'unsupported-kernel': `the kernel could not load the fault program (${errnoName(errno)})`,
        'compile-failed': 'compile failed',
        'invalid-request': 'the request does not fit this kernel',
        'libbpf-missing': 'libbpf is missing',
      };
      throw new EngineError(reason, headline[reason], trimVerifierLog(loaded.log));
    }
    return obj;
  }

  private setRodata(section: string, data: Buffer): void {
    const lib = loadApi();
    // libbpf names internal maps "<object>.rodata..." but finds them by their section name too.
    const map = lib.findMap(this.ptr, section);
    if (map === null) throw new EngineError('unsupported-kernel', `the fault program has no ${section} section for its settings`);
    const size = lib.mapValueSize(map);
    if (size !== data.length) {
      throw new EngineError('unsupported-kernel', `the fault program's ${section} is ${size} bytes, the loader writes ${data.length}: src/bpf/layout.ts and kc_maps.h disagree`);
    }
    const rc = lib.setInitialValue(map, data, data.length);
    if (rc !== 0) throw new EngineError('unsupported-kernel', `setting the fault program's settings failed: ${errnoName(-rc)}`);
  }

  attach(program: string): BpfLink {
    const lib = loadApi();
    const prog = lib.findProgram(this.ptr, program);
    if (prog === null) throw new EngineError('missing-symbol', `the object has no program named ${program}`);
    const attached = withLog(() => lib.attach(prog));
    if (attached.value === null) {
      const errno = koffi.errno();
      const log = attached.log.join('');
      throw new EngineError(
        classifyFailure('attach', errno, log),
        `attaching ${program} failed: ${errnoName(errno)}`,
        trimVerifierLog(attached.log),
      );
    }
    return new BpfLink(program, attached.value);
  }

  map(name: string): BpfMap {
    const lib = loadApi();
    const map = lib.findMap(this.ptr, name);
    if (map === null) throw new EngineError('missing-symbol', `the object has no map named ${name}`);
    const fd = lib.mapFd(map);
    if (fd < 0) throw new EngineError('unsupported-kernel', `map ${name} has no fd (${errnoName(-fd)})`);
    return new BpfMap(name, fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    loadApi().close(this.ptr);
  }
}

/** CPUs the kernel may bring up: per-CPU map values have one slot each. */
export function possibleCpus(): number {
  const n = loadApi().possibleCpus();
  if (n <= 0) throw new EngineError('unsupported-kernel', 'libbpf could not count the possible CPUs');
  return n;
}
