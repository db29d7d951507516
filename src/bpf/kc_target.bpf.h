/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kernelchaos: is the current task (or a bio) in a target cgroup or below one?
 *
 * The interface the fault programs use, and nothing else:
 *   bool kc_task_targeted(void);            the current task is a target
 *   bool kc_bio_targeted(struct bio *bio);  the cgroup the bio is charged to is a target (writeback)
 * User space fills kc_targets with cgroup ids, then bumps kc_config.generation (src/bpf/engine.ts).
 * Verdicts are cached per cgroup id (ids are never reused), so a task costs one helper call and one
 * hash lookup once its cgroup has been seen.
 */
#ifndef KC_TARGET_BPF_H
#define KC_TARGET_BPF_H

#include "kc_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KC_MAX_TARGETS);
	__type(key, __u64);
	__type(value, __u8);
} kc_targets SEC(".maps");

/* Cgroup ids are never reused, so a verdict stays right until the targets change (generation). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KC_MAX_VERDICTS);
	__type(key, __u64);
	__type(value, struct kc_verdict);
} kc_verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kc_config);
} kc_config SEC(".maps");

static __always_inline struct kc_config *kc_config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&kc_config, &zero);
}

/* 1/0 when the cached verdict for cgroup `id` is current, -1 when it must be computed. */
static __always_inline int kc_cached_verdict(__u64 id, __u32 generation)
{
	struct kc_verdict *v = bpf_map_lookup_elem(&kc_verdicts, &id);

	if (v && v->generation == generation)
		return v->targeted;
	return -1;
}

static __always_inline bool kc_store_verdict(__u64 id, __u32 generation, bool targeted)
{
	struct kc_verdict v = { .generation = generation, .targeted = targeted };

	bpf_map_update_elem(&kc_verdicts, &id, &v, BPF_ANY);
	return targeted;
}

/* The v1 target check (with KC_TARGET_V1_SUBSYS) and the hierarchy check for cgroups found elsewhere. */
#include "kc_target_v1.bpf.h"

#ifndef KC_TARGET_V1_SUBSYS
/* Is the current task in a target cgroup or below one? (cgroup v2: the ancestors of its cgroup) */
static __always_inline bool kc_task_targeted(void)
{
	struct kc_config *cfg = kc_config_get();

	if (!cfg || !cfg->target_count)
		return false;
	__u32 generation = cfg->generation;
	__u64 id = bpf_get_current_cgroup_id();
	int cached = kc_cached_verdict(id, generation);

	if (cached >= 0)
		return cached;
	for (int level = 0; level < KC_MAX_CGROUP_LEVELS; level++) {
		__u64 ancestor = bpf_get_current_ancestor_cgroup_id(level);

		if (!ancestor)
			break;
		if (bpf_map_lookup_elem(&kc_targets, &ancestor))
			return kc_store_verdict(id, generation, true);
		if (ancestor == id)
			break;
	}
	return kc_store_verdict(id, generation, false);
}
#endif /* !KC_TARGET_V1_SUBSYS */

/* Is the bio charged to a target cgroup (bio->bi_blkg->blkcg->css.cgroup) or below one? */
static __always_inline bool kc_bio_targeted(struct bio *bio)
{
	struct kc_config *cfg = kc_config_get();

	if (!cfg || !cfg->target_count || !bio)
		return false;
	if (!bpf_core_field_exists(bio->bi_blkg))
		return false; /* kernel without CONFIG_BLK_CGROUP */
	__u32 generation = cfg->generation;
	struct cgroup *cg = BPF_CORE_READ(bio, bi_blkg, blkcg, css.cgroup);

	/* ids are unique only within a hierarchy: on v1 and hybrid nodes the blkcg is in blkio's */
	if (!cg || !kc_in_target_hierarchy(cg))
		return false;
	__u64 id = BPF_CORE_READ(cg, kn, id);
	int cached = kc_cached_verdict(id, generation);

	if (cached >= 0)
		return cached;
	for (int level = 0; level < KC_MAX_CGROUP_LEVELS && cg; level++) {
		__u64 ancestor = BPF_CORE_READ(cg, kn, id);

		if (bpf_map_lookup_elem(&kc_targets, &ancestor))
			return kc_store_verdict(id, generation, true);
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return kc_store_verdict(id, generation, false);
}

#endif /* KC_TARGET_BPF_H */
