// The single source of truth for the KernelChaos and KernelChaosPolicy shapes.
// TypeScript types are derived with Static<> (src/api/types.ts) and the CRD manifests in
// manifests/crds/ are generated from these schemas (scripts/gen-crds.ts; a test checks they agree).
// Field names and JSON shapes follow Chaos Mesh's chaos-mesh.org/v1alpha1 Go types so that
// manifests written for Chaos Mesh work unchanged.
import { Type, type TObject, type TProperties, type TRecord, type TString } from '@sinclair/typebox';

/** Objects in our schemas reject unknown fields in the validator; the CRD relies on pruning instead. */
function Strict<T extends TProperties>(properties: T, description: string): TObject<T> {
  return Type.Object(properties, { additionalProperties: false, description });
}

const StringMap = (description: string): TRecord<TString, TString> =>
  Type.Record(Type.String(), Type.String(), { description });

export const SelectorModes = ['one', 'all', 'fixed', 'fixed-percent', 'random-max-percent'] as const;
export const ExpressionOperators = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
export const PodPhases = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] as const;

export const LabelSelectorRequirementSchema = Strict(
  {
    key: Type.String({ minLength: 1, description: 'The label key that the selector applies to.' }),
    operator: Type.Union(
      ExpressionOperators.map((op) => Type.Literal(op)),
      { description: 'One of In, NotIn, Exists, DoesNotExist.' },
    ),
    values: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Values for In and NotIn (must be non-empty); must be empty for Exists and DoesNotExist.',
      }),
    ),
  },
  'A label selector requirement, as in Kubernetes metav1.LabelSelectorRequirement.',
);

export const PodSelectorSpecSchema = Strict(
  {
    namespaces: Type.Optional(
      Type.Array(Type.String(), {
        description: "Namespaces of the target pods. Empty means the KernelChaos object's own namespace.",
      }),
    ),
    labelSelectors: Type.Optional(StringMap('Pods must carry all of these labels.')),
    expressionSelectors: Type.Optional(
      Type.Array(LabelSelectorRequirementSchema, { description: 'Set-based label requirements, all must hold.' }),
    ),
    annotationSelectors: Type.Optional(StringMap('Pods must carry all of these annotations.')),
    fieldSelectors: Type.Optional(
      StringMap('Field selectors such as metadata.name or spec.nodeName, as kubectl --field-selector.'),
    ),
    nodes: Type.Optional(Type.Array(Type.String(), { description: 'Names of the nodes the pods must run on.' })),
    nodeSelectors: Type.Optional(StringMap('Labels that the nodes of the pods must carry.')),
    pods: Type.Optional(
      Type.Record(Type.String(), Type.Array(Type.String()), {
        description: 'Explicit pods: a map from namespace to pod names. Other selectors are ignored when set.',
      }),
    ),
    podPhaseSelectors: Type.Optional(
      Type.Array(
        Type.Union(PodPhases.map((p) => Type.Literal(p))),
        { description: 'Pod phases to select: Pending, Running, Succeeded, Failed, Unknown.' },
      ),
    ),
  },
  'Which pods the experiment targets (Chaos Mesh PodSelectorSpec).',
);

export const FrameSchema = Strict(
  {
    funcname: Type.Optional(
      Type.String({ description: 'A kernel function that must be on the stack, e.g. ext4_mount or __x64_sys_mount.' }),
    ),
    parameters: Type.Optional(
      Type.String({
        description:
          'The C parameter list of funcname, used by predicate, e.g. "struct dentry *parent, const struct qstr *name".',
      }),
    ),
    predicate: Type.Optional(
      Type.String({
        description:
          'A C expression over the parameters that must hold for this frame to count, e.g. STRNCMP(name->name, "bananas", 8).',
      }),
    ),
  },
  'One frame of the call chain.',
);

export const FailKernRequestSchema = Strict(
  {
    failtype: Type.Integer({
      minimum: 0,
      maximum: 2,
      description: 'What fails: 0 slab allocation (should_failslab), 1 page allocation (should_fail_alloc_page), 2 block I/O (should_fail_bio).',
    }),
    headers: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Kernel headers the predicates need, e.g. linux/mmzone.h. A BTF-based engine does not need them.',
      }),
    ),
    callchain: Type.Optional(
      Type.Array(FrameSchema, {
        description: 'Frames that must be on the stack, outermost first. Empty means every call of the site.',
      }),
    ),
    probability: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 100, description: 'Percent of eligible calls that fail. Omitted or 0 means every call.' }),
    ),
    times: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 4294967295, description: 'The most faults to inject. Omitted or 0 means no limit.' }),
    ),
  },
  'The kernel fault to inject.',
);

export const SchedulerSchema = Strict(
  {
    cron: Type.String({
      description: 'When each run starts: a 5-field cron expression, @hourly-style descriptor, or @every <duration>.',
    }),
  },
  'A recurring schedule; each run lasts spec.duration.',
);

export const KernelChaosSpecSchema = Strict(
  {
    selector: PodSelectorSpecSchema,
    mode: Type.Union(SelectorModes.map((m) => Type.Literal(m)), {
      description: 'How many of the selected pods to target: one, all, fixed, fixed-percent, random-max-percent.',
    }),
    value: Type.Optional(
      Type.Union([Type.String(), Type.Integer()], {
        description: 'The number (fixed) or percent (fixed-percent, random-max-percent) that mode needs.',
        'x-kubernetes-int-or-string': true,
      }),
    ),
    containerNames: Type.Optional(
      Type.Array(Type.String(), { description: 'Containers to fault. Empty means every container of each pod.' }),
    ),
    failKernRequest: FailKernRequestSchema,
    duration: Type.Optional(
      Type.String({ description: 'How long each run lasts, in Go syntax (90s, 1m30s). Omitted means until deleted.' }),
    ),
    scheduler: Type.Optional(SchedulerSchema),
    remoteCluster: Type.Optional(
      Type.String({ description: 'Accepted for compatibility with Chaos Mesh; remote clusters are not supported.' }),
    ),
  },
  'The KernelChaos experiment.',
);

export const ObjectMetaSchema = Type.Object(
  {
    name: Type.Optional(Type.String()),
    generateName: Type.Optional(Type.String()),
    namespace: Type.Optional(Type.String()),
    uid: Type.Optional(Type.String()),
    resourceVersion: Type.Optional(Type.String()),
    generation: Type.Optional(Type.Integer()),
    creationTimestamp: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    deletionTimestamp: Type.Optional(Type.String()),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
    finalizers: Type.Optional(Type.Array(Type.String())),
  },
  // Metadata is owned by Kubernetes; unknown metadata fields (managedFields, ownerReferences...) are allowed.
  { additionalProperties: true },
);

export const ChaosConditionTypes = ['Selected', 'AllInjected', 'AllRecovered', 'Paused'] as const;

export const RecordEventSchema = Type.Object({
  type: Type.Union([Type.Literal('Succeeded'), Type.Literal('Failed')]),
  operation: Type.Union([Type.Literal('Apply'), Type.Literal('Recover')]),
  message: Type.Optional(Type.String()),
  timestamp: Type.String(),
});

export const ContainerRecordSchema = Type.Object(
  {
    id: Type.String({ description: 'namespace/pod/container' }),
    selectorKey: Type.String(),
    phase: Type.Union([Type.Literal('Not Injected'), Type.Literal('Injected'), Type.Literal('Failed')]),
    injectedCount: Type.Integer(),
    recoveredCount: Type.Integer(),
    faultsInjected: Type.Optional(Type.Integer({ description: 'Faults the kernel returned in this container so far.' })),
    reason: Type.Optional(Type.String()),
    node: Type.Optional(Type.String()),
    events: Type.Optional(Type.Array(RecordEventSchema)),
  },
  { description: 'What happened to one container.' },
);

export const KernelChaosStatusSchema = Type.Object(
  {
    conditions: Type.Optional(
      Type.Array(
        Type.Object({
          type: Type.Union(ChaosConditionTypes.map((t) => Type.Literal(t))),
          status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]),
          reason: Type.Optional(Type.String()),
        }),
      ),
    ),
    experiment: Type.Optional(
      Type.Object({
        desiredPhase: Type.Optional(Type.Union([Type.Literal('Run'), Type.Literal('Stop')])),
        containerRecords: Type.Optional(
          Type.Array(ContainerRecordSchema, {
            description: 'The most recently changed container records (at most 20; summary has the exact totals).',
          }),
        ),
        summary: Type.Optional(
          Type.Object(
            {
              nodes: Type.Integer({ description: 'Nodes that reported.' }),
              containers: Type.Integer({ description: 'Container records across all nodes.' }),
              injected: Type.Integer(),
              notInjected: Type.Integer(),
              failed: Type.Integer(),
              injectedCount: Type.Integer({ description: 'Injections so far, all containers.' }),
              recoveredCount: Type.Integer({ description: 'Recoveries so far, all containers.' }),
              faultsInjected: Type.Integer({ description: 'Faults the kernel returned so far, all nodes (exact).' }),
              recordsShown: Type.Integer({ description: 'How many records containerRecords holds.' }),
            },
            { description: 'Exact totals over every node report, written by the controller.' },
          ),
        ),
      }),
    ),
  },
  { description: 'What the controller and companions observed.' },
);

export const KernelChaosSchema = Strict(
  {
    apiVersion: Type.Literal('chaos-mesh.org/v1alpha1'),
    kind: Type.Literal('KernelChaos'),
    metadata: ObjectMetaSchema,
    spec: KernelChaosSpecSchema,
    status: Type.Optional(KernelChaosStatusSchema),
  },
  'KernelChaos injects kernel faults into the selected pods.',
);

// ---- Schedule (chaos-mesh.org/v1alpha1) as the standalone profile installs it: Chaos Mesh's shape
// (its field names, no status subresource), restricted to what kernelchaos runs: type KernelChaos.
// Only the CRD is generated from it; admission is src/api/validate-chaos-mesh.ts (Chaos Mesh's rules).

export const ScheduleSpecSchema = Strict(
  {
    schedule: Type.String({ description: 'When each child starts: cron (5 fields, or 6 with seconds), @hourly-style descriptor, or @every <duration>.' }),
    type: Type.Union([Type.Literal('KernelChaos')], { description: 'The kind of chaos each run creates: only KernelChaos where kernelchaos runs Schedules.' }),
    kernelChaos: KernelChaosSpecSchema,
    concurrencyPolicy: Type.Optional(
      Type.Union([Type.Literal('Forbid'), Type.Literal('Allow')], { description: 'Forbid (default): no new child while one runs. Allow: children may overlap.' }),
    ),
    historyLimit: Type.Optional(Type.Integer({ minimum: 1, description: 'Finished children kept; older ones are deleted.' })),
    startingDeadlineSeconds: Type.Optional(
      Type.Union([Type.Integer(), Type.Null()], { minimum: 1, description: 'A run that could not start within this many seconds of its time is missed.' }),
    ),
  },
  'The Schedule: a child KernelChaos at every fire of schedule.',
);

export const ScheduleStatusSchema = Type.Object(
  {
    active: Type.Optional(
      Type.Array(
        Type.Object({
          apiVersion: Type.Optional(Type.String()),
          kind: Type.Optional(Type.String()),
          namespace: Type.Optional(Type.String()),
          name: Type.Optional(Type.String()),
          uid: Type.Optional(Type.String()),
          resourceVersion: Type.Optional(Type.String()),
          fieldPath: Type.Optional(Type.String()),
        }),
        { description: 'Every child the Schedule has (running or kept by historyLimit).' },
      ),
    ),
    time: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'When the last child was created.' })),
  },
  { description: 'Written by the controller that runs the Schedule.' },
);

export const ScheduleSchema = Strict(
  {
    apiVersion: Type.Literal('chaos-mesh.org/v1alpha1'),
    kind: Type.Literal('Schedule'),
    metadata: ObjectMetaSchema,
    spec: ScheduleSpecSchema,
    status: Type.Optional(ScheduleStatusSchema),
  },
  'Schedule creates a KernelChaos on a cron schedule (Chaos Mesh 2.x).',
);

// ---- KernelChaosPolicy (kernelchaos.dev/v1alpha1): what experiments may do inside one namespace.

export const ScheduleWindowSchema = Strict(
  {
    days: Type.Optional(
      Type.Array(Type.Union(['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].map((d) => Type.Literal(d))), {
        description: 'Days of the week (UTC) the window applies to. Empty means every day.',
      }),
    ),
    start: Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'Start time HH:MM (UTC).' }),
    end: Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'End time HH:MM (UTC), exclusive.' }),
  },
  'A window of time in which experiments may run.',
);

export const KernelChaosPolicySpecSchema = Strict(
  {
    allowedFailtypes: Type.Optional(
      Type.Array(Type.Integer({ minimum: 0, maximum: 2 }), { description: 'Failtypes allowed here. Omitted means all.' }),
    ),
    maxProbability: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 100, description: 'The highest probability allowed (an omitted or 0 probability counts as 100).' }),
    ),
    maxDuration: Type.Optional(
      Type.String({ description: 'The longest duration allowed (Go syntax). When set, experiments must set a duration.' }),
    ),
    maxTimes: Type.Optional(
      Type.Integer({ minimum: 1, description: 'The most faults per experiment. When set, experiments must set times.' }),
    ),
    allowedFunctions: Type.Optional(
      Type.Array(Type.String(), { description: 'Kernel functions allowed in call chains (exact names or prefix*). Omitted means any.' }),
    ),
    requireCallchain: Type.Optional(Type.Boolean({ description: 'Reject experiments with an empty call chain.' })),
    allowPredicates: Type.Optional(
      Type.Boolean({ description: 'false rejects call-chain frames with parameters or a predicate (they read kernel memory). Omitted means allowed.' }),
    ),
    maxFrames: Type.Optional(Type.Integer({ minimum: 0, description: 'The most call-chain frames per experiment.' })),
    maxPredicateLength: Type.Optional(
      Type.Integer({ minimum: 1, description: 'The longest predicate allowed, in characters, per frame.' }),
    ),
    allowedModes: Type.Optional(
      Type.Array(Type.Union(SelectorModes.map((m) => Type.Literal(m))), { description: 'Selector modes allowed here.' }),
    ),
    allowedScheduleWindows: Type.Optional(
      Type.Array(ScheduleWindowSchema, {
        description: 'Experiments may only be created (and scheduled runs only start) inside one of these windows.',
      }),
    ),
  },
  'Limits for KernelChaos experiments that reach this namespace.',
);

export const KernelChaosPolicySchema = Strict(
  {
    apiVersion: Type.Literal('kernelchaos.dev/v1alpha1'),
    kind: Type.Literal('KernelChaosPolicy'),
    metadata: ObjectMetaSchema,
    spec: KernelChaosPolicySpecSchema,
  },
  'KernelChaosPolicy limits what KernelChaos experiments may do in its namespace.',
);
