// The three injection sites of KernelChaos failtypes. Each is a kernel function on the
// error-injection list (ALLOW_ERROR_INJECTION), so both fmod_ret and bpf_override_return may
// change its result.

export type FailType = 0 | 1 | 2;

export interface InjectionSite {
  failtype: FailType;
  funcname: 'should_failslab' | 'should_fail_alloc_page' | 'should_fail_bio';
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

export const SITES: Readonly<Record<FailType, InjectionSite>> = {
  0: {
    failtype: 0,
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
