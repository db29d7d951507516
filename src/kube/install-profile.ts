// The install profile, found at start-up from the CRDs the cluster has: the kernelchaos.chaos-mesh.org
// schema says standalone (ours) or beside Chaos Mesh (its Helm chart's), see crd-profile.ts; the
// schedules.chaos-mesh.org CRD says whether a Schedule controller is ours to run (our CRD, labelled
// part-of=kernelchaos) or Chaos Mesh's. The webhook and the controller both read it here, through
// apiClient() (every call has a deadline), and retry with backoff while the CRD is missing or the
// apiserver does not answer; a schema of neither profile, or one that contradicts --crd-profile, is
// a configuration error reported once, clearly, not retried.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { PART_OF_LABEL, PART_OF_VALUE } from '../api/labels.js';
import { apiErrorCode, isTransient } from '../controller/errors.js';
import { apiClient } from './client.js';
import { detectProfile, type CrdProfile, type ProfileChoice, type ProfileName } from './crd-profile.js';
import { errorMessage, type Log } from './log.js';
import type { Permission } from './permissions.js';


export const KERNELCHAOS_CRD = 'kernelchaos.chaos-mesh.org';
export const SCHEDULES_CRD = 'schedules.chaos-mesh.org';
export const WORKFLOWS_CRD = 'workflows.chaos-mesh.org';
const CRDS = [KERNELCHAOS_CRD, SCHEDULES_CRD, WORKFLOWS_CRD];

/** The start-up read: GET of the three CRDs by name (RBAC restricts it to them with resourceNames). */
export const PROFILE_PERMISSIONS: readonly Permission[] = [{ group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions', verbs: ['get'], scope: 'cluster' }];

export type KnownCrdProfile = Extract<CrdProfile, { profile: ProfileName }>;

export interface InstallProfile {
  profile: ProfileName;
  kernelChaos: KnownCrdProfile;
  /** Who installed the Schedule CRD: nobody, kernelchaos (standalone overlay) or Chaos Mesh. */
  schedules: 'absent' | 'kernelchaos' | 'chaos-mesh';
  workflows: boolean;
}

/** One line for the log and /healthz. */
export function describeProfile(p: InstallProfile): string {
  const k = p.kernelChaos;
  return (
    `${p.profile === 'standalone' ? 'standalone' : 'beside Chaos Mesh'} (${KERNELCHAOS_CRD}: ` +
    `${k.statusSubresource ? 'status subresource' : 'no status subresource, status written with the object'}, ` +
    `value ${k.valueType}, ${k.scheduler ? 'scheduler' : 'no scheduler'}; ` +
    `Schedule CRD ${p.schedules === 'absent' ? 'absent' : `installed by ${p.schedules}`}; Workflow CRD ${p.workflows ? 'present' : 'absent'})`
  );
}

export type ProfileReading =
  | { kind: 'found'; profile: InstallProfile }
  /** Worth another try later: the CRD is not installed yet, RBAC not applied yet, the apiserver not answering. */
  | { kind: 'retry'; message: string }
  /** A configuration error: retrying cannot help. */
  | { kind: 'fatal'; message: string };

function labelsOf(crd: unknown): Record<string, string> {
  const meta = (crd as { metadata?: { labels?: Record<string, string> } } | null)?.metadata;
  return meta?.labels ?? {};
}

/** Pure: the profile from the CRD objects (undefined: not installed) and what --crd-profile insists on. */
export function decideProfile(crds: { kernelChaos: unknown; schedules: unknown; workflows: unknown }, choice: ProfileChoice): ProfileReading {
  if (crds.kernelChaos === undefined) {
    return {
      kind: 'retry',
      message:
        `the ${KERNELCHAOS_CRD} CRD is not installed: apply manifests/overlays/standalone (kernelchaos alone) ` +
        'or install Chaos Mesh with manifests/overlays/with-chaos-mesh/chaos-mesh-values.yaml first',
    };
  }
  const detected = detectProfile(crds.kernelChaos);
  if (detected.profile === 'unknown') {
    return { kind: 'fatal', message: `${KERNELCHAOS_CRD}: ${detected.reason}; re-apply ours (manifests/crds) or Chaos Mesh's (its Helm chart), unchanged` };
  }
  if (choice !== 'auto' && choice !== detected.profile) {
    const installed = detected.profile === 'standalone' ? "kernelchaos's own (standalone profile)" : "Chaos Mesh's (beside-Chaos-Mesh profile)";
    const fix = detected.profile === 'standalone' ? 'apply manifests/overlays/standalone' : 'apply manifests/overlays/with-chaos-mesh';
    return { kind: 'fatal', message: `--crd-profile=${choice}, but the installed ${KERNELCHAOS_CRD} CRD is ${installed}: ${fix}, or drop --crd-profile to follow the CRD` };
  }
  const schedules = crds.schedules === undefined ? 'absent' : labelsOf(crds.schedules)[PART_OF_LABEL] === PART_OF_VALUE ? 'kernelchaos' : 'chaos-mesh';
  return { kind: 'found', profile: { profile: detected.profile, kernelChaos: detected, schedules, workflows: crds.workflows !== undefined } };
}

/** One attempt: GET the CRDs, then decideProfile. Never throws. */
export async function readProfile(kubeConfig: KubeConfig, choice: ProfileChoice, options: { timeoutMs?: number } = {}): Promise<ProfileReading> {
  // Read untyped: the typed client renames the schema's x-kubernetes-* keys, detection reads the wire form.
  const api = apiClient(kubeConfig, CustomObjectsApi, options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {});
  const found: unknown[] = [];
  for (const name of CRDS) {
    try {
      found.push(await api.getClusterCustomObject({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', name }));
    } catch (error) {
      const code = apiErrorCode(error);
      if (code === 404) {
        found.push(undefined);
        continue;
      }
      if (code === 401 || code === 403) {
        return { kind: 'retry', message: `cannot read the ${name} CRD (HTTP ${code}): the ServiceAccount needs get on apiextensions.k8s.io customresourcedefinitions (manifests/webhook/rbac.yaml)` };
      }
      return { kind: isTransient(error) ? 'retry' : 'fatal', message: `cannot read the ${name} CRD: ${errorMessage(error)}` };
    }
  }
  return decideProfile({ kernelChaos: found[0], schedules: found[1], workflows: found[2] }, choice);
}

export class ProfileError extends Error {}

/** What a running component knows of the profile, for its handlers, readiness and /healthz. */
export class ProfileState {
  current: InstallProfile | undefined;
  /** Why it is not known yet (the last attempt's message). */
  waiting = 'reading the installed CRDs';

  constructor(known?: InstallProfile) {
    this.current = known;
  }
}

export interface DetectOptions {
  log: Log;
  timeoutMs?: number;
  /** First wait after a failed attempt; doubles up to maxDelayMs. Default 1 s. */
  initialDelayMs?: number;
  /** Default 30 s. */
  maxDelayMs?: number;
  /** Stops the retries (shutdown): the promise then rejects with a ProfileError. */
  signal?: AbortSignal;
  /** Kept up to date: the profile once known, meanwhile why not. */
  state?: ProfileState;
}

/**
 * Reads the profile until it is known: retried with backoff (one clear log line per attempt) while
 * the CRD is missing or unreadable; a fatal reading rejects with a ProfileError carrying its message.
 */
export async function detectInstallProfile(kubeConfig: KubeConfig, choice: ProfileChoice, options: DetectOptions): Promise<InstallProfile> {
  let delay = options.initialDelayMs ?? 1_000;
  const max = options.maxDelayMs ?? 30_000;
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) throw new ProfileError('stopped before the install profile was known');
    const reading = await readProfile(kubeConfig, choice, options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {});
    if (reading.kind === 'found') {
      if (options.state) options.state.current = reading.profile;
      options.log.info({ profile: reading.profile.profile, crd: KERNELCHAOS_CRD }, `install profile: ${describeProfile(reading.profile)}`);
      return reading.profile;
    }
    if (options.state) options.state.waiting = reading.message;
    if (reading.kind === 'fatal') throw new ProfileError(reading.message);
    options.log.error({ attempt, retryInMs: delay }, `install profile unknown: ${reading.message}; retrying`);
    await sleep(delay, options.signal);
    delay = Math.min(delay * 2, max);
  }
}

/** Whether this controller runs Chaos Mesh Schedules of KernelChaos, and why (logged). */
export function scheduleRunnerDecision(mode: 'auto' | 'on' | 'off', profile: InstallProfile): { run: boolean; reason: string } {
  if (mode === 'off') return { run: false, reason: '--schedules=off' };
  if (profile.schedules === 'absent') return { run: false, reason: `the ${SCHEDULES_CRD} CRD is not installed` };
  if (mode === 'on') {
    return {
      run: true,
      reason: profile.schedules === 'chaos-mesh' ? "--schedules=on beside Chaos Mesh's Schedule CRD: keep Chaos Mesh's schedule-* controllers off, or both spawn children" : '--schedules=on',
    };
  }
  return profile.schedules === 'kernelchaos'
    ? { run: true, reason: `the ${SCHEDULES_CRD} CRD is kernelchaos's (standalone)` }
    : { run: false, reason: `the ${SCHEDULES_CRD} CRD is Chaos Mesh's: its schedule controller runs them (--schedules=on to run them here)` };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
