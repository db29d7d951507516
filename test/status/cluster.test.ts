// `kernelchaos status` against the fake apiserver through a kubeconfig file, as a user runs it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { EXPERIMENTS_ANNOTATION, TARGET_LABEL } from '../../src/api/labels.js';
import type { ContainerRecord, KernelChaos } from '../../src/api/types.js';
import { WatchRenderer, main } from '../../src/cli/status.js';
import type { ExperimentSummary } from '../../src/status/summary.js';
import { FakeApiServer } from '../fakes/apiserver.js';
import { kubeconfigFile } from '../fakes/net.js';
import { waitFor } from '../fakes/wait.js';

let server: FakeApiServer;
let dir: string;
let kubeconfig: string;
let out: string[];
let err: string[];

const record = (id: string, node: string, faults: number, phase: ContainerRecord['phase'] = 'Injected'): ContainerRecord => ({
  id,
  selectorKey: '.',
  phase,
  injectedCount: 1,
  recoveredCount: 0,
  faultsInjected: faults,
  node,
});

function setFaults(n1: number, n2: number): void {
  server.mutate('chaos-mesh.org/v1alpha1', 'KernelChaos', 'chaos', 'mounts', (o) => {
    (o as unknown as KernelChaos).status = {
      conditions: [
        { type: 'Selected', status: 'True', reason: 'PodsSelected' },
        { type: 'AllInjected', status: 'True', reason: 'AllInjected' },
        { type: 'AllRecovered', status: 'False', reason: 'StillInjected' },
        { type: 'Paused', status: 'False', reason: 'NotPaused' },
      ],
      experiment: {
        desiredPhase: 'Run',
        // One program per node: each record carries its node's total.
        containerRecords: [record('apps/web-0/app', 'node-a', n1), record('apps/web-0/side', 'node-a', n1), record('apps/web-1/app', 'node-b', n2)],
      },
    };
  });
}

beforeEach(async () => {
  server = await new FakeApiServer().start();
  dir = await mkdtemp(join(tmpdir(), 'kc-status-'));
  kubeconfig = await kubeconfigFile(dir, server.url);
  for (const ns of ['chaos', 'apps', 'other']) server.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const p of ['web-0', 'web-1']) {
    server.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p, namespace: 'apps', labels: { [TARGET_LABEL]: 'true' }, annotations: { [EXPERIMENTS_ANNOTATION]: 'chaos/mounts' } },
      spec: { containers: [{ name: 'app', image: 'busybox' }] },
    });
  }
  server.create({
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: { name: 'mounts', namespace: 'chaos' },
    spec: { mode: 'all', selector: { namespaces: ['apps'] }, duration: '90s', scheduler: { cron: '@every 10m' }, failKernRequest: { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }] } },
  });
  server.create({
    apiVersion: 'chaos-mesh.org/v1alpha1',
    kind: 'KernelChaos',
    metadata: { name: 'idle', namespace: 'other' },
    spec: { mode: 'one', selector: {}, failKernRequest: { failtype: 2 } },
  });
  setFaults(7, 5);
  server.create({
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: 'mounts.1', namespace: 'chaos' },
    involvedObject: { apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'KernelChaos', name: 'mounts', namespace: 'chaos' },
    reason: 'FaultInjected',
    message: 'apps/web-0/app on node-a: fault attached',
    type: 'Normal',
    lastTimestamp: new Date(Date.now() - 30_000).toISOString(),
  });
  server.create({
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: 'mounts.0', namespace: 'chaos' },
    involvedObject: { apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'KernelChaos', name: 'mounts', namespace: 'chaos' },
    reason: 'Selected',
    message: 'older',
    type: 'Normal',
    lastTimestamp: new Date(Date.now() - 300_000).toISOString(),
  });
  out = [];
  err = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out.push(String(s));
    return true;
  });
  vi.spyOn(console, 'error').mockImplementation((m: unknown) => void err.push(String(m)));
});

afterEach(async () => {
  vi.restoreAllMocks();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('kernelchaos status (cluster)', () => {
  it('prints a kubectl-style table: phase, schedule, targeted pods, armed containers, faults, last event', async () => {
    expect(await main(['--kubeconfig', kubeconfig, '-n', 'chaos'])).toBe(0);
    const lines = out.join('').trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+PHASE\s+SCHEDULE\s+TARGETED\s+ARMED\s+FAULTS\s+LAST EVENT\s+AGE$/);
    expect(lines).toHaveLength(2);
    const cells = (lines[1] ?? '').split(/\s{3,}/);
    expect(cells.slice(0, 6)).toEqual(['mounts', 'Injected', '90s every @every 10m', '2', '3', '12']);
    expect(cells[6]).toBe('FaultInjected: apps/web-0/app on node-a: fault attached (30s)');
  });

  it('-A adds the NAMESPACE column and lists every namespace; -o json and -o yaml carry the same summary', async () => {
    expect(await main(['--kubeconfig', kubeconfig, '-A'])).toBe(0);
    const lines = out.join('').trimEnd().split('\n');
    expect(lines.map((l) => l.split(/\s{3,}/).slice(0, 3))).toEqual([
      ['NAMESPACE', 'NAME', 'PHASE'],
      ['chaos', 'mounts', 'Injected'],
      ['other', 'idle', 'Pending'],
    ]);
    out.length = 0;
    expect(await main(['--kubeconfig', kubeconfig, '-n', 'chaos', 'mounts', '-o', 'json'])).toBe(0);
    const json = JSON.parse(out.join('')) as ExperimentSummary;
    expect(json).toMatchObject({ namespace: 'chaos', name: 'mounts', phase: 'Injected', targetedPods: ['apps/web-0', 'apps/web-1'], armedContainers: 3, faults: 12 });
    expect(json.lastEvent?.reason).toBe('FaultInjected');
    out.length = 0;
    expect(await main(['--kubeconfig', kubeconfig, '-A', '-o', 'yaml'])).toBe(0);
    const yaml = parse(out.join('')) as { items: ExperimentSummary[] };
    expect(yaml.items.map((i) => `${i.namespace}/${i.name}:${i.faults}`)).toEqual(['chaos/mounts:12', 'other/idle:0']);
  });

  it('names what is missing: an unknown experiment, a NAME with -A, TLS flags without --companion', async () => {
    expect(await main(['--kubeconfig', kubeconfig, '-n', 'chaos', 'nope'])).toBe(1);
    expect(err.join('\n')).toMatch(/nope/);
    expect(await main(['--kubeconfig', kubeconfig, '-A', 'mounts'])).toBe(2);
    expect(await main(['--kubeconfig', kubeconfig, '--tls-ca', 'x'])).toBe(2);
    expect(await main(['--kubeconfig', join(dir, 'missing')])).toBe(2);
    expect(err.join('\n')).toMatch(/--kubeconfig .*missing: no such file/);
  });

  it('--watch off a terminal appends a row when the faults move, and stops on SIGINT', async () => {
    const running = main(['--kubeconfig', kubeconfig, '-n', 'chaos', '--watch', '--interval', '0.05']);
    await waitFor('first frame', () => out.join('').includes('mounts'));
    setFaults(20, 5);
    await waitFor('a row with the new count', () => /mounts\s+Injected\s+.*\s25\s/.test(out.join('')));
    process.emit('SIGINT');
    expect(await running).toBe(0);
    const text = out.join('');
    // Header once; one row per change, not a redrawn screen.
    expect(text.match(/^NAME/gm)).toHaveLength(1);
    expect(text.match(/^mounts/gm)).toHaveLength(2);
    expect(text).not.toContain('\x1b[');
  });
});

describe('WatchRenderer on a terminal', () => {
  it('redraws the table in place: cursor up over the last frame, clear, new frame', () => {
    const written: string[] = [];
    const r = new WatchRenderer({ isTTY: true, write: (s) => void written.push(s) }, 'table', 2000);
    const snap = (faults: string) => ({ header: ['NAME', 'FAULTS'], rows: [{ key: 'a', cells: ['a', faults], doc: { faults } }], text: `NAME   FAULTS\na      ${faults}` });
    r.frame(snap('1'), new Date('2026-12-01T10:00:00Z'));
    r.frame(snap('2'), new Date('2026-12-01T10:00:02Z'));
    expect(written[0]).not.toContain('\x1b[');
    const lines = (written[0] ?? '').split('\n').length - 1;
    expect(written[1]?.startsWith(`\x1b[${lines}F\x1b[J`)).toBe(true);
    expect(written[1]).toContain('a      2');
    expect(written[1]).toContain('10:00:02 UTC');
  });
});
