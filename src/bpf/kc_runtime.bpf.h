/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kernelchaos: the static part of every fault program. The generated file (src/bpf/generate.ts)
 * defines how it attaches and whether it has a call chain, includes this header, and adds only
 * what differs per spec: the frame programs with their predicates, and the site program.
 *
 *   KC_ATTACH_TRAMPOLINE or KC_ATTACH_KPROBE   fentry/fexit/fmod_ret, or kprobe/kretprobe
 *   KC_CHAIN                                   1 with a call chain (kc_threads, kc_chain, the frame helpers)
 *   KC_GFP_NOFAIL                              from the compiler command line when the kernel's BTF has it
 */
#ifndef KC_RUNTIME_BPF_H
#define KC_RUNTIME_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "kc_maps.h"
#include "kc_target.bpf.h"

#if !defined(KC_ATTACH_TRAMPOLINE) && !defined(KC_ATTACH_KPROBE)
#error define KC_ATTACH_TRAMPOLINE or KC_ATTACH_KPROBE before including kc_runtime.bpf.h
#endif
#ifndef KC_CHAIN
#define KC_CHAIN 0
#endif

char LICENSE[] SEC("license") = "GPL";

/* libbpf 1.1 (Debian 12) has PT_REGS_PARM1..5 only: the sixth argument register per architecture. */
#if defined(PT_REGS_PARM6)
#define KC_PT_REGS_PARM6(x) PT_REGS_PARM6(x)
#elif defined(__TARGET_ARCH_x86)
#define KC_PT_REGS_PARM6(x) (((const struct pt_regs *)(x))->r9)
#elif defined(__TARGET_ARCH_arm64)
#define KC_PT_REGS_PARM6(x) (((const struct user_pt_regs *)(x))->regs[5])
#else
#error kernelchaos knows no sixth-argument register for this architecture
#endif

/* errno values (vmlinux.h has types, not macros) */
#define KC_ENOMEM 12
#define KC_EIO 5
/* ___GFP_NOFAIL: the compiler passes the value from this kernel's BTF when it has the
   ___GFP_NOFAIL_BIT enum (6.10+); older kernels define it as 0x8000, the same bit 15. */
#ifndef KC_GFP_NOFAIL
#define KC_GFP_NOFAIL 0x8000U
#endif
/* preempt_count bits outside task context (kernel in_task()): NMI, hardirq, serving softirq */
#define KC_NOT_TASK_MASK (0x00f00000 | 0x000f0000 | 0x00000100)

#ifdef KC_ATTACH_TRAMPOLINE
/* fentry, fexit and fmod_ret get ctx on their trampoline's stack frame: one address per call,
   the same for a call's entry and exit, below every caller's. */
#define KC_FRAME_ADDR ((__u64)ctx)
#define KC_EXIT_FRAME_ADDR ((__u64)ctx)
#else
/* A kprobe at function entry sees sp at the return address; its kretprobe sees sp just above it. */
#define KC_FRAME_ADDR ((__u64)PT_REGS_SP(ctx))
#define KC_EXIT_FRAME_ADDR ((__u64)PT_REGS_SP(ctx))
#endif

/* A pointer field is read; an array field (e.g. task->comm) is addressed. */
#define KC_FIELD_IS_ARRAY(b, f) (!__builtin_types_compatible_p(typeof((b)->f), typeof(&(b)->f[0])))
#define KC_STR_ADDR(b, f) __builtin_choose_expr(KC_FIELD_IS_ARRAY(b, f), \
	(const void *)__builtin_preserve_access_index(&(b)->f), (const void *)BPF_CORE_READ(b, f))

/* Written by the loader before load (src/bpf/layout.ts encodeSettings); constants to the verifier.
   A section of its own: nothing the compiler puts in .rodata can move it. */
const volatile struct kc_settings kc_settings SEC(KC_SETTINGS_SECTION) = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kc_counters);
} kc_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kc_claims);
} kc_claims SEC(".maps");

/* preempt_count lives in __preempt_count (<= 6.1, >= 6.15) or pcpu_hot (6.2 .. 6.14) on x86. */
extern const int __preempt_count __ksym __weak;
struct pcpu_hot___kc {
	int preempt_count;
} __attribute__((preserve_access_index));
extern struct pcpu_hot___kc pcpu_hot __ksym __weak;

static __always_inline bool kc_in_task(void)
{
	int pc;

	if (&__preempt_count)
		pc = *(const int *)bpf_this_cpu_ptr(&__preempt_count);
	else if (bpf_core_field_exists(pcpu_hot.preempt_count))
		pc = ((struct pcpu_hot___kc *)bpf_this_cpu_ptr(&pcpu_hot))->preempt_count;
	else
		return true; /* cannot tell: treat as task context */
	return !(pc & KC_NOT_TASK_MASK);
}

static __always_inline void kc_count(bool fault)
{
	__u32 zero = 0;
	struct kc_counters *c = bpf_map_lookup_elem(&kc_counters, &zero);

	if (!c)
		return;
	/* per-CPU, but programs are preemptible: add atomically */
	if (fault)
		__sync_fetch_and_add(&c->faults, 1);
	else
		__sync_fetch_and_add(&c->calls, 1);
}

/* probability: true when this call is one of the `probability` percent (0 and 100: every call). */
static __always_inline bool kc_roll(void)
{
	__u32 p = kc_settings.probability;

	return p == 0 || p >= 100 || bpf_get_prandom_u32() % 100 < p;
}

/* The site's first gate: `times` is used up, so nothing can fail any more (one load, no hashing).
   From then on the site counts no calls either. */
static __always_inline bool kc_budget_spent(void)
{
	__u64 times = kc_settings.times;
	__u32 zero = 0;
	struct kc_claims *claims;

	if (!times)
		return false;
	claims = bpf_map_lookup_elem(&kc_claims, &zero);
	return !claims || claims->claimed >= times;
}

/* times: claims one fault against the exact cap, atomically; false once it is used up. */
static __always_inline bool kc_claim(void)
{
	__u64 times = kc_settings.times;
	__u32 zero = 0;
	struct kc_claims *claims;

	if (!times)
		return true;
	claims = bpf_map_lookup_elem(&kc_claims, &zero);
	if (!claims || claims->claimed >= times)
		return false;
	return __sync_fetch_and_add(&claims->claimed, 1) < times;
}

#if KC_CHAIN
/* Keyed by pid_tgid so threads never mix. A HASH, not an LRU: an LRU would evict live state
   silently. When it is full a new thread is not tracked (it gets no fault, never a wrong one). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KC_MAX_THREADS);
	__type(key, __u64);
	__type(value, struct kc_thread);
} kc_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kc_chain);
} kc_chain SEC(".maps");

static __always_inline struct kc_chain *kc_chain_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&kc_chain, &zero);
}

/* A thread whose whole chain became active (+1) or stopped being (-1). */
static __always_inline void kc_chain_complete(__s64 delta)
{
	struct kc_chain *chain = kc_chain_get();

	if (chain)
		__sync_fetch_and_add(&chain->complete, delta);
}

/* Site step 0: no target thread has the whole chain active, so nothing can fail (one load, no hashing). */
static __always_inline bool kc_chain_none_complete(void)
{
	struct kc_chain *chain = kc_chain_get();

	return !chain || !chain->complete;
}

/* Drops the recorded calls at or below stack address `here`: they have returned. */
static __always_inline void kc_heal(struct kc_thread *st, __u64 here)
{
	for (int i = 0; i < KC_MAX_FRAMES; i++) {
		__u32 active = st->active;

		if (!active || active > KC_MAX_FRAMES)
			break;
		if (st->sp[(active - 1) & (KC_MAX_FRAMES - 1)] > here)
			break;
		if (active == kc_settings.chain_length)
			kc_chain_complete(-1);
		st->active = active - 1;
	}
}

#ifdef KC_ATTACH_KPROBE
/*
 * A kretprobe that had no free instance (more calls in flight than its maxactive, which libbpf
 * 1.1 cannot raise) never runs its exit program, and the stack-address rule alone cannot see the
 * return when the thread's next calls run deeper than the recorded one (the next syscall enters at
 * the same depth). While a call is in flight with its kretprobe armed, the return-address slot at
 * its recorded stack address holds the kretprobe trampoline; any other value means the call has
 * returned or its kretprobe missed, and either way its exit will not be seen: the frame is dropped,
 * with every frame recorded after it.
 */
static __always_inline void kc_drop_unhooked(struct kc_thread *st)
{
	__u64 trampoline = kc_settings.ret_trampoline;
	__u32 active = st->active;

	if (!trampoline || !active || active > KC_MAX_FRAMES)
		return;
	for (__u32 i = 0; i < KC_MAX_FRAMES && i < active; i++) {
		__u64 ret = 0;

		if (bpf_probe_read_kernel(&ret, sizeof(ret), (const void *)st->sp[i & (KC_MAX_FRAMES - 1)]) == 0 && ret == trampoline)
			continue;
		if (active == kc_settings.chain_length)
			kc_chain_complete(-1);
		st->active = i;
		return;
	}
}
#else
/* fexit programs run on every return the trampoline sees: nothing to check. */
static __always_inline void kc_drop_unhooked(struct kc_thread *st) {}
#endif

/* Site step 4: the whole call chain is active in this thread (state healed to `here` first). */
static __always_inline bool kc_chain_holds(__u64 here)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct kc_thread *st = bpf_map_lookup_elem(&kc_threads, &tid);

	if (!st)
		return false;
	kc_heal(st, here);
	if (st->active != kc_settings.chain_length)
		return false;
	kc_drop_unhooked(st);
	return st->active == kc_settings.chain_length;
}

/* Entry program, first half: the thread's state healed to `here` (NULL: none) and how many frames hold. */
static __always_inline struct kc_thread *kc_frame_begin(__u64 tid, __u64 here, __u32 *active)
{
	struct kc_thread *st = bpf_map_lookup_elem(&kc_threads, &tid);

	if (st)
		kc_heal(st, here);
	*active = st ? st->active : 0;
	return st;
}

/* Entry program, second half: records this call when it made frame `active` hold (`mark`). */
static __always_inline void kc_frame_mark(__u64 tid, struct kc_thread *st, __u32 active, __u64 here, bool mark)
{
	if (!mark) {
		if (st && !active)
			bpf_map_delete_elem(&kc_threads, &tid);
		return; /* this call starts no frame: nothing to record */
	}
	if (!st) {
		struct kc_thread fresh = {};

		if (bpf_map_update_elem(&kc_threads, &tid, &fresh, BPF_NOEXIST))
			return; /* full: this thread is not tracked, so it gets no fault */
		st = bpf_map_lookup_elem(&kc_threads, &tid);
		if (!st)
			return;
	}
	if (active >= KC_MAX_FRAMES)
		return;
	st->sp[active & (KC_MAX_FRAMES - 1)] = here;
	st->active = active + 1;
	if (active + 1 == kc_settings.chain_length)
		kc_chain_complete(1);
}

/* Leaving a chain function: drops its own call and any deeper one whose exit was missed. */
static __always_inline void kc_chain_leave(__u64 here)
{
	if (!kc_in_task())
		return; /* interrupt stacks are not the task's: entries there were never recorded */
	__u64 tid = bpf_get_current_pid_tgid();
	struct kc_thread *st = bpf_map_lookup_elem(&kc_threads, &tid);

	if (!st)
		return;
	kc_heal(st, here);
	if (!st->active)
		bpf_map_delete_elem(&kc_threads, &tid);
}

/* The current thread is exiting: forget its state, whatever frames it was inside. */
static __always_inline void kc_thread_gone(void)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct kc_thread *st = bpf_map_lookup_elem(&kc_threads, &tid);

	if (!st)
		return;
	if (st->active == kc_settings.chain_length)
		kc_chain_complete(-1);
	bpf_map_delete_elem(&kc_threads, &tid);
}
#endif /* KC_CHAIN */

#endif /* KC_RUNTIME_BPF_H */
