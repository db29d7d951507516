/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kernelchaos: the layouts user space reads and writes (map values and the load-time settings),
 * and the limits they are sized by. src/bpf/layout.ts holds the same offsets and sizes for the
 * TypeScript side; test/bpf/layout.test.ts parses this file and checks that both agree.
 * Fixed-width fields only, each at its natural alignment, so the compiler adds no padding.
 */
#ifndef KC_MAPS_H
#define KC_MAPS_H

#define KC_MAX_TARGETS 1024       /* kc_targets: target cgroups of one armed fault */
#define KC_MAX_VERDICTS 8192      /* kc_verdicts: cached per-cgroup verdicts (LRU: a miss only costs a walk) */
#define KC_MAX_FRAMES 16          /* call-chain frames; a power of two (indexes are masked with it) */
#define KC_MAX_THREADS 16384      /* kc_threads: target threads with chain state at once */
#define KC_MAX_CGROUP_LEVELS 32   /* cgroup v2 nesting levels walked for an uncached verdict */

/* kc_config[0]: written by user space after every change of kc_targets. */
struct kc_config {
	__u32 generation;   /* bumped on every change: invalidates every cached verdict */
	__u32 target_count; /* 0: nobody is a target, reject at once */
};

/* kc_verdicts value: "is this cgroup under a target", valid while generation matches. */
struct kc_verdict {
	__u32 generation;
	__u32 targeted;
};

/* kc_counters[0], one per CPU: user space sums them. */
struct kc_counters {
	__u64 calls;  /* site calls seen from target tasks while a fault could be due (past both gates) */
	__u64 faults; /* faults injected */
};

/* kc_claims[0]: faults claimed against kc_settings.times; user space seeds it before attach. */
struct kc_claims {
	__u64 claimed;
};

/*
 * kc_threads value: per-thread call-chain state. Only calls that made a frame active are
 * recorded, each with its stack address: a caller's frame always lies above (at a higher address
 * than) everything it calls, so a recorded call at or below the current stack address has
 * returned, whether or not its exit program ran. Every program heals the state by that rule
 * before using it (kc_heal).
 */
struct kc_thread {
	__u32 active; /* frames 0..active-1 hold */
	__u32 pad;
	__u64 sp[KC_MAX_FRAMES]; /* sp[i]: stack address of the call that made frame i active */
};

/* kc_chain[0] */
struct kc_chain {
	__u64 complete; /* target threads whose whole chain is active right now */
};

/*
 * The per-spec numbers, const volatile in .rodata: the loader writes them before load, the
 * verifier sees them as constants (and drops the branches they rule out), and one compiled
 * object serves every spec of the same chain shape.
 */
#define KC_SETTINGS_SECTION ".rodata.kc_settings"
struct kc_settings {
	__u64 times;        /* most faults, counted in kc_claims; 0: no limit */
	__u32 probability;  /* percent; 0 and 100: every call */
	__u32 chain_length; /* frames in the call chain */
	__u64 ret_trampoline; /* kprobe mode: the kretprobe trampoline's address (see kc_frame_live); 0: unknown */
};

#endif /* KC_MAPS_H */
