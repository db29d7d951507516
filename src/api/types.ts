// TypeScript views of the schemas in schema.ts: derived, never written by hand, so they cannot drift.
import type { Static } from '@sinclair/typebox';
import type {
  KernelChaosSchema,
  KernelChaosSpecSchema,
  FailKernRequestSchema,
  FrameSchema,
  PodSelectorSpecSchema,
  LabelSelectorRequirementSchema,
  KernelChaosStatusSchema,
  ContainerRecordSchema,
  KernelChaosPolicySchema,
  KernelChaosPolicySpecSchema,
  ScheduleWindowSchema,
  SelectorModes,
} from './schema.js';

export type KernelChaos = Static<typeof KernelChaosSchema>;
export type KernelChaosSpec = Static<typeof KernelChaosSpecSchema>;
export type FailKernRequest = Static<typeof FailKernRequestSchema>;
export type Frame = Static<typeof FrameSchema>;
export type PodSelectorSpec = Static<typeof PodSelectorSpecSchema>;
export type LabelSelectorRequirement = Static<typeof LabelSelectorRequirementSchema>;
export type KernelChaosStatus = Static<typeof KernelChaosStatusSchema>;
export type ContainerRecord = Static<typeof ContainerRecordSchema>;
export type KernelChaosPolicy = Static<typeof KernelChaosPolicySchema>;
export type KernelChaosPolicySpec = Static<typeof KernelChaosPolicySpecSchema>;
export type ScheduleWindow = Static<typeof ScheduleWindowSchema>;
export type SelectorMode = (typeof SelectorModes)[number];

/** 0 slab (should_failslab), 1 page (should_fail_alloc_page), 2 bio (should_fail_bio). */
export type FailType = 0 | 1 | 2;

export const API_GROUP = 'chaos-mesh.org';
export const API_VERSION = 'chaos-mesh.org/v1alpha1';
export const POLICY_API_VERSION = 'kernelchaos.dev/v1alpha1';

/** One problem with a manifest: the JSON path the user wrote (spec.failKernRequest.probability) and why. */
export interface FieldError {
  path: string;
  message: string;
}
