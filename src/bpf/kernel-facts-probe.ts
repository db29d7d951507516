// Live probes: ask the running kernel whether it really lets us hook an injection site, by loading
// the smallest possible program and attaching it, then closing everything again. Config files and
// sysfs only say what was built; these say what this kernel, with its lockdown, LSMs and
// capabilities, actually allows. Hand-rolled bpf(2)/perf_event_open(2) calls (through koffi)
// instead of libbpf because each probe is two instructions with no ELF object, map or BTF of its own.
//
// Both probes are inert: the kprobe event is opened disabled, and the fmod_ret program returns 0,
// which tells the trampoline to run the original function unchanged.
import { getSystemErrorMap } from 'node:util';

export type ProbeOutcome =
  | { status: 'attached' }
  | { status: 'refused'; step: 'load' | 'open' | 'attach'; errno: string; message: string; verifierLog?: string }
  | { status: 'not-run'; reason: string };

interface SyscallNumbers { bpf: number; perfEventOpen: number }
const SYSCALLS: Partial<Record<string, SyscallNumbers>> = {
  x64: { bpf: 321, perfEventOpen: 298 },
  arm64: { bpf: 280, perfEventOpen: 241 },
};

// uapi/linux/bpf.h and perf_event.h constants.
const BPF_PROG_LOAD = 5;
const BPF_RAW_TRACEPOINT_OPEN = 17;
const BPF_PROG_TYPE_KPROBE = 2;
const BPF_PROG_TYPE_TRACING = 26;
const BPF_MODIFY_RETURN = 26;
const BPF_FUNC_override_return = 58;
const PERF_EVENT_IOC_SET_BPF = 0x40042408;
const PERF_FLAG_FD_CLOEXEC = 8;
const PROG_LOAD_ATTR_BYTES = 144;
const PERF_ATTR_BYTES = 128;

interface Libc {
  syscall: (...args: unknown[]) => number | bigint;
  ioctl: (...args: unknown[]) => number;
  close: (fd: number) => number;
  errno: () => number;
  address: (buf: Buffer) => bigint;
}

let libcCache: Libc | string | undefined;
async function libc(): Promise<Libc | string> {
  if (libcCache !== undefined) return libcCache;
  try {
    const koffi = (await import('koffi')).default;
    const lib = koffi.load('libc.so.6');
    libcCache = {
      syscall: lib.func('long syscall(long nr, ...)') as Libc['syscall'],
      ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)') as Libc['ioctl'],
      close: lib.func('int close(int fd)') as Libc['close'],
      errno: () => koffi.errno(),
      address: (buf) => koffi.address(buf),
    };
  } catch (err) {
    libcCache = `cannot call into libc through koffi: ${err instanceof Error ? err.message : String(err)}`;
  }
  return libcCache;
}

function errnoName(errno: number): { errno: string; message: string } {
  const entry = getSystemErrorMap().get(-errno);
  return entry ? { errno: entry[0], message: entry[1] } : { errno: `errno ${errno}`, message: 'unknown error' };
}

function insn(code: number, dst: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(code, 0);
  b.writeUInt8(dst & 0x0f, 1);
  b.writeInt32LE(imm, 4);
  return b;
}
const MOV64_IMM = 0xb7;
const CALL = 0x85;
const EXIT = 0x95;

interface Loaded { fd: number; failure?: undefined }
interface LoadFailed { fd?: undefined; failure: ProbeOutcome }

function loadProgram(c: Libc, nr: SyscallNumbers, fill: (attr: Buffer) => void, insns: Buffer[]): Loaded | LoadFailed {
  const code = Buffer.concat(insns);
  const license = Buffer.from('GPL\0');
  const log = Buffer.alloc(8192);
  const attr = Buffer.alloc(PROG_LOAD_ATTR_BYTES);
  attr.writeUInt32LE(insns.length, 4);
  attr.writeBigUInt64LE(c.address(code), 8);
  attr.writeBigUInt64LE(c.address(license), 16);
  attr.writeUInt32LE(1, 24); // log_level
  attr.writeUInt32LE(log.length, 28);
  attr.writeBigUInt64LE(c.address(log), 32);
  fill(attr);
  const fd = Number(c.syscall(nr.bpf, 'int', BPF_PROG_LOAD, 'void *', attr, 'uint', PROG_LOAD_ATTR_BYTES));
  if (fd >= 0) return { fd };
  const e = errnoName(c.errno());
  const text = log.toString('utf8').replace(/\0[\s\S]*$/, '').trim();
  // The last lines of a verifier log carry the reason; the rest is the instruction trace.
  const verifierLog = text.split('\n').slice(-3).join('\n');
  return { failure: { status: 'refused', step: 'load', ...e, ...(verifierLog ? { verifierLog } : {}) } };
}

function versionCode(release: string | null): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release ?? '');
  if (!m) return 0;
  return (Number(m[1]) << 16) + (Number(m[2]) << 8) + Math.min(Number(m[3] ?? 0), 255);
}

/**
 * Loads a kprobe program calling bpf_override_return and attaches it to a disabled kprobe on
 * `site`: the kernel checks CONFIG_BPF_KPROBE_OVERRIDE at load and the error-injection list at attach.
 */
export async function probeKprobeOverride(site: string, kprobePmuType: number | null, release: string | null): Promise<ProbeOutcome> {
  if (kprobePmuType === null) return { status: 'not-run', reason: 'no kprobe PMU in /sys/bus/event_source/devices (kernel without CONFIG_KPROBES or CONFIG_KPROBE_EVENTS)' };
  const nr = SYSCALLS[process.arch];
  if (!nr) return { status: 'not-run', reason: `no syscall table for ${process.arch}` };
  const c = await libc();
  if (typeof c === 'string') return { status: 'not-run', reason: c };
  const prog = loadProgram(c, nr, (attr) => {
    attr.writeUInt32LE(BPF_PROG_TYPE_KPROBE, 0);
    attr.writeUInt32LE(versionCode(release), 40); // kern_version, checked by kernels before 5.0
  }, [insn(MOV64_IMM, 2, 0), insn(CALL, 0, BPF_FUNC_override_return), insn(MOV64_IMM, 0, 0), insn(EXIT, 0, 0)]);
  if (prog.failure) return prog.failure;
  const name = Buffer.from(site + '\0');
  const pattr = Buffer.alloc(PERF_ATTR_BYTES);
  pattr.writeUInt32LE(kprobePmuType, 0);
  pattr.writeUInt32LE(PERF_ATTR_BYTES, 4);
  pattr.writeBigUInt64LE(1n, 40); // flags: disabled, so the probe never fires
  pattr.writeBigUInt64LE(c.address(name), 56); // kprobe_func
  try {
    const pfd = Number(c.syscall(nr.perfEventOpen, 'void *', pattr, 'int', -1, 'int', 0, 'int', -1, 'ulong', PERF_FLAG_FD_CLOEXEC));
    if (pfd < 0) return { status: 'refused', step: 'open', ...errnoName(c.errno()) };
    try {
      if (c.ioctl(pfd, PERF_EVENT_IOC_SET_BPF, 'int', prog.fd) < 0) return { status: 'refused', step: 'attach', ...errnoName(c.errno()) };
      return { status: 'attached' };
    } finally {
      c.close(pfd);
    }
  } finally {
    c.close(prog.fd);
  }
}

/** Loads an fmod_ret program for the BTF function `btfId` and attaches it through a BPF trampoline. */
export async function probeFmodRet(btfId: number | null): Promise<ProbeOutcome> {
  if (btfId === null) return { status: 'not-run', reason: 'the function is not in the kernel BTF' };
  const nr = SYSCALLS[process.arch];
  if (!nr) return { status: 'not-run', reason: `no syscall table for ${process.arch}` };
  const c = await libc();
  if (typeof c === 'string') return { status: 'not-run', reason: c };
  const prog = loadProgram(c, nr, (attr) => {
    attr.writeUInt32LE(BPF_PROG_TYPE_TRACING, 0);
    attr.writeUInt32LE(BPF_MODIFY_RETURN, 68); // expected_attach_type
    attr.writeUInt32LE(btfId, 108); // attach_btf_id (vmlinux)
  }, [insn(MOV64_IMM, 0, 0), insn(EXIT, 0, 0)]);
  if (prog.failure) return prog.failure;
  try {
    const attr = Buffer.alloc(16);
    attr.writeUInt32LE(prog.fd, 8);
    const link = Number(c.syscall(nr.bpf, 'int', BPF_RAW_TRACEPOINT_OPEN, 'void *', attr, 'uint', attr.length));
    if (link < 0) return { status: 'refused', step: 'attach', ...errnoName(c.errno()) };
    c.close(link);
    return { status: 'attached' };
  } finally {
    c.close(prog.fd);
  }
}
