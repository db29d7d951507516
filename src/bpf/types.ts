// The contract between the fault engine (src/bpf) and its users: `kernelchaos run`, the node
// companion and the bpfki gRPC service.
import type { ParsedFailKernRequest } from '../api/predicate/ast.js';
import type { TargetHierarchy } from './cgroup-hierarchy.js';

/** How the chain frames and the site are hooked. `auto` picks per kernel at run time. */
export type AttachMode = 'auto' | 'trampoline' | 'kprobe';

export interface FaultCounters {
  /** Calls of the injection site seen in a target cgroup (before chain/probability checks). */
  // H2 addition: with a call chain the site's first check is a global gate (does any target thread
  // have the whole chain active?), so calls are only counted while the chain is complete somewhere;
  // 0 with a chain means the chain never completed.
  calls: bigint;
  /** Faults injected (the site was made to fail). */
  faults: bigint;
}

export interface ArmOptions {
  attachMode?: AttachMode;
  /** Directory for compiled objects and vmlinux.h, keyed by content hash. */
  cacheDir?: string;
  /**
   * Where the `times` counter starts: faults of this experiment already spent elsewhere (earlier
   * programs, other nodes; src/api/budget.ts). The program adds at most `times - claimed`. Default 0.
   */
  claimed?: number;
  /**
   * On a kernel without the failtype's site (should_failslab / should_fail_alloc_page, kernels
   * >= 6.11 without CONFIG_FAILSLAB / CONFIG_FAIL_PAGE_ALLOC), fail the call chain's outermost
   * frame at entry instead (src/bpf/sites.ts). Default true; false refuses such kernels.
   */
  syscallEntry?: boolean;
  /**
   * The hierarchy the target cgroup ids are in (cgroup-hierarchy.ts), chosen per node. Default:
   * cgroup v2. Any other is said in `mechanism`.
   */
  hierarchy?: TargetHierarchy;
}

/** A program set attached to the kernel. Owned by this process: if it dies, the kernel drops it. */
export interface ArmedFault {
  readonly id: string;
  /** The attach mode actually chosen. */
  readonly mode: Exclude<AttachMode, 'auto'>;
  /** How the fault is injected, said by `run`, the status records and Events (e.g. the syscall-entry form). */
  readonly mechanism: string;
  counters(): FaultCounters;
  /** Cgroup ids (inode numbers of the cgroup directories, in ArmOptions.hierarchy) whose tasks, and their descendants', may fail. */
  setTargetCgroups(ids: readonly bigint[]): void;
  /** Detaches every program and frees the maps. Idempotent. */
  disarm(): void;
}

export interface FaultEngine {
  arm(request: ParsedFailKernRequest, targetCgroupIds: readonly bigint[], options?: ArmOptions): Promise<ArmedFault>;
}

/** Why the kernel or the toolchain refused; `message` is what a user should read. */
export class EngineError extends Error {
  constructor(
    readonly reason:
      | 'missing-capability'
      | 'missing-symbol'
      | 'verifier-rejected'
      | 'compile-failed'
      /** The request does not fit this kernel's types (parameters or predicate against BTF). */
      | 'invalid-request'
      | 'unsupported-kernel'
      | 'libbpf-missing',
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}
