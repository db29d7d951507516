// The one metrics pattern of every component: a registry per running server (so several in one
// process, as in tests, do not collide), metric names `kernelchaos_<component>_<name>`, and the
// default process and Node.js metrics under their standard, unprefixed names (process_*, nodejs_*)
// so stock Node.js dashboards and alerts work.
import { Registry, collectDefaultMetrics } from 'prom-client';

export type Component = 'webhook' | 'controller' | 'companion';

export function metricName(component: Component, name: string): string {
  return `kernelchaos_${component}_${name}`;
}

export interface RegistryOptions {
  /** The process-wide default metrics; one registry per process should ask for them. */
  processMetrics: boolean;
}

export function componentRegistry(opts: RegistryOptions): Registry {
  const registry = new Registry();
  if (opts.processMetrics) addProcessMetrics(registry);
  return registry;
}

/** The default metrics, unprefixed. */
export function addProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}

/** Buckets for operations from milliseconds to about a minute (API calls, reconciles, compiles). */
export const SECONDS_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
