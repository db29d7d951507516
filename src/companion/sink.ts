// Where the companion reports: the KernelChaos status subresource and Events in a cluster, the log
// in --manifests mode. The lifecycle calls these synchronously; sinks queue their own I/O.
import type { ContainerRecord } from '../api/types.js';
import type { ExperimentId } from './model.js';

/** The `times` allotment this node's program obeys for an experiment (echoed to the controller), and whose it is. */
export interface ReportedBudget {
  allotment: number;
  source: 'allotment' | 'even-share';
  /** The version of the controller's entry, when the program obeys the latest one this node has seen. */
  version?: number;
}

export interface CompanionEvent {
  involved:
    | { kind: 'Pod'; namespace: string; name: string; uid?: string }
    | { kind: 'KernelChaos'; namespace: string; name: string; uid?: string };
  type: 'Normal' | 'Warning';
  /** CamelCase, as Kubernetes event reasons are: FaultInjected, FaultRecovered, FaultFailed. */
  reason: string;
  message: string;
}

export interface StatusSink {
  /** This node's records of one experiment changed (the whole set for this node), or the budget it obeys did. */
  records(experiment: ExperimentId, records: ContainerRecord[], budget?: ReportedBudget): void;
  event(event: CompanionEvent): void;
  /** Resolves when everything queued so far is written (or given up on). */
  flush(): Promise<void>;
}

export interface SinkLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** --manifests mode: the records and events go to the log (and gRPC, which reads the companion directly). */
export class LogSink implements StatusSink {
  constructor(private readonly log: SinkLogger) {}

  records(experiment: ExperimentId, records: ContainerRecord[], budget?: ReportedBudget): void {
    this.log.info(
      { experiment: `${experiment.namespace}/${experiment.name}`, records: records.map(({ events: _e, ...r }) => r), ...(budget ? { budget } : {}) },
      'container records',
    );
  }

  event(e: CompanionEvent): void {
    const obj = { involved: `${e.involved.kind} ${e.involved.namespace}/${e.involved.name}`, reason: e.reason };
    if (e.type === 'Warning') this.log.warn(obj, e.message);
    else this.log.info(obj, e.message);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }
}
