// The test kernel's BTF for unit tests: copied out of the VM once (test/vm/engine-support.ts) and
// cached under .vmcache; null, with the reason, when there is no VM to copy it from.
import { readFileSync } from 'node:fs';
import { BtfReader } from '../../src/bpf/btf-reader.js';
import { guestBtf } from '../vm/engine-support.js';
import { vmAvailability } from '../vm/harness.js';

export interface TestBtf {
  path: string;
  reader: BtfReader;
}

export async function testKernelBtf(): Promise<TestBtf | { skip: string }> {
  try {
    const path = await guestBtf();
    return { path, reader: new BtfReader(readFileSync(path)) };
  } catch (e) {
    const vm = vmAvailability();
    return { skip: vm.ok ? `the test kernel's BTF could not be copied: ${(e as Error).message}` : vm.reason };
  }
}
