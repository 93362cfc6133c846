import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { config } from '../config.ts';
import { METRICS_NAMESPACE } from './metric-names.ts';

/**
 * Business metrics as CloudWatch Embedded Metric Format: written to the log as JSON, turned into
 * metrics by CloudWatch in AWS and readable as they are in `npm run dev`.
 */
export const metrics = new Metrics({
  namespace: METRICS_NAMESPACE,
  serviceName: config().serviceName,
  defaultDimensions: { stage: config().stage },
});

export { MetricUnit };
