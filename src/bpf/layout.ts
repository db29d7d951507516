// What the TypeScript side knows about the fault programs' maps: their names, the byte layouts of
// the values it reads and writes, and the limits they are sized by. The C side is kc_maps.h (and
// the map definitions in kc_target.bpf.h / kc_runtime.bpf.h); test/bpf/layout.test.ts parses those
// headers and checks every number here against them. Little-endian, as every target kernelchaos builds for.

/** Map names in the object; the loader and `doctor`/bench find them by these names. */
export const MAP_NAMES = {
  /** HASH u64 cgroup id -> u8: the target cgroups (their descendants are targets too). */
  targets: 'kc_targets',
  /** LRU_HASH u64 cgroup id -> struct kc_verdict: cached "is this cgroup under a target". */
  verdicts: 'kc_verdicts',
  /** ARRAY[1] struct kc_config: generation (bumped on every target change) and target count. */
  config: 'kc_config',
  /** PERCPU_ARRAY[1] struct kc_counters: calls seen, faults injected (sum over CPUs). */
  counters: 'kc_counters',
  /** ARRAY[1] struct kc_claims: faults claimed against `times`. */
  claims: 'kc_claims',
  /** HASH u64 pid_tgid -> struct kc_thread: call-chain state (only with a non-empty chain). */
  threads: 'kc_threads',
  /** ARRAY[1] struct kc_chain: how many target threads have the whole chain active (only with a non-empty chain). */
  chain: 'kc_chain',
} as const;

/** The limits of kc_maps.h (KC_MAX_*). */
export const LIMITS = {
  /** KC_MAX_TARGETS: target cgroups one armed fault holds. */
  targets: 1024,
  /** KC_MAX_VERDICTS: cached per-cgroup verdicts. */
  verdicts: 8192,
  /** KC_MAX_FRAMES: frames in a call chain. */
  frames: 16,
  /**
   * KC_MAX_THREADS: target threads with chain state at once. State exists only while a target
   * thread is inside a frame that made the chain advance, and is freed on the frame's exit, by
   * healing, or when the thread exits; when the map is full a new thread is not tracked.
   */
  threads: 16384,
  /** KC_MAX_CGROUP_LEVELS: cgroup v2 nesting levels walked for an uncached verdict. */
  cgroupLevels: 32,
} as const;

/** Byte offsets and sizes of the structs of kc_maps.h that user space reads or writes. */
export const MAP_LAYOUT = {
  /** struct kc_config { __u32 generation; __u32 target_count; } */
  config: { size: 8, generation: 0, targetCount: 4 },
  /** struct kc_verdict { __u32 generation; __u32 targeted; } */
  verdict: { size: 8, generation: 0, targeted: 4 },
  /** struct kc_counters { __u64 calls; __u64 faults; } */
  counters: { size: 16, calls: 0, faults: 8 },
  /** struct kc_claims { __u64 claimed; } */
  claims: { size: 8, claimed: 0 },
  /** struct kc_thread { __u32 active; __u32 pad; __u64 sp[KC_MAX_FRAMES]; } */
  thread: { size: 8 + 8 * LIMITS.frames, active: 0, sp: 8 },
  /** struct kc_chain { __u64 complete; } */
  chain: { size: 8, complete: 0 },
  /** struct kc_settings { __u64 times; __u32 probability; __u32 chain_length; __u64 ret_trampoline; } (.rodata) */
  settings: { size: 24, times: 0, probability: 8, chainLength: 12, retTrampoline: 16 },
} as const;

/** The read-only section holding struct kc_settings alone (KC_SETTINGS_SECTION); libbpf finds its map by this name. */
export const SETTINGS_SECTION = '.rodata.kc_settings';

/** The per-spec numbers the loader writes into .rodata before load (struct kc_settings). */
export interface ProgramSettings {
  /** Most faults against kc_claims; 0: no limit. */
  times: number;
  /** Percent; 0 and 100: every call. */
  probability: number;
  /** Frames in the call chain. */
  chainLength: number;
  /** kprobe mode: the kretprobe trampoline's address (0: unknown, the check is off). */
  retTrampoline: bigint;
}

/** struct kc_settings as bytes. */
export function encodeSettings(settings: ProgramSettings): Buffer {
  const s = MAP_LAYOUT.settings;
  const b = Buffer.alloc(s.size);
  b.writeBigUInt64LE(BigInt(settings.times), s.times);
  b.writeUInt32LE(settings.probability, s.probability);
  b.writeUInt32LE(settings.chainLength, s.chainLength);
  b.writeBigUInt64LE(BigInt.asUintN(64, settings.retTrampoline), s.retTrampoline);
  return b;
}
