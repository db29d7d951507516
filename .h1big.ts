import { validateKernelChaos } from './src/api/validate.js';
for (const n of [1000, 49_000]) {
const spec: Record<string, unknown> = {};
for (let i = 0; i < n; i++) spec[`k${i}`] = i;
let t = Date.now();
const v = validateKernelChaos({ apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'KernelChaos', metadata: { name: 'a' }, spec });
console.log(n, Date.now() - t, 'ms', v.valid ? 'valid' : v.errors.length, !v.valid && v.errors.at(-1));
}
