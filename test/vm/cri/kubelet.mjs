// Guest-side driver of the containerd VM test: plays kubelet against containerd's CRI socket
// (RunPodSandbox with the pod's cgroup_parent, CreateContainer, StartContainer, ExecSync), writes
// the Pod manifests the companion reads from the runtime's own ids, and runs the companion as a
// user would (`kernelchaos companion --manifests DIR`, no gRPC). Prints `RESULT {json}` lines.
//
// Workloads run from each container's own init process (a loop that executes request files from a
// host directory mounted at /io), not through ExecSync: under the seed fault every mount(2) in the
// container's cgroup fails, and runc's exec makes mounts of its own in there before it starts the
// command, so an exec into a faulted container fails as it would for kubectl exec.
//
// Environment: KC_ROOT (project), KC_WORK (scratch), KC_SOCK (CRI socket), KC_CACHE (compiled
// program cache), KC_IMAGE (test image ref), KC_SEED (the experiment manifest to apply),
// KC_SCENARIO: `lifecycle` (containerd.vm.test.ts) or `cgroup-v1` (cgroup-v1.vm.test.ts: the guest's
// /sys/fs/cgroup holds v1 hierarchies, later also cgroup2 at unified/).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const { KC_ROOT, KC_WORK, KC_SOCK, KC_CACHE, KC_IMAGE, KC_SEED, KC_SCENARIO } = process.env;
const MANIFESTS = join(KC_WORK, 'manifests');
rmSync(MANIFESTS, { recursive: true, force: true });
mkdirSync(MANIFESTS, { recursive: true });

const def = protoLoader.loadSync(join(KC_ROOT, 'test/vm/cri/runtime.proto'), { keepCase: true, longs: Number, enums: String, defaults: true });
const { RuntimeService } = grpc.loadPackageDefinition(def).runtime.v1;
const cri = new RuntimeService(`unix://${KC_SOCK}`, grpc.credentials.createInsecure());

/** One CRI call; every call has a deadline (the guest is emulated, so a generous one). */
function call(method, request, seconds = 120) {
  return new Promise((resolve, reject) =>
    cri[method](request, { deadline: Date.now() + seconds * 1000 }, (err, res) => (err ? reject(new Error(`${method}: ${err.details || err.message}`)) : resolve(res))),
  );
}

const out = (key, value) => console.log(`RESULT ${JSON.stringify({ [key]: value })}`);
const sleep = (ms) => delay(ms);

// Host network (no CNI in the guest); a pid namespace per container, as kubelet asks for v1 pods,
// or the host's for a hostPID pod.
const namespaces = (pod) => ({ network: 'NODE', pid: pod.hostPid ? 'NODE' : 'CONTAINER', ipc: 'POD' });

function sandboxConfig(pod) {
  return {
    metadata: { name: pod.name, uid: pod.uid, namespace: pod.namespace, attempt: pod.attempt ?? 0 },
    labels: { 'io.kubernetes.pod.name': pod.name, 'io.kubernetes.pod.namespace': pod.namespace, 'io.kubernetes.pod.uid': pod.uid },
    // kubelet's cgroupfs layout for a BestEffort pod.
    linux: { cgroup_parent: `/kubepods/besteffort/pod${pod.uid}`, security_context: { namespace_options: namespaces(pod), privileged: true } },
  };
}

async function runPod(pod) {
  const config = sandboxConfig(pod);
  const { pod_sandbox_id } = await call('RunPodSandbox', { config });
  pod.sandbox = pod_sandbox_id;
  pod.config = config;
  pod.statuses = {};
  for (const name of pod.containers) await startContainer(pod, name, 0);
}

// Runs each /io/req-N (a shell script) once, writing its output to /io/out-N.
const INIT_LOOP = 'while :; do for f in /io/req-*; do [ -e "$f" ] || continue; n=${f#/io/req-}; sh "$f" > /io/run-$n 2>&1; mv /io/run-$n /io/out-$n; rm -f "$f"; done; sleep 1; done';

async function startContainer(pod, name, attempt) {
  const io = join(KC_WORK, 'io', `${pod.uid}-${name}-${attempt}`);
  rmSync(io, { recursive: true, force: true });
  mkdirSync(io, { recursive: true });
  const { container_id } = await call('CreateContainer', {
    pod_sandbox_id: pod.sandbox,
    config: {
      metadata: { name, attempt },
      image: { image: KC_IMAGE },
      command: ['/bin/sh', '-c', INIT_LOOP],
      mounts: [{ container_path: '/io', host_path: io }],
      labels: { 'io.kubernetes.container.name': name },
      // Privileged, as mount(2) needs CAP_SYS_ADMIN.
      linux: { security_context: { privileged: true, namespace_options: namespaces(pod) } },
    },
    sandbox_config: pod.config,
  });
  await call('StartContainer', { container_id });
  pod.statuses[name] = { id: container_id, restartCount: attempt, io };
  return container_id;
}

/** The container's init pid and its cgroup as the kernel reports it (the runtime's own). */
async function runtimeCgroup(containerId) {
  const res = await call('ContainerStatus', { container_id: containerId, verbose: true });
  const info = JSON.parse(res.info?.info ?? '{}');
  const cgroup = readFileSync(`/proc/${info.pid}/cgroup`, 'utf8').trim();
  return { state: res.status.state, pid: info.pid, cgroup, cgroupsPath: info.runtimeSpec?.linux?.cgroupsPath };
}

/** The Pod object as the apiserver would hold it, with the runtime's container ids. */
function podManifest(pod) {
  const annotations = { ...(pod.optIn ? { 'kernelchaos.dev/inject': 'true' } : {}), ...(pod.targeted ? { 'kernelchaos.dev/experiments': 'chaos-testing/kernel-chaos-example' } : {}) };
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: pod.name, namespace: pod.namespace, uid: pod.uid, labels: pod.targeted ? { 'kernelchaos.dev/target': 'true' } : {}, annotations },
    spec: { nodeName: 'vm-node', ...(pod.hostPid ? { hostPID: true } : {}), containers: pod.containers.map((name) => ({ name, image: KC_IMAGE })) },
    status: {
      phase: 'Running',
      qosClass: 'BestEffort',
      containerStatuses: pod.containers.map((name) => ({
        name,
        image: KC_IMAGE,
        imageID: KC_IMAGE,
        ready: true,
        restartCount: pod.statuses[name].restartCount,
        containerID: `containerd://${pod.statuses[name].id}`,
        state: { running: { startedAt: new Date().toISOString() } },
      })),
    },
  });
}

const writePod = (pod) => writeFileSync(join(MANIFESTS, `pod-${pod.name}.json`), podManifest(pod));

let requests = 0;
/** mount-many run by the container's own init process: `{ enomem, ok, error }`. */
async function mountsIn(status, count, script) {
  const cmd = script ?? `/bin/mount-many /m ${count}`;
  const n = ++requests;
  // Written aside and renamed, so the loop never runs half a request.
  writeFileSync(join(status.io, `tmp-${n}`), `${cmd}\n`);
  renameSync(join(status.io, `tmp-${n}`), join(status.io, `req-${n}`));
  const outFile = join(status.io, `out-${n}`);
  for (let i = 0; i < 1200 && !existsSync(outFile); i++) await sleep(100);
  if (!existsSync(outFile)) return { enomem: NaN, ok: NaN, error: 'no answer from the container in 120 s', raw: '' };
  const text = readFileSync(outFile, 'utf8');
  const sum = (re) => [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
  return { enomem: sum(/enomem=(\d+)/g), ok: sum(/ok=(\d+)/g), error: /error=([^\n]*)/.exec(text)?.[1] ?? '', raw: text.slice(0, 300) };
}

function mountsOnHost(count) {
  const r = spawnSync(join(KC_WORK, 'rootfs/bin/mount-many'), ['/tmp/kc-host-m', String(count)], { encoding: 'utf8' });
  return Number(/enomem=(\d+)/.exec(r.stdout)?.[1] ?? NaN);
}

/** kernelchaos's programs (named kc_*); runc loads device-cgroup programs of its own per container. */
function progs() {
  const r = spawnSync('bpftool', ['prog', 'list'], { encoding: 'utf8' });
  return (r.stdout.match(/^\d+: .* name kc_/gm) ?? []).length;
}

/** The companion as a real process; `waitFor(pattern, n)` reads its log. */
function startCompanion(logName) {
  const logFile = join(KC_WORK, logName);
  let log = '';
  const child = spawn('node', [join(KC_ROOT, 'bin/kernelchaos.js'), 'companion', '--node', 'vm-node', '--manifests', MANIFESTS, '--cache-dir', KC_CACHE], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr.on('data', (d) => {
    log += d.toString();
    writeFileSync(logFile, log);
  });
  let exit;
  const exited = new Promise((r) => child.on('exit', (code, signal) => r((exit = { code, signal }))));
  return {
    child,
    exited,
    alive: () => exit === undefined,
    count: (pattern) => log.split('\n').filter((l) => l.includes(pattern)).length,
    lines: (pattern) => log.split('\n').filter((l) => l.includes(pattern)),
    async waitFor(pattern, n = 1, seconds = 300) {
      for (let i = 0; i < seconds * 10; i++) {
        if (log.split('\n').filter((l) => l.includes(pattern)).length >= n) return true;
        if (exit !== undefined) throw new Error(`companion exited (${JSON.stringify(exit)}) before '${pattern}' x${n}:\n${log.slice(-2000)}`);
        await sleep(100);
      }
      throw new Error(`timed out waiting for '${pattern}' x${n}:\n${log.slice(-2000)}`);
    },
  };
}

async function main() {
  out('runtime', await call('Version', { version: 'v1' }));
  out('base_progs', progs());
  // The targeted pod (opted in, labelled by the controller), a bystander the experiment's
  // selector also matches but that was not chosen, and a pod that labelled itself without opting in.
  const target = { name: 'mount-target', namespace: 'chaos-mount', uid: '6f1c1a52-4c1e-4a8e-9d0b-1c2d3e4f5a6b', containers: ['target', 'sibling'], optIn: true, targeted: true };
  const bystander = { name: 'bystander', namespace: 'chaos-mount', uid: '7a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d', containers: ['app'], optIn: true, targeted: false };
  const sneaky = { name: 'self-labelled', namespace: 'chaos-mount', uid: '8b3c4d5e-6f7a-4b2c-9d3e-4f5a6b7c8d9e', containers: ['app'], optIn: false, targeted: true };
  for (const pod of [target, bystander, sneaky]) {
    await runPod(pod);
    writePod(pod);
  }
  out('container_ids', { target: target.statuses.target.id, sibling: target.statuses.sibling.id, bystander: bystander.statuses.app.id });
  out('runtime_cgroup', await runtimeCgroup(target.statuses.target.id));

  const c1 = startCompanion('companion-ctd.log');
  await c1.waitFor('companion running');
  // Idle: nothing to arm. It must still be there 10 s later.
  await sleep(10_000);
  out('idle_alive', c1.alive());

  out('before_arm', { target: await mountsIn(target.statuses.target, 5), selfLabelled: await mountsIn(sneaky.statuses.app, 5) });
  const seed = readFileSync(KC_SEED, 'utf8');
  writeFileSync(join(MANIFESTS, 'seed.yaml'), seed);
  await c1.waitFor('"msg":"fault armed"', 1);
  out('armed', {
    target: await mountsIn(target.statuses.target, 20),
    sibling: await mountsIn(target.statuses.sibling, 20),
    bystander: await mountsIn(bystander.statuses.app, 20),
    selfLabelled: await mountsIn(sneaky.statuses.app, 20),
    host: mountsOnHost(20),
    progs: progs(),
  });
  // Every process the container forks: children, a background job and grandchildren.
  out('forked', await mountsIn(target.statuses.target, 0, '/bin/mount-many /m1 5; (/bin/mount-many /m2 5) & wait; sh -c "sh -c \'/bin/mount-many /m3 5\'"'));

  // Container restart: kubelet makes a new container (attempt 1, new id) in the same sandbox and
  // reports it in containerStatuses; the companion must follow it to the new cgroup.
  await call('StopContainer', { container_id: target.statuses.target.id, timeout: 0 });
  const oldId = target.statuses.target.id;
  const newId = await startContainer(target, 'target', 1);
  const started = Date.now();
  writePod(target);
  let rearmMs = null;
  for (let i = 0; i < 600; i++) {
    const r = await mountsIn(target.statuses.target, 1);
    if (r.enomem === 1) {
      rearmMs = Date.now() - started;
      break;
    }
    await sleep(100);
  }
  out('restart', { oldId, newId, rearmMs, newCgroup: (await runtimeCgroup(newId)).cgroup, after: await mountsIn(target.statuses.target, 20), sibling: await mountsIn(target.statuses.sibling, 20) });
  await call('RemoveContainer', { container_id: oldId });

  // The KernelChaos removed: disarmed; back: re-armed.
  rmSync(join(MANIFESTS, 'seed.yaml'));
  await c1.waitFor('"msg":"fault disarmed', 1);
  await sleep(3000);
  out('removed', { target: await mountsIn(target.statuses.target, 20), progs: progs(), alive: c1.alive() });
  writeFileSync(join(MANIFESTS, 'seed.yaml'), seed);
  await c1.waitFor('"msg":"fault armed"', 2);
  out('rearmed', { target: await mountsIn(target.statuses.target, 20), sibling: await mountsIn(target.statuses.sibling, 20) });

  // Pod deletion: kubelet stops the sandbox, the apiserver forgets the pod.
  rmSync(join(MANIFESTS, `pod-${target.name}.json`));
  await call('StopPodSandbox', { pod_sandbox_id: target.sandbox });
  await c1.waitFor('"msg":"fault disarmed', 2);
  out('pod_deleted', { progs: progs(), bystander: await mountsIn(bystander.statuses.app, 20) });
  await call('RemovePodSandbox', { pod_sandbox_id: target.sandbox });

  // The pod comes back (a new sandbox and new ids, as a Deployment's replacement would).
  const again = { ...target, uid: '9c4d5e6f-7a8b-4c3d-8e4f-5a6b7c8d9e0f' };
  await runPod(again);
  writePod(again);
  await c1.waitFor('"msg":"fault armed"', 3);
  out('pod_recreated', { target: await mountsIn(again.statuses.target, 20), sibling: await mountsIn(again.statuses.sibling, 20), cgroup: (await runtimeCgroup(again.statuses.target.id)).cgroup });

  // kill -9: the kernel drops the programs with the process.
  c1.child.kill('SIGKILL');
  await c1.exited;
  await sleep(1000);
  out('killed', { target: await mountsIn(again.statuses.target, 20), progs: progs() });

  // A new companion picks the same state up; SIGTERM detaches everything and exits 0.
  const c2 = startCompanion('companion-ctd2.log');
  await c2.waitFor('"msg":"fault armed"', 1);
  const restartedTarget = await mountsIn(again.statuses.target, 20);
  c2.child.kill('SIGTERM');
  const exit = await c2.exited;
  out('sigterm', { restartedTarget, exit, progs: progs(), detached: c2.count('all faults detached: companion received SIGTERM'), after: await mountsIn(again.statuses.target, 20) });
}

/**
 * One node layout: a hostPID target pod (target + sibling) and, given a uid, a bystander pod under
 * the seed example. The pods are forgotten afterwards (their manifests removed; sandboxes are left
 * running, as CRI calls cost seconds each in the emulated guest).
 */
async function hierarchyPhase(label, targetUid, bystanderUid) {
  const target = { name: `target-${label}`, namespace: 'chaos-mount', uid: targetUid, containers: ['target', 'sibling'], optIn: true, targeted: true, hostPid: true };
  const bystander = bystanderUid ? { name: `bystander-${label}`, namespace: 'chaos-mount', uid: bystanderUid, containers: ['app'], optIn: true, targeted: false } : null;
  const pods = bystander ? [target, bystander] : [target];
  for (const pod of pods) {
    await runPod(pod);
    writePod(pod);
  }
  const base = progs();
  const c = startCompanion(`companion-${label}.log`);
  await c.waitFor('"msg":"fault armed"', 1);
  const result = {
    cgroup: (await runtimeCgroup(target.statuses.target.id)).cgroup,
    targetId: target.statuses.target.id,
    targetsBy: c.lines('targets by')[0] ?? null,
    armed: c.lines('"msg":"fault armed"')[0] ?? null,
    injected: c.lines('fault attached to cgroup')[0] ?? null,
    target: await mountsIn(target.statuses.target, 20),
    sibling: await mountsIn(target.statuses.sibling, 20),
    bystander: bystander ? await mountsIn(bystander.statuses.app, 20) : null,
    host: mountsOnHost(20),
    progs: progs() - base,
  };
  c.child.kill('SIGTERM');
  result.exit = await c.exited;
  result.progsAfter = progs() - base;
  result.after = await mountsIn(target.statuses.target, 20);
  for (const pod of pods) rmSync(join(MANIFESTS, `pod-${pod.name}.json`));
  out(label, result);
}

/** `kernelchaos run` on this layout: its own cgroup in the node's hierarchy. */
function localRun(label) {
  const cli = join(KC_ROOT, 'bin/kernelchaos.js');
  const run = spawnSync('node', [cli, 'run', '-f', KC_SEED, '--no-live', '--cache-dir', KC_CACHE, '--', join(KC_WORK, 'rootfs/bin/mount-many'), '/tmp/kc-run-m', '10'], { encoding: 'utf8' });
  out(`${label}_run`, { status: run.status, enomem: Number(/enomem=(\d+)/.exec(run.stdout)?.[1] ?? NaN), stderr: run.stderr.slice(0, 1500) });
}

async function cgroupV1() {
  writeFileSync(join(MANIFESTS, 'seed.yaml'), readFileSync(KC_SEED, 'utf8'));
  await hierarchyPhase('v1', '1a2b3c4d-0000-4a1b-8c2d-000000000001', '1a2b3c4d-0000-4a1b-8c2d-000000000002');
  localRun('v1');
  // systemd's hybrid layout: cgroup2 beside the v1 controllers. runc decides per container (statfs
  // of /sys/fs/cgroup/unified), so pods made from here on are in the unified hierarchy too.
  mkdirSync('/sys/fs/cgroup/unified');
  const mounted = spawnSync('mount', ['-t', 'cgroup2', 'cgroup2', '/sys/fs/cgroup/unified'], { encoding: 'utf8' });
  out('hybrid_mount', { status: mounted.status, stderr: mounted.stderr });
  // Another pod was shown untouched on v1; here the sibling container and the host suffice.
  await hierarchyPhase('hybrid', '2a2b3c4d-0000-4a1b-8c2d-000000000001');
}

(KC_SCENARIO === 'cgroup-v1' ? cgroupV1 : main)().then(
  () => {
    out('done', true);
    process.exit(0);
  },
  (err) => {
    out('error', String(err?.stack ?? err));
    process.exit(1);
  },
);
