// The three injection sites of KernelChaos failtypes. Each is a kernel function on the
// error-injection list (ALLOW_ERROR_INJECTION), so both fmod_ret and bpf_override_return may
// change its result.

export type FailType = 0 | 1 | 2;

/**
 * 'site': the failtype's own kernel function fails. 'syscall-entry': on kernels without it (from
 * 6.11 should_failslab/should_fail_alloc_page exist only with CONFIG_FAILSLAB/CONFIG_FAIL_PAGE_ALLOC),
 * the call chain's outermost frame, an error-injectable function such as a syscall, fails at entry
 * with the failtype's errno.
 */
export type SiteForm = 'site' | 'syscall-entry';

/** The kernel config option without which the failtype's site does not exist (kernels >= 6.11). */
export const SITE_CONFIG: Readonly<Record<FailType, 'CONFIG_FAILSLAB' | 'CONFIG_FAIL_PAGE_ALLOC' | 'CONFIG_FAIL_MAKE_REQUEST'>> = {
  0: 'CONFIG_FAILSLAB',
  1: 'CONFIG_FAIL_PAGE_ALLOC',
  2: 'CONFIG_FAIL_MAKE_REQUEST',
};

/** The failtypes' own kernel functions. */
export type SiteName = 'should_failslab' | 'should_fail_alloc_page' | 'should_fail_bio';

export interface InjectionSite {
  failtype: FailType;
  form: SiteForm;
  /** A SiteName, or in the syscall-entry form the chain's outermost frame. */
  funcname: string;
  /** The C prototype, for comments and the doctor. */
  prototype: string;
  /** Its parameter list: what a call-chain frame without funcname (a site predicate) may read. */
  parameters: string;
  /** The value the site returns to make the caller fail, as C (our own errno constants). */
  failValue: string;
  /** Human description of the fault. */
  effect: string;
  /** Argument index of the gfp flags, when the site has them (so __GFP_NOFAIL can be honoured). */
  gfpArgIndex: number | null;
  /** Argument index of the struct bio *, when the site has one (writeback attribution). */
  bioArgIndex: number | null;
}

export const SITES: Readonly<Record<FailType, InjectionSite & { funcname: SiteName; form: 'site' }>> = {
  0: {
    failtype: 0,
    form: 'site',
    funcname: 'should_failslab',
    prototype: 'int should_failslab(struct kmem_cache *s, gfp_t gfpflags)',
    parameters: 'struct kmem_cache *s, gfp_t gfpflags',
    failValue: '-KC_ENOMEM',
    effect: 'slab allocations fail (ENOMEM)',
    gfpArgIndex: 1,
    bioArgIndex: null,
  },
  1: {
    failtype: 1,
    form: 'site',
    funcname: 'should_fail_alloc_page',
    prototype: 'bool should_fail_alloc_page(gfp_t gfp_mask, unsigned int order)',
    parameters: 'gfp_t gfp_mask, unsigned int order',
    failValue: '1',
    effect: 'page allocations fail',
    gfpArgIndex: 0,
    bioArgIndex: null,
  },
  2: {
    failtype: 2,
    form: 'site',
    funcname: 'should_fail_bio',
    prototype: 'int should_fail_bio(struct bio *bio)',
    parameters: 'struct bio *bio',
    failValue: '-KC_EIO',
    effect: 'block I/O fails (EIO)',
    gfpArgIndex: null,
    bioArgIndex: 0,
  },
};

export function siteFor(failtype: FailType): InjectionSite {
  return SITES[failtype];
}

/**
 * The syscall-entry form of failtype 0 or 1: `funcname` (the outermost frame, on the kernel's
 * error-injection list) returns -ENOMEM without running, as the allocation under it would have
 * made it fail.
 */
export function syscallEntrySite(failtype: 0 | 1, funcname: string): InjectionSite {
  const real = SITES[failtype];
  return {
    failtype,
    form: 'syscall-entry',
    funcname,
    prototype: `${funcname} (the call chain's outermost frame), failed at entry in place of ${real.funcname}`,
    // No site arguments to read: a site predicate is refused in this form (generate.ts).
    parameters: '',
    failValue: '-KC_ENOMEM',
    effect: `${funcname} fails with ENOMEM at entry (syscall-entry form: ${real.funcname} is not in this kernel)`,
    gfpArgIndex: null,
    bioArgIndex: null,
  };
}
