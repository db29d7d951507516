// Gathers what the running kernel and this machine offer for fault injection: the only I/O part of
// `kernelchaos doctor`. Everything here is an observation; judging it is `diagnose` (doctor.ts).
// Roots are parameters so tests can point them at fixture trees.
import { chooseTargetHierarchy, cgroupMountControllers, MOUNTINFO_HINT, MOUNTINFO_WHERE, type CgroupMount, type HierarchyChoice } from './cgroup-hierarchy.js';
import { access, readFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { execFile } from 'node:child_process';
import { machine } from 'node:os';
import { join } from 'node:path';
import { SITES } from './sites.js';
import { findBtfFunctions } from './kernel-facts-btf.js';
import { probeFmodRet, probeKprobeOverride, type ProbeOutcome } from './kernel-facts-probe.js';

export type { SiteName } from './sites.js';
import type { SiteName } from './sites.js';
export const SITE_NAMES: readonly SiteName[] = [SITES[0].funcname, SITES[1].funcname, SITES[2].funcname];

/** The kernel config options the diagnosis reads; values as in .config ('y', 'm', ...), absent = not set. */
export const CONFIG_KEYS = [
  'CONFIG_BPF_SYSCALL', 'CONFIG_BPF_JIT', 'CONFIG_DEBUG_INFO_BTF', 'CONFIG_CGROUP_BPF', 'CONFIG_BPF_EVENTS',
  'CONFIG_KPROBES', 'CONFIG_KPROBE_EVENTS', 'CONFIG_FUNCTION_ERROR_INJECTION', 'CONFIG_BPF_KPROBE_OVERRIDE',
  'CONFIG_FAULT_INJECTION', 'CONFIG_FAILSLAB', 'CONFIG_FAIL_PAGE_ALLOC', 'CONFIG_FAIL_MAKE_REQUEST',
  'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS', 'CONFIG_SECURITY_LOCKDOWN_LSM',
  'CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY', 'CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY',
] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];

export type KernelConfig =
  | { known: true; source: string; options: Partial<Record<ConfigKey, string>> }
  | { known: false; reason: string };

/** A site symbol in /proc/kallsyms: the plain name and any compiler clones (`.constprop.0`, `.isra.0`). */
export interface SymbolPresence { plain: boolean; clones: string[] }

export type LockdownMode = 'none' | 'integrity' | 'confidentiality';

export type ToolFact = { found: true; version: string } | { found: false; reason: string };

export interface KernelFacts {
  release: string | null;
  /** [major, minor] parsed from the release. */
  version: [number, number] | null;
  arch: string;
  config: KernelConfig;
  btf: { vmlinux: true; functions: Partial<Record<SiteName, number>> } | { vmlinux: false; reason: string };
  kallsyms: { readable: true; sites: Record<SiteName, SymbolPresence> } | { readable: false; reason: string };
  errorInjection: { readable: true; listed: Partial<Record<SiteName, string>> } | { readable: false; reason: string };
  kprobes: {
    /** perf's kprobe PMU type, present when the kernel has CONFIG_KPROBES (and KPROBE_EVENTS). */
    pmuType: number | null;
    /** null when tracefs is not mounted, so we cannot tell. */
    tracefsKprobeEvents: boolean | null;
    /** null when debugfs is not mounted. */
    debugfsKprobes: boolean | null;
  };
  mounts: { debugfs: string | null; tracefs: string | null; bpffs: string[] };
  cgroup: {
    layout: 'unified' | 'hybrid' | 'legacy' | 'none';
    v2Mount: string | null;
    controllers: string[];
    /** The hierarchy targets are named in on this machine (cgroup-hierarchy.ts), or why there is none. */
    target: HierarchyChoice;
  };
  lockdown: { mode: LockdownMode; source: 'securityfs' | 'config' } | { mode: null; reason: string };
  capabilities: { effectiveHex: string; bpf: boolean; perfmon: boolean; sysAdmin: boolean } | null;
  unprivilegedBpfDisabled: number | null;
  toolchain: { clang: ToolFact; bpftool: ToolFact; libbpf: ToolFact };
  /** Call-chain functions asked for (GatherOptions.functions): in kallsyms (null: unreadable) and their BTF id. */
  chainFunctions?: Record<string, { symbol: SymbolPresence | null; btfId: number | null }>;
  /** Live attach attempts per site; null when not run (fixture roots, or --no-probe). */
  probes: { kprobeOverride: Record<SiteName, ProbeOutcome>; fmodRet: Record<SiteName, ProbeOutcome> } | null;
}

export interface GatherOptions {
  procRoot?: string;
  sysRoot?: string;
  bootDir?: string;
  /** Attach throwaway programs to the sites. Default: only when reading the real /proc and /sys. */
  liveProbes?: boolean;
  /** Look for clang, bpftool and libbpf. Default true. */
  toolchain?: boolean;
  /** Call-chain functions to look up as well (kallsyms and BTF). */
  functions?: readonly string[];
}

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.F_OK);
    return true;
  } catch {
    return false;
  }
}

function why(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ? `${e.code}${e.path ? ` (${e.path})` : ''}` : String(err);
}

export function parseRelease(release: string | null): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export function parseConfig(text: string): Partial<Record<ConfigKey, string>> {
  const wanted = new Set<string>(CONFIG_KEYS);
  const options: Partial<Record<ConfigKey, string>> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0 || line.startsWith('#')) continue;
    const key = line.slice(0, eq);
    if (wanted.has(key)) options[key as ConfigKey] = line.slice(eq + 1).replace(/^"|"$/g, '');
  }
  return options;
}

async function gatherConfig(procRoot: string, bootDir: string, release: string | null): Promise<KernelConfig> {
  const gz = join(procRoot, 'config.gz');
  try {
    const buf = await readFile(gz);
    return { known: true, source: gz, options: parseConfig(gunzipSync(buf).toString('utf8')) };
  } catch {
    // fall through to /boot
  }
  if (release) {
    const boot = join(bootDir, `config-${release}`);
    const text = await readText(boot);
    if (text !== null) return { known: true, source: boot, options: parseConfig(text) };
  }
  return { known: false, reason: `neither ${gz} nor ${join(bootDir, `config-${release ?? '$(uname -r)'}`)} is readable` };
}

/**
 * Finds `names` in kallsyms text: the plain symbol and its compiler clones (`name.constprop.0`,
 * `name.isra.0`, `name.part.0`, ...), which callers may call instead of it. Exported for tests.
 */
export function scanSymbols(text: string, names: readonly string[]): Record<string, SymbolPresence> {
  const found: Record<string, SymbolPresence> = Object.fromEntries(names.map((n) => [n, { plain: false, clones: [] as string[] }]));
  const wanted = new Set(names);
  for (const line of text.split('\n')) {
    // "ffffffff81af6050 T should_fail_bio" (optionally "\t[module]")
    const name = line.split(/\s+/)[2];
    if (name === undefined) continue;
    const dot = name.indexOf('.');
    const base = dot < 0 ? name : name.slice(0, dot);
    if (!wanted.has(base)) continue;
    const entry = found[base] as SymbolPresence;
    // `.cold` is the unlikely tail of the same function, split off by the compiler: never called.
    if (name.endsWith('.cold') || /\.cold\.\d+$/.test(name)) continue;
    if (dot < 0) entry.plain = true;
    else if (!entry.clones.includes(name)) entry.clones.push(name);
  }
  return found;
}

/** The three injection sites in kallsyms text. Exported for tests. */
export function scanKallsyms(text: string): Record<SiteName, SymbolPresence> {
  return scanSymbols(text, SITE_NAMES) as Record<SiteName, SymbolPresence>;
}

/** Parses /sys/kernel/debug/error_injection/list ("should_failslab\tERRNO"). Exported for tests. */
export function parseErrorInjectionList(text: string): Partial<Record<SiteName, string>> {
  const listed: Partial<Record<SiteName, string>> = {};
  for (const line of text.split('\n')) {
    const [name, type] = line.trim().split(/\s+/);
    if (name && (SITE_NAMES as readonly string[]).includes(name)) listed[name as SiteName] = type ?? '';
  }
  return listed;
}

interface MountEntry { source: string; target: string; fstype: string; options: string }
function parseMounts(text: string): MountEntry[] {
  return text.split('\n').filter(Boolean).map((line) => {
    const [source = '', target = '', fstype = '', options = ''] = line.split(' ');
    // /proc/mounts escapes spaces and tabs as octal.
    return { source, target: target.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), fstype, options };
  });
}

/** Maps an absolute path under /sys to the (possibly fixture) sysRoot. */
function underSys(sysRoot: string, path: string): string {
  return path === '/sys' || path.startsWith('/sys/') ? join(sysRoot, path.slice(4)) : path;
}

export function parseLockdown(text: string): LockdownMode | null {
  const m = /\[(none|integrity|confidentiality)\]/.exec(text);
  return m ? (m[1] as LockdownMode) : null;
}

export function parseCapabilities(status: string): KernelFacts['capabilities'] {
  const m = /^CapEff:\s*([0-9a-fA-F]+)/m.exec(status);
  if (!m || m[1] === undefined) return null;
  const eff = BigInt('0x' + m[1]);
  const has = (bit: bigint): boolean => ((eff >> bit) & 1n) === 1n;
  return { effectiveHex: m[1], bpf: has(CAP_BPF), perfmon: has(CAP_PERFMON), sysAdmin: has(CAP_SYS_ADMIN) };
}

function runVersion(cmd: string, args: string[], pattern: RegExp): Promise<ToolFact> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        resolve({ found: false, reason: code === 'ENOENT' ? `${cmd} is not on PATH` : `${cmd} ${args.join(' ')} failed: ${err.message.split('\n')[0]}` });
        return;
      }
      const m = pattern.exec(stdout);
      resolve({ found: true, version: m?.[1] ?? stdout.split('\n')[0]?.trim() ?? 'unknown' });
    });
  });
}

async function libbpfFact(): Promise<ToolFact> {
  try {
    const koffi = (await import('koffi')).default;
    const lib = koffi.load('libbpf.so.1');
    const major = lib.func('uint32_t libbpf_major_version(void)') as () => number;
    const minor = lib.func('uint32_t libbpf_minor_version(void)') as () => number;
    return { found: true, version: `${major()}.${minor()}` };
  } catch (err) {
    return { found: false, reason: `cannot load libbpf.so.1: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` };
  }
}

export async function gatherToolchain(): Promise<KernelFacts['toolchain']> {
  const [clang, bpftool, libbpf] = await Promise.all([
    runVersion('clang', ['--version'], /clang version (\S+)/),
    runVersion('bpftool', ['version'], /bpftool v?(\S+)/),
    libbpfFact(),
  ]);
  return { clang, bpftool, libbpf };
}

export async function gatherKernelFacts(opts: GatherOptions = {}): Promise<KernelFacts> {
  const procRoot = opts.procRoot ?? '/proc';
  const sysRoot = opts.sysRoot ?? '/sys';
  const bootDir = opts.bootDir ?? '/boot';
  const live = opts.liveProbes ?? (opts.procRoot === undefined && opts.sysRoot === undefined);

  const release = (await readText(join(procRoot, 'sys/kernel/osrelease')))?.trim() || null;
  const mountEntries = parseMounts((await readText(join(procRoot, 'self/mounts'))) ?? '');
  const mountOf = (fstype: string): string | null => mountEntries.find((m) => m.fstype === fstype)?.target ?? null;
  const mounts = {
    debugfs: mountOf('debugfs'),
    tracefs: mountOf('tracefs'),
    bpffs: mountEntries.filter((m) => m.fstype === 'bpf').map((m) => m.target),
  };

  const config = await gatherConfig(procRoot, bootDir, release);

  const chainNames = [...new Set(opts.functions ?? [])];
  let btf: KernelFacts['btf'];
  let chainBtf = new Map<string, number>();
  const btfPath = join(sysRoot, 'kernel/btf/vmlinux');
  try {
    const found = findBtfFunctions(await readFile(btfPath), [...SITE_NAMES, ...chainNames]);
    btf = { vmlinux: true, functions: Object.fromEntries(SITE_NAMES.filter((s) => found.has(s)).map((s) => [s, found.get(s)])) as Partial<Record<SiteName, number>> };
    chainBtf = found;
  } catch (err) {
    btf = { vmlinux: false, reason: `${btfPath}: ${err instanceof Error && err.name === 'BtfFormatError' ? err.message : why(err)}` };
  }

  let kallsyms: KernelFacts['kallsyms'];
  let chainSymbols: Record<string, SymbolPresence> | null = null;
  try {
    const text = await readFile(join(procRoot, 'kallsyms'), 'utf8');
    kallsyms = { readable: true, sites: scanKallsyms(text) };
    chainSymbols = chainNames.length > 0 ? scanSymbols(text, chainNames) : {};
  } catch (err) {
    kallsyms = { readable: false, reason: why(err) };
  }
  const chainFunctions = Object.fromEntries(chainNames.map((name) => [name, {
    symbol: chainSymbols?.[name] ?? null,
    btfId: chainBtf.get(name) ?? null,
  }]));

  // The list lives in debugfs; look where debugfs is mounted (normally /sys/kernel/debug).
  let errorInjection: KernelFacts['errorInjection'];
  if (mounts.debugfs === null) {
    errorInjection = { readable: false, reason: 'debugfs is not mounted (mount -t debugfs none /sys/kernel/debug)' };
  } else {
    const listPath = join(underSys(sysRoot, mounts.debugfs), 'error_injection/list');
    try {
      errorInjection = { readable: true, listed: parseErrorInjectionList(await readFile(listPath, 'utf8')) };
    } catch (err) {
      errorInjection = { readable: false, reason: `${join(mounts.debugfs, 'error_injection/list')}: ${why(err)}` };
    }
  }

  const pmuText = await readText(join(sysRoot, 'bus/event_source/devices/kprobe/type'));
  const kprobes: KernelFacts['kprobes'] = {
    pmuType: pmuText !== null && /^\d+/.test(pmuText.trim()) ? Number.parseInt(pmuText, 10) : null,
    tracefsKprobeEvents: mounts.tracefs === null ? null : await exists(join(underSys(sysRoot, mounts.tracefs), 'kprobe_events')),
    debugfsKprobes: mounts.debugfs === null ? null : await exists(join(underSys(sysRoot, mounts.debugfs), 'kprobes')),
  };

  const cgroup2 = mountEntries.find((m) => m.fstype === 'cgroup2');
  const cgroup1 = mountEntries.filter((m) => m.fstype === 'cgroup');
  let controllers: string[] = [];
  if (cgroup2) {
    controllers = ((await readText(join(underSys(sysRoot, cgroup2.target), 'cgroup.controllers'))) ?? '').trim().split(/\s+/).filter(Boolean);
  }
  const cgroup: KernelFacts['cgroup'] = {
    layout: cgroup2 ? (cgroup1.length > 0 ? 'hybrid' : 'unified') : cgroup1.length > 0 ? 'legacy' : 'none',
    v2Mount: cgroup2?.target ?? null,
    controllers,
    target: chooseTargetHierarchy(
      mountEntries.flatMap((m): CgroupMount[] =>
        m.fstype === 'cgroup2' ? [{ fstype: 'cgroup2', path: m.target }] : m.fstype === 'cgroup' ? [{ fstype: 'cgroup', path: m.target, controllers: cgroupMountControllers(m.options) }] : [],
      ),
      MOUNTINFO_WHERE,
      MOUNTINFO_HINT,
    ),
  };

  let lockdown: KernelFacts['lockdown'];
  const lockdownText = await readText(join(sysRoot, 'kernel/security/lockdown'));
  const fromFs = lockdownText === null ? null : parseLockdown(lockdownText);
  if (fromFs !== null) lockdown = { mode: fromFs, source: 'securityfs' };
  else if (config.known && config.options.CONFIG_SECURITY_LOCKDOWN_LSM === 'y') {
    // securityfs not mounted: the forced mode in the config is the floor (lockdown can only be raised).
    const o = config.options;
    lockdown = {
      mode: o.CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY === 'y' ? 'confidentiality' : o.CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY === 'y' ? 'integrity' : 'none',
      source: 'config',
    };
  } else if (config.known) lockdown = { mode: 'none', source: 'config' };
  else lockdown = { mode: null, reason: 'securityfs is not mounted and the kernel config is unknown' };

  const capabilities = parseCapabilities((await readText(join(procRoot, 'self/status'))) ?? '');
  const unprivText = await readText(join(procRoot, 'sys/kernel/unprivileged_bpf_disabled'));
  const unprivilegedBpfDisabled = unprivText !== null && /^\d+/.test(unprivText.trim()) ? Number.parseInt(unprivText, 10) : null;

  const toolchain = opts.toolchain === false
    ? { clang: notChecked(), bpftool: notChecked(), libbpf: notChecked() }
    : await gatherToolchain();

  let probes: KernelFacts['probes'] = null;
  if (live) {
    const kprobeOverride = {} as Record<SiteName, ProbeOutcome>;
    const fmodRet = {} as Record<SiteName, ProbeOutcome>;
    for (const site of SITE_NAMES) {
      kprobeOverride[site] = await probeKprobeOverride(site, kprobes.pmuType, release);
      fmodRet[site] = await probeFmodRet(btf.vmlinux ? btf.functions[site] ?? null : null);
    }
    probes = { kprobeOverride, fmodRet };
  }

  return {
    release, version: parseRelease(release), arch: machine(), config, btf, kallsyms, errorInjection, kprobes,
    mounts, cgroup, lockdown, capabilities, unprivilegedBpfDisabled, toolchain, probes,
    ...(chainNames.length > 0 ? { chainFunctions } : {}),
  };
}

function notChecked(): ToolFact {
  return { found: false, reason: 'not checked' };
}

