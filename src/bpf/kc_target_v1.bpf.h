/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which hierarchy target cgroup ids belong to, for nodes without a usable cgroup v2 hierarchy.
 *
 * Included by kc_target.bpf.h after its maps and verdict helpers. With KC_TARGET_V1_SUBSYS
 * defined (an enumerator of enum cgroup_subsys_id, e.g. pids_cgrp_id) targets are the task's
 * cgroups in that one v1 controller hierarchy: task->cgroups->subsys[<id>]->cgroup, whose
 * kernfs id is the inode number of its directory under that hierarchy's mount. Without it they
 * are cgroups of the default (v2) hierarchy, which bpf_get_current_cgroup_id() reads, wherever
 * it is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid nodes).
 *
 * Ids are only unique within one hierarchy, so a cgroup from elsewhere (a bio's blkcg, which
 * lives in the blkio hierarchy on v1 and hybrid nodes) is compared only when it is in the same
 * hierarchy as the targets (kc_in_target_hierarchy).
 *
 * The controller's index is read with bpf_core_enum_value: it depends on which controllers the
 * kernel was built with, and CO-RE fixes it up for the running kernel. Reads go through
 * bpf_get_current_task() and BPF_CORE_READ, which work in kprobe and trampoline programs alike.
 */
#ifndef KC_TARGET_V1_BPF_H
#define KC_TARGET_V1_BPF_H

#ifndef KC_MAX_CGROUP_LEVELS
#error define KC_MAX_CGROUP_LEVELS before including kc_target_v1.bpf.h
#endif

#ifdef KC_TARGET_V1_SUBSYS
/* The current task's cgroup in the chosen v1 controller hierarchy (NULL if the kernel has no such controller). */
static __always_inline struct cgroup *kc_v1_task_cgroup(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	int subsys = bpf_core_enum_value(enum cgroup_subsys_id, KC_TARGET_V1_SUBSYS);
	struct css_set *cset = BPF_CORE_READ(task, cgroups);
	struct cgroup_subsys_state *css = NULL;

	if (!cset || subsys < 0 || subsys >= bpf_core_enum_value(enum cgroup_subsys_id, CGROUP_SUBSYS_COUNT))
		return NULL;
	bpf_core_read(&css, sizeof(css), &cset->subsys[subsys]);
	return css ? BPF_CORE_READ(css, cgroup) : NULL;
}
#endif

/* The root of the hierarchy target ids belong to. */
static __always_inline struct cgroup_root *kc_target_root(void)
{
#ifdef KC_TARGET_V1_SUBSYS
	struct cgroup *cg = kc_v1_task_cgroup();

	return cg ? BPF_CORE_READ(cg, root) : NULL;
#else
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, cgroups, dfl_cgrp, root);
#endif
}

/* A cgroup found elsewhere (a bio's blkcg) can be compared with the targets only in their hierarchy. */
static __always_inline bool kc_in_target_hierarchy(struct cgroup *cg)
{
	struct cgroup_root *root = kc_target_root();

	return root && BPF_CORE_READ(cg, root) == root;
}

#ifdef KC_TARGET_V1_SUBSYS
/* Is `cg` a target, or below one? Walks the parent chain up to the hierarchy's root. */
static __always_inline bool kc_v1_under_target(struct cgroup *cg)
{
	for (int level = 0; level < KC_MAX_CGROUP_LEVELS && cg; level++) {
		__u64 ancestor = BPF_CORE_READ(cg, kn, id);

		if (bpf_map_lookup_elem(&kc_targets, &ancestor))
			return true;
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return false;
}

/* Is the current task in a target cgroup of the chosen v1 hierarchy, or below one? */
static __always_inline bool kc_task_targeted(void)
{
	struct kc_config *cfg = kc_config_get();

	if (!cfg || !cfg->target_count)
		return false;
	__u32 generation = cfg->generation;
	struct cgroup *cg = kc_v1_task_cgroup();

	if (!cg)
		return false;
	__u64 id = BPF_CORE_READ(cg, kn, id);
	int cached = kc_cached_verdict(id, generation);

	if (cached >= 0)
		return cached;
	return kc_store_verdict(id, generation, kc_v1_under_target(cg));
}
#endif /* KC_TARGET_V1_SUBSYS */

#endif /* KC_TARGET_V1_BPF_H */
