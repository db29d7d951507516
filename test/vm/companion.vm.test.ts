// The node companion against the real kernel (test VM, Linux 6.1): `kernelchaos companion
// --manifests DIR` with a Pod whose container id matches a cgroup this script creates in kubelet's
// systemd layout, a mount loop in that "container" and in a sibling container of the same pod that
// the experiment does not name. Checks, in one boot: faults only in the target and only inside the
// window of a Chaos Mesh 2.x duration (from creationTimestamp to + duration); never for an experiment
// whose controller wrote desiredPhase: Stop; gone when the KernelChaos file is removed; gone after `kill -9` (no program left, per
// bpftool); back after a restart; a gRPC client over mTLS sees the counters, one without a
// certificate is refused; /metrics counters move while mounts fail; bpfki FailMMOrBIO for the
// target's pid injects, RecoverMMOrBIO recovers.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCa, createClientCert, createServingCert } from '../../src/tls/certs.js';
import { PROJECT_ROOT, VM_SCRATCH, runInVm, vmAvailability } from './harness.js';
import { ENGINE_CACHE, guestBtf, precompile, writeSpec } from './engine-support.js';

const vm = vmAvailability();
if (!vm.ok) console.warn(`[companion.vm] skipped: ${vm.reason}`);

const POD_UID = '5d0c6a1e-7b2f-4c1a-9e3d-0a1b2c3d4e5f';
const TARGET_ID = 'a1'.repeat(32);
const SIBLING_ID = 'b2'.repeat(32);

// A small gRPC client run inside the guest (compiled modules from dist/).
const CLIENT = `
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
const { clientCredentials, loadCompanionService, loadBpfkiService } = await import(process.env.KC_ROOT + '/dist/companion/grpc.js');
const dir = process.env.KC_CERTS;
const tls = { ca: readFileSync(dir + '/ca.crt'), cert: readFileSync(dir + '/client.crt'), key: readFileSync(dir + '/client.key') };
const call = (client, method, req) => new Promise((resolve) => client[method](req, (err, res) => resolve(err ? { error: err.code, details: err.details } : res)));
const companion = (creds) => new (loadCompanionService())('127.0.0.1:19443', creds);
const bpfki = () => new (loadBpfkiService())('127.0.0.1:19444', clientCredentials(tls));
const chain = { ftype: 0, callchain: [{ funcname: '__x64_sys_mount' }] };
// Several commands per process: node starts slowly in the emulated guest.
for (const word of process.argv.slice(2)) {
  const [cmd, arg] = word.split(':');
  let out;
  if (cmd === 'list') out = await call(companion(clientCredentials(tls)), 'ListInjections', {});
  if (cmd === 'status') out = await call(companion(clientCredentials(tls)), 'GetExperimentStatus', { namespace: 'chaos-testing', name: arg });
  if (cmd === 'nocert') out = await call(companion(grpc.credentials.createSsl(tls.ca)), 'ListInjections', {});
  if (cmd === 'fail') out = await call(bpfki(), 'FailMMOrBIO', { pid: Number(arg), ...chain });
  if (cmd === 'recover') out = await call(bpfki(), 'RecoverMMOrBIO', { pid: Number(arg), ...chain });
  if (cmd === 'metrics') {
    // A Prometheus scrape of the companion's /metrics (Node's fetch; the guest has no curl).
    const text = await (await fetch('http://127.0.0.1:19090/metrics')).text();
    const sample = (name, labels) => {
      const line = text.split('\\n').find((l) => l.startsWith(name + '{') && labels.every((x) => l.includes(x)));
      return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const exp = ['experiment="removable"', 'namespace="chaos-testing"'];
    out = {
      faults: sample('kernelchaos_companion_faults_injected_total', exp),
      calls: sample('kernelchaos_companion_site_calls_total', exp),
      containers: sample('kernelchaos_companion_armed_containers', exp),
      programs: ['trampoline', 'kprobe'].reduce((n, m) => n + (sample('kernelchaos_companion_armed_programs', ['mode="' + m + '"']) ?? 0), 0),
      arms: ['trampoline', 'kprobe'].reduce((n, m) => n + (sample('kernelchaos_companion_arm_duration_seconds_count', ['mode="' + m + '"']) ?? 0), 0),
      process: /^process_cpu_seconds_total /m.test(text),
    };
  }
  console.log('RESULT grpc_' + cmd + (cmd === 'metrics' ? '_' + arg : '') + '=' + JSON.stringify(out));
}
process.exit(0);
`;

// POSIX sh run in the guest. Tokens @@X@@ are filled in below; the script has no dollar-brace, so
// String.raw keeps it verbatim.
const SCRIPT = String.raw`
W=@@WORK@@
M=$W/manifests
rm -rf "$W/manifests" "$W/companion.log" "$W/companion2.log"
mkdir -p "$M" /tmp/mnt
POD=/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod@@UIDU@@.slice
TARGET=$POD/cri-containerd-@@TARGET@@.scope
SIBLING=$POD/cri-containerd-@@SIBLING@@.scope
mkdir -p "$TARGET" "$SIBLING"
export KC_ROOT=@@ROOT@@ KC_CERTS=$W/certs KERNELCHAOS_CACHE=@@CACHE@@

# try_mounts CGROUP N: N tmpfs mounts from inside CGROUP; prints how many failed.
try_mounts() {
  sh -c "echo \$\$ > $1/cgroup.procs; f=0; i=0; while [ \$i -lt $2 ]; do if mount -t tmpfs none /tmp/mnt 2>$W/mount.err; then umount /tmp/mnt; else f=\$((f+1)); fi; i=\$((i+1)); done; echo \$f"
}
# wait_log FILE PATTERN COUNT SECONDS: until PATTERN occurs COUNT times in FILE.
wait_log() {
  t=0
  while [ "$(grep -c "$2" "$1" 2>/dev/null)" -lt "$3" ]; do
    sleep 1; t=$((t+1))
    if [ $t -ge "$4" ]; then echo "TIMEOUT waiting for '$2' x$3 in $1"; tail -5 "$1"; return 1; fi
  done
}
# try_creates CGROUP N TAG: N new files named budget-TAG-i created from inside CGROUP; prints how many failed.
try_creates() {
  sh -c "echo \$\$ > $1/cgroup.procs; mkdir -p /tmp/bud; f=0; i=0; while [ \$i -lt $2 ]; do if touch /tmp/bud/budget-$3-\$i 2>/dev/null; then :; else f=\$((f+1)); fi; i=\$((i+1)); done; echo \$f"
}
# budget_chaos [STATUS-LINE]: times 4 under d_alloc_parallel for names starting with "budget".
budget_chaos() {
  printf '%s\n' 'apiVersion: chaos-mesh.org/v1alpha1' 'kind: KernelChaos' \
    'metadata: {name: budget, namespace: chaos-testing, uid: budget-uid}' \
    'spec:' '  mode: one' '  selector: {namespaces: [chaos-mount]}' '  containerNames: [target]' \
    '  failKernRequest:' '    failtype: 0' '    times: 4' \
    '    callchain: [{funcname: d_alloc_parallel, parameters: "struct dentry *parent, const struct qstr *name", predicate: "STRNCMP(name->name, \"budget\", 6)"}]' \
    "$1"
}
progs() { bpftool prog list 2>/dev/null | grep -cE '^[0-9]+:'; }
client() { node "$W/client.mjs" "$@" 2>&1 | grep '^RESULT grpc_'; }
chaos() { # NAME EXTRA-SPEC-LINES METADATA-EXTRA [TRAILING-LINES]
  printf '%s\n' 'apiVersion: chaos-mesh.org/v1alpha1' 'kind: KernelChaos' \
    "metadata: {name: $1, namespace: chaos-testing, uid: $1-uid$3}" \
    'spec:' '  mode: one' '  selector: {namespaces: [chaos-mount]}' '  containerNames: [target]' "$2" \
    '  failKernRequest:' '    callchain: [{funcname: __x64_sys_mount}]' '    failtype: 0'
  if [ $# -ge 4 ]; then printf '%s\n' "$4"; fi
}
start_companion() {
  node bin/kernelchaos.js companion --node vm-node --manifests "$M" --grpc-host 127.0.0.1 --grpc-port 19443 --bpfki-port 19444 --bpfki-clients vm-test-client \
    --tls-cert "$W/certs/server.crt" --tls-key "$W/certs/server.key" --tls-ca "$W/certs/ca.crt" \
    --metrics-host 127.0.0.1 --metrics-port 19090 2>"$1" &
  CPID=$!
  wait_log "$1" 'companion running' 1 300
}

printf '%s\n' \
  'apiVersion: v1' 'kind: Pod' 'metadata:' '  name: mount-target' '  namespace: chaos-mount' '  uid: @@UID@@' \
  '  labels: {kernelchaos.dev/target: "true"}' \
  '  annotations: {kernelchaos.dev/inject: "true", kernelchaos.dev/experiments: "chaos-testing/budget,chaos-testing/held,chaos-testing/removable,chaos-testing/window"}' \
  'spec:' '  nodeName: vm-node' '  containers: [{name: target, image: busybox}, {name: sibling, image: busybox}]' \
  'status:' '  phase: Running' '  qosClass: BestEffort' '  containerStatuses:' \
  '    - {name: target, image: b, imageID: b, ready: true, restartCount: 0, containerID: "containerd://@@TARGET@@", state: {running: {}}}' \
  '    - {name: sibling, image: b, imageID: b, ready: true, restartCount: 0, containerID: "containerd://@@SIBLING@@", state: {running: {}}}' \
  > "$M/pod.yaml"

echo "RESULT base_progs=$(progs)"
# A live experiment without an end whose controller wrote desiredPhase: Stop: never armed.
chaos held '' '' 'status: {experiment: {desiredPhase: Stop}}' > "$M/held.yaml"
start_companion "$W/companion.log"
# Chaos Mesh 2.x: duration alone runs from creationTimestamp for 200 s (the first compile in the
# emulated guest can take two minutes). The object is stamped 30 s ahead, so it is seen before its run opens.
OPEN=$(date -u -d @$(($(date +%s)+30)) +%Y-%m-%dT%H:%M:%SZ)
chaos window '  duration: 200s' ", creationTimestamp: \"$OPEN\"" > "$M/window.yaml"
wait_log "$W/companion.log" 'waiting for the first run' 1 60
echo "RESULT before_open_target=$(try_mounts "$TARGET" 20) before_open_sibling=$(try_mounts "$SIBLING" 20)"

wait_log "$W/companion.log" '"msg":"fault armed"' 1 180
echo "RESULT in_window_target=$(try_mounts "$TARGET" 20)"
echo "RESULT in_window_err=$(tr ' ' _ < "$W/mount.err")"
echo "RESULT in_window_sibling=$(try_mounts "$SIBLING" 20)"
echo "RESULT armed_log=$(grep '"msg":"fault armed"' "$W/companion.log" | head -1)"
echo "RESULT window_open=$OPEN"

wait_log "$W/companion.log" '"msg":"fault disarmed' 1 420
echo "RESULT after_window_target=$(try_mounts "$TARGET" 20) after_window_progs=$(progs)"
echo "RESULT disarm_log=$(grep '"msg":"fault disarmed' "$W/companion.log" | head -1)"
echo "RESULT held_armed=$(grep '"msg":"fault armed"' "$W/companion.log" | grep -c 'chaos-testing/held')"
rm "$M/held.yaml"

# bpfki: FailMMOrBIO for a process in the target container (no KernelChaos active now).
sh -c "echo \$\$ > $TARGET/cgroup.procs; exec sleep 1000" &
SLEEPER=$!
sleep 1
client fail:$SLEEPER
echo "RESULT bpfki_injected_target=$(try_mounts "$TARGET" 20) bpfki_injected_sibling=$(try_mounts "$SIBLING" 20)"
client recover:$SLEEPER
echo "RESULT bpfki_recovered_target=$(try_mounts "$TARGET" 20)"
kill $SLEEPER

# Removal: a KernelChaos without duration arms; deleting its file disarms.
chaos removable '' '' > "$M/removable.yaml"
wait_log "$W/companion.log" '"msg":"fault armed"' 2 180
client metrics:before
echo "RESULT removable_armed_target=$(try_mounts "$TARGET" 20)"
# gRPC and a second scrape while a fault is armed with no end (a client starts slowly in the emulated guest).
client list status:removable nocert metrics:after
rm "$M/removable.yaml"
wait_log "$W/companion.log" '"msg":"fault disarmed' 2 120
echo "RESULT removed_target=$(try_mounts "$TARGET" 20)"

# kill -9: the kernel drops the programs with the process.
chaos removable '' '' > "$M/removable.yaml"
budget_chaos '' > "$M/budget.yaml"
wait_log "$W/companion.log" '"msg":"fault armed"' 3 180
wait_log "$W/companion.log" '"experiment":"chaos-testing/budget".*"msg":"fault armed"' 1 300
echo "RESULT before_kill_target=$(try_mounts "$TARGET" 5) before_kill_progs=$(progs)"
# one create: one or two faults (touch retries the name), fewer than times
echo "RESULT budget_before_kill=$(try_creates "$TARGET" 1 a)"
# the records the controller would write into the status (the counters are read every 5 s)
wait_log "$W/companion.log" 'budget.*"faultsInjected":[1-9].*container records' 1 60
echo "RESULT budget_faults_before_kill=$(grep '"experiment":"chaos-testing/budget".*"msg":"container records"' "$W/companion.log" | tail -1 | sed -n 's/.*"faultsInjected":\([0-9]*\).*/\1/p')"
kill -9 $CPID
wait $CPID 2>/dev/null
sleep 1
echo "RESULT killed_target=$(try_mounts "$TARGET" 20) killed_progs=$(progs)"
RECORDS=$(grep '"experiment":"chaos-testing/budget".*"msg":"container records"' "$W/companion.log" | tail -1 | sed -n 's/.*"records":\(\[.*\]\)\(,"budget":{[^}]*}\)\{0,1\},"msg":"container records".*/\1/p')
budget_chaos "status: {experiment: {containerRecords: $RECORDS}}" > "$M/budget.yaml"

# Restart: the same directory brings the faults back; budget resumes at 3 of its 4.
start_companion "$W/companion2.log"
wait_log "$W/companion2.log" '"experiment":"chaos-testing/removable".*"msg":"fault armed"' 1 180
wait_log "$W/companion2.log" '"experiment":"chaos-testing/budget".*"msg":"fault armed"' 1 300
echo "RESULT restarted_target=$(try_mounts "$TARGET" 20) restarted_sibling=$(try_mounts "$SIBLING" 20)"
echo "RESULT budget_after_restart=$(try_creates "$TARGET" 10 b)"
sleep 7
echo "RESULT budget_faults_total=$(grep '"experiment":"chaos-testing/budget".*"msg":"container records"' "$W/companion2.log" | tail -1 | sed -n 's/.*"faultsInjected":\([0-9]*\).*/\1/p')"
kill -TERM $CPID
wait $CPID
echo "RESULT sigterm_exit=$? sigterm_progs=$(progs)"
echo "RESULT sigterm_logged=$(grep -c 'all faults detached: companion received SIGTERM' "$W/companion2.log")"
`;

/** `RESULT k=v k2=v2` lines; values of the single-value keys run to the end of the line. */
function results(output: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of output.split('\n')) {
    const m = /^RESULT (.*)$/.exec(line.trim());
    if (!m?.[1]) continue;
    const one = /^(grpc_\w+|armed_log|disarm_log|in_window_err|window_open)=(.*)$/.exec(m[1]);
    if (one?.[1]) {
      map.set(one[1], one[2] ?? '');
      continue;
    }
    for (const pair of m[1].split(' ')) {
      const [k, v] = pair.split('=');
      if (k) map.set(k, v ?? '');
    }
  }
  return map;
}

describe.skipIf(!vm.ok)(`kernelchaos companion in the test VM${vm.ok ? '' : ` (skipped: ${vm.reason})`}`, () => {
  it('faults only the target container, only in its window, and takes every fault away', async () => {
    const work = join(VM_SCRATCH, `companion-vm-${process.pid}`);
    mkdirSync(join(work, 'certs'), { recursive: true });
    const ca = createCa({ commonName: 'vm-test-ca' });
    const server = createServingCert(ca, { service: 'kernelchaos-companion', namespace: 'kernelchaos-system', extraIps: ['127.0.0.1'] });
    const client = createClientCert(ca, { commonName: 'vm-test-client' });
    const files: Record<string, string> = {
      'ca.crt': ca.cert,
      'server.crt': server.cert,
      'server.key': server.key,
      'client.crt': client.cert,
      'client.key': client.key,
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(work, 'certs', name), text);
    writeFileSync(join(work, 'client.mjs'), CLIENT);
    // the companion's programs, compiled on the host against the guest kernel (the guest is ~20x slower)
    const btf = await guestBtf();
    await precompile(writeSpec('companion-seed', { failtype: 0, callchain: [{ funcname: '__x64_sys_mount' }] }), btf, ['trampoline']);
    await precompile(
      writeSpec('companion-budget', {
        failtype: 0,
        times: 4,
        callchain: [{ funcname: 'd_alloc_parallel', parameters: 'struct dentry *parent, const struct qstr *name', predicate: 'STRNCMP(name->name, "budget", 6)' }],
      }),
      btf,
      ['trampoline'],
    );
    const script = SCRIPT.replaceAll('@@WORK@@', work)
      .replaceAll('@@ROOT@@', PROJECT_ROOT)
      .replaceAll('@@CACHE@@', ENGINE_CACHE)
      .replaceAll('@@UIDU@@', POD_UID.replace(/-/g, '_'))
      .replaceAll('@@UID@@', POD_UID)
      .replaceAll('@@TARGET@@', TARGET_ID)
      .replaceAll('@@SIBLING@@', SIBLING_ID);
    const vmRun = await runInVm(script, { timeoutSeconds: 1850, memMb: 1536 });
    writeFileSync(join(work, 'vm-output.txt'), vmRun.output);
    const r = results(vmRun.output);
    const n = (k: string): number => Number(r.get(k) || NaN);
    const context = `VM output (full copy in ${join(work, 'vm-output.txt')}):\n${vmRun.output.slice(-4000)}`;

    // The real engine's window-open-to-armed time, reported (speed belongs to benchmarks, not asserts).
    // The logger writes `time` as an ISO string (src/log.ts); epoch milliseconds are read too.
    const timeOf = (line: string | undefined): number => {
      const m = /"time":(?:(\d+)|"([^"]+)")/.exec(line ?? '');
      return m ? (m[1] !== undefined ? Number(m[1]) : Date.parse(m[2] ?? '')) : NaN;
    };
    const armedAt = timeOf(r.get('armed_log'));
    const open = r.get('window_open');
    if (!Number.isNaN(armedAt) && open) console.log(`[companion.vm] window open -> fault armed (real engine, TCG VM): ${armedAt - Date.parse(open)} ms`);

    expect(n('before_open_target'), context).toBe(0);
    expect(n('before_open_sibling')).toBe(0);
    expect(n('in_window_target'), context).toBe(20);
    expect(n('in_window_sibling')).toBe(0);
    expect(r.get('in_window_err')).toMatch(/Cannot_allocate_memory/);

    expect(n('after_window_target'), context).toBe(0);
    expect(n('after_window_progs')).toBe(n('base_progs'));
    // Disarmed at creationTimestamp + duration (the run's own clock), not some time after arming.
    const disarmedAt = timeOf(r.get('disarm_log'));
    if (open) {
      expect(disarmedAt - Date.parse(open), context).toBeGreaterThanOrEqual(200_000);
      console.log(`[companion.vm] duration end -> fault disarmed: ${disarmedAt - Date.parse(open) - 200_000} ms`);
    }
    expect(n('held_armed')).toBe(0);

    expect(r.get('grpc_fail'), context).toMatch(/"ret":0/);
    expect(n('bpfki_injected_target')).toBe(20);
    expect(n('bpfki_injected_sibling')).toBe(0);
    expect(r.get('grpc_recover')).toMatch(/"ret":0/);
    expect(n('bpfki_recovered_target')).toBe(0);

    expect(n('removable_armed_target'), context).toBe(20);
    const list = JSON.parse(r.get('grpc_list') || '{}') as {
      node: string;
      injections: Array<{ experiment: { name: string }; faults: string; calls: string; containers: string[] }>;
    };
    expect(list.node, context).toBe('vm-node');
    expect(list.injections.map((i) => i.experiment.name)).toEqual(['removable']);
    expect(list.injections[0]?.containers).toEqual(['chaos-mount/mount-target/target']);
    // 20 failed mounts so far, each at least one fault.
    expect(Number(list.injections[0]?.faults)).toBeGreaterThanOrEqual(20);
    const status = JSON.parse(r.get('grpc_status') || '{}') as { schedule_phase: string; records: Array<{ id: string; phase: string }> };
    expect(status.schedule_phase).toBe('active');
    expect(status.records).toEqual([expect.objectContaining({ id: 'chaos-mount/mount-target/target', phase: 'Injected' })]);
    expect(r.get('grpc_nocert')).toMatch(/"error":14/); // UNAVAILABLE: the TLS handshake is refused
    expect(n('removed_target')).toBe(0);

    // The companion's /metrics: the kernel's counters, moving while the mounts fail.
    type Scrape = { faults: number | null; calls: number | null; containers: number | null; programs: number | null; arms: number | null; process: boolean };
    const before = JSON.parse(r.get('grpc_metrics_before') || '{}') as Scrape;
    const after = JSON.parse(r.get('grpc_metrics_after') || '{}') as Scrape;
    console.log(`[companion.vm] /metrics faults before=${before.faults} after=${after.faults}, calls before=${before.calls} after=${after.calls}`);
    expect(before.faults, context).not.toBeNull();
    expect(after.faults ?? 0).toBeGreaterThanOrEqual((before.faults ?? 0) + 20);
    expect(after.calls ?? 0).toBeGreaterThanOrEqual((before.calls ?? 0) + 20);
    expect(after.containers).toBe(1);
    expect(after.programs ?? 0).toBeGreaterThanOrEqual(1);
    expect(after.arms ?? 0).toBeGreaterThanOrEqual(2);
    expect(after.process).toBe(true);

    expect(n('before_kill_target'), context).toBe(5);
    expect(n('before_kill_progs')).toBeGreaterThan(n('base_progs'));
    expect(n('killed_target')).toBe(0);
    expect(n('killed_progs')).toBe(n('base_progs'));

    // times: 4 over a kill -9 and a restart: the restarted companion injects only what is left
    expect(n('budget_before_kill'), context).toBe(1);
    expect(n('budget_faults_before_kill')).toBeGreaterThanOrEqual(1);
    expect(n('budget_faults_before_kill')).toBeLessThan(4);
    expect(n('budget_after_restart')).toBeGreaterThanOrEqual(1);
    expect(n('budget_after_restart')).toBeLessThan(10);
    expect(n('budget_faults_total'), context).toBe(4);

    expect(n('restarted_target'), context).toBe(20);
    expect(n('restarted_sibling')).toBe(0);
    expect(n('sigterm_exit')).toBe(0);
    expect(n('sigterm_progs')).toBe(n('base_progs'));
    expect(n('sigterm_logged')).toBe(1);
  }, 1_900_000);
});
