// Per-node reports: how a companion tells the controller what happened on its node, and the one
// place that names, encodes and decodes them (companion writes, controller reads).
//
// One ConfigMap per (experiment, node) in the release namespace, written only by that node's
// companion and watched only by the controller (label selector). Each write is one object that no
// other writer touches (no read-modify-write, no conflicts) and reaches one watcher, so the cost grows
// with nodes x changes, not nodes^2 as when every companion rewrote the shared KernelChaos status that
// every companion watches. The controller folds the reports into the status, the only status writer.
import { createHash } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { DOMAIN } from '../api/labels.js';
import { ContainerRecordSchema } from '../api/schema.js';
import type { ContainerRecord } from '../api/types.js';

/** Label on every report: what the controller's watch selects. */
export const REPORT_LABEL = `${DOMAIN}/node-report`;
export const REPORT_SELECTOR = `${REPORT_LABEL}=true`;
/** The experiment's uid (36 characters, a valid label value). */
export const REPORT_EXPERIMENT_LABEL = `${DOMAIN}/experiment-uid`;
/** A hash of the node name (node names may exceed the 63-character label limit). */
export const REPORT_NODE_LABEL = `${DOMAIN}/node-hash`;
/** The node a report or allotments object belongs to, in full (the label holds only its hash). */
const NODE_ANNOTATION = `${DOMAIN}/node`;
const DATA_KEY = 'report.json';

const NodeReportSchema = Type.Object({
  node: Type.String(),
  experiment: Type.Object({ namespace: Type.String(), name: Type.String(), uid: Type.String() }),
  /** Faults this experiment's program returned on this node (one program serves all its containers). */
  faultsInjected: Type.Integer({ minimum: 0 }),
  records: Type.Array(ContainerRecordSchema),
  /** The `times` allotment this node's program obeys (or, detached, the one it would), and whose it is. */
  budget: Type.Optional(
    Type.Object({
      allotment: Type.Integer({ minimum: 0 }),
      source: Type.Union([Type.Literal('allotment'), Type.Literal('even-share')]),
      /** The version of the controller's entry it obeys (src/api/budget.ts). */
      version: Type.Optional(Type.Integer({ minimum: 1 })),
    }),
  ),
});
export type NodeReport = Static<typeof NodeReportSchema>;

function digest(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

export function nodeHash(node: string): string {
  return digest(node, 16);
}

export function reportName(experimentUid: string, node: string): string {
  return `kc-report-${digest(`${experimentUid}/${node}`, 24)}`;
}

export function reportConfigMap(namespace: string, report: NodeReport): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: reportName(report.experiment.uid, report.node),
      namespace,
      labels: { [REPORT_LABEL]: 'true', [REPORT_EXPERIMENT_LABEL]: report.experiment.uid, [REPORT_NODE_LABEL]: nodeHash(report.node) },
      annotations: { [NODE_ANNOTATION]: report.node, [`${DOMAIN}/experiment`]: `${report.experiment.namespace}/${report.experiment.name}` },
    },
    data: { [DATA_KEY]: JSON.stringify(report) },
  };
}

/**
 * A parser of one JSON data key checked against `schema`, memoised per object (the store hands out
 * the same object until it changes); undefined when absent, not JSON, or not of the schema.
 */
function dataParser<S extends TSchema>(key: string, schema: S, applies: (cm: V1ConfigMap) => boolean = () => true): (cm: V1ConfigMap) => Static<S> | undefined {
  const parsed = new WeakMap<object, Static<S> | null>();
  return (cm) => {
    let value = parsed.get(cm);
    if (value === undefined) {
      value = null;
      const text = applies(cm) ? cm.data?.[key] : undefined;
      if (text !== undefined) {
        try {
          const json: unknown = JSON.parse(text);
          if (Value.Check(schema, json)) value = json;
        } catch {
          value = null;
        }
      }
      parsed.set(cm, value);
    }
    return value ?? undefined;
  };
}

/** The report a ConfigMap carries, or undefined when it is not one (or was tampered with). */
export const parseReport: (cm: V1ConfigMap) => NodeReport | undefined = dataParser(DATA_KEY, NodeReportSchema);

// The other direction: per-node `times` allotments (src/api/budget.ts), one ConfigMap per node with
// every experiment's allotment for that node, written only by the controller and watched only by
// that node's companion (label selector on the node hash). A change costs one write that reaches one
// watcher, so allotments cost nodes x changes, not nodes^2.

/** Label on every allotments object. */
export const ALLOTMENT_LABEL = `${DOMAIN}/node-allotments`;
/** What the controller watches: every report and allotments object carries the node hash. */
export const CONTROLLER_CHANNEL_SELECTOR = REPORT_NODE_LABEL;
const ALLOTMENT_KEY = 'allotments.json';

const NodeAllotmentsSchema = Type.Object({
  node: Type.String(),
  /** Experiment uid -> the most faults this node may reach in total (src/api/budget.ts AllotmentEntry). */
  allotments: Type.Record(
    Type.String(),
    Type.Object({ allotment: Type.Integer({ minimum: 0 }), version: Type.Integer({ minimum: 1 }), ceiling: Type.Integer({ minimum: 0 }) }),
  ),
});
export type NodeAllotments = Static<typeof NodeAllotmentsSchema>;

export function allotmentsName(node: string): string {
  return `kc-allot-${digest(node, 24)}`;
}

/** What a node's companion watches: its own allotments object. */
export function nodeAllotmentsSelector(node: string): string {
  return `${ALLOTMENT_LABEL}=true,${REPORT_NODE_LABEL}=${nodeHash(node)}`;
}

export function allotmentsConfigMap(namespace: string, a: NodeAllotments): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: allotmentsName(a.node),
      namespace,
      labels: { [ALLOTMENT_LABEL]: 'true', [REPORT_NODE_LABEL]: nodeHash(a.node) },
      annotations: { [NODE_ANNOTATION]: a.node },
    },
    data: { [ALLOTMENT_KEY]: JSON.stringify(a) },
  };
}

/** The allotments a ConfigMap carries, or undefined when it is not such an object. */
export const parseAllotments: (cm: V1ConfigMap) => NodeAllotments | undefined = dataParser(
  ALLOTMENT_KEY,
  NodeAllotmentsSchema,
  (cm) => cm.metadata?.labels?.[ALLOTMENT_LABEL] === 'true',
);

/** Faults per node: every record of a node carries the same per-program count. */
export function reportFaults(records: readonly ContainerRecord[]): number {
  return records.reduce((max, r) => Math.max(max, r.faultsInjected ?? 0), 0);
}
