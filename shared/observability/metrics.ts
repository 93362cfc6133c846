import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { config } from '../config.ts';

/**
 * Business metrics as CloudWatch Embedded Metric Format: written to the log as JSON, turned into
 * metrics by CloudWatch in AWS and readable as they are in `npm run dev`.
 */
export const metrics = new Metrics({
  namespace: 'CreditPredictions',
  serviceName: config().serviceName,
  defaultDimensions: { stage: config().stage },
});

export { MetricUnit };
