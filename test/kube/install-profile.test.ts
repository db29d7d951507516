// The install profile as the webhook and the controller read it at start-up, over HTTP from a fake
// apiserver holding the real CRDs: ours (manifests/crds) and Chaos Mesh's Helm CRD (fixture).
import { afterEach, describe, expect, it } from 'vitest';
import { FakeApiServer } from '../fakes/apiserver.js';
import { CHAOS_MESH_KERNELCHAOS_CRD, OUR_KERNELCHAOS_CRD, profileCrds } from '../fakes/crds.js';
import { ProfileError, ProfileState, detectInstallProfile, readProfile, scheduleRunnerDecision, type InstallProfile } from '../../src/kube/install-profile.js';
import type { Log } from '../../src/kube/log.js';

let server: FakeApiServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function withCrds(crds: readonly object[]): Promise<FakeApiServer> {
  server = await new FakeApiServer().start();
  for (const crd of crds) server.create(crd as Record<string, unknown>);
  return server;
}

function recordingLog(): Log & { lines: string[] } {
  const lines: string[] = [];
  const put = (_: object, msg?: string): void => {
    lines.push(msg ?? '');
  };
  return { lines, debug: put, info: put, warn: put, error: put };
}

describe('readProfile (GET of the installed CRDs)', () => {
  it('our CRDs: standalone, status subresource, value int-or-string, scheduler, our Schedule CRD, no Workflow CRD', async () => {
    const api = await withCrds(profileCrds('standalone'));
    const r = await readProfile(api.kubeConfig(), 'auto');
    if (r.kind !== 'found') throw new Error(r.message);
    expect(r.profile).toMatchObject({ profile: 'standalone', schedules: 'kernelchaos', workflows: false });
    expect(r.profile.kernelChaos).toMatchObject({ statusSubresource: true, valueType: 'int-or-string', scheduler: true });
  });

  it("Chaos Mesh's Helm CRDs: beside Chaos Mesh, no status subresource, value a string, no scheduler, Chaos Mesh's Schedule and Workflow CRDs", async () => {
    const api = await withCrds(profileCrds('chaos-mesh'));
    const r = await readProfile(api.kubeConfig(), 'chaos-mesh');
    if (r.kind !== 'found') throw new Error(r.message);
    expect(r.profile).toMatchObject({ profile: 'chaos-mesh', schedules: 'chaos-mesh', workflows: true });
    expect(r.profile.kernelChaos).toMatchObject({ statusSubresource: false, valueType: 'string', scheduler: false });
  });

  it('a --crd-profile the CRD contradicts is fatal, naming the installed CRD and the overlay to apply', async () => {
    const ours = await readProfile((await withCrds([OUR_KERNELCHAOS_CRD()])).kubeConfig(), 'chaos-mesh');
    expect(ours).toEqual({
      kind: 'fatal',
      message: "--crd-profile=chaos-mesh, but the installed kernelchaos.chaos-mesh.org CRD is kernelchaos's own (standalone profile): apply manifests/overlays/standalone, or drop --crd-profile to follow the CRD",
    });
    await server?.stop();
    const theirs = await readProfile((await withCrds([CHAOS_MESH_KERNELCHAOS_CRD()])).kubeConfig(), 'standalone');
    expect(theirs.kind === 'fatal' && theirs.message).toMatch(/is Chaos Mesh's \(beside-Chaos-Mesh profile\): apply manifests\/overlays\/with-chaos-mesh/);
  });

  it('a KernelChaos CRD edited into neither shape is fatal, never guessed', async () => {
    const mixed = CHAOS_MESH_KERNELCHAOS_CRD();
    const version = (mixed.spec.versions as { subresources?: object }[])[0];
    if (version) version.subresources = { status: {} };
    const r = await readProfile((await withCrds([mixed])).kubeConfig(), 'auto');
    expect(r.kind).toBe('fatal');
    expect(r.kind !== 'found' && r.message).toMatch(/neither profile \(status subresource true, value string, scheduler false\)/);
  });
});

describe('detectInstallProfile', () => {
  it('no CRD yet: one clear line per attempt, backing off, until it is installed', async () => {
    const api = await withCrds([]);
    const log = recordingLog();
    const state = new ProfileState();
    const found = detectInstallProfile(api.kubeConfig(), 'auto', { log, state, initialDelayMs: 20, maxDelayMs: 40 });
    await expect.poll(() => log.lines.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
    expect(state.current).toBeUndefined();
    expect(state.waiting).toMatch(/^the kernelchaos\.chaos-mesh\.org CRD is not installed: apply manifests\/overlays\/standalone/);
    expect(log.lines[0]).toMatch(/^install profile unknown: the kernelchaos\.chaos-mesh\.org CRD is not installed: .*; retrying$/);
    api.create(CHAOS_MESH_KERNELCHAOS_CRD() as unknown as Record<string, unknown>);
    const profile = await found;
    expect(profile.profile).toBe('chaos-mesh');
    expect(state.current).toBe(profile);
    expect(log.lines.at(-1)).toMatch(/^install profile: beside Chaos Mesh \(kernelchaos\.chaos-mesh\.org: no status subresource, status written with the object, value string, no scheduler; Schedule CRD absent; Workflow CRD absent\)$/);
  });

  it('stopping while waiting rejects with a ProfileError (no unhandled retry loop)', async () => {
    const api = await withCrds([]);
    const stop = new AbortController();
    const found = detectInstallProfile(api.kubeConfig(), 'auto', { log: recordingLog(), initialDelayMs: 10_000, signal: stop.signal });
    setTimeout(() => stop.abort(), 50);
    await expect(found).rejects.toBeInstanceOf(ProfileError);
  });
});

describe('scheduleRunnerDecision', () => {
  const profile = (schedules: InstallProfile['schedules']): InstallProfile => ({ profile: 'standalone', kernelChaos: { profile: 'standalone', statusSubresource: true, valueType: 'int-or-string', scheduler: true, schema: {} }, schedules, workflows: false });
  it("auto runs Schedules only on kernelchaos's Schedule CRD; never beside Chaos Mesh's unless --schedules=on says so", () => {
    expect(scheduleRunnerDecision('auto', profile('kernelchaos')).run).toBe(true);
    expect(scheduleRunnerDecision('auto', profile('chaos-mesh'))).toEqual({ run: false, reason: "the schedules.chaos-mesh.org CRD is Chaos Mesh's: its schedule controller runs them (--schedules=on to run them here)" });
    expect(scheduleRunnerDecision('auto', profile('absent')).run).toBe(false);
    expect(scheduleRunnerDecision('on', profile('chaos-mesh'))).toMatchObject({ run: true, reason: expect.stringMatching(/keep Chaos Mesh's schedule-\* controllers off/) as unknown });
    expect(scheduleRunnerDecision('off', profile('kernelchaos')).run).toBe(false);
  });
});
