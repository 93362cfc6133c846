/** Scheduled: reconciles every account changed since the last run and reports mismatches as a metric. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { services } from '#shared/app/services.ts';
import { reconcileChangedAccounts } from '#shared/credits/reconciler.ts';
import { logger } from '#shared/observability/logger.ts';
import { metricNames } from '#shared/observability/metric-names.ts';
import { MetricUnit, metrics } from '#shared/observability/metrics.ts';

export const handler = middy()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .handler(async () => {
    const result = await reconcileChangedAccounts(services().reconcilerStore);
    metrics.addMetric(metricNames.accountsReconciled, MetricUnit.Count, result.checked);
    metrics.addMetric(metricNames.reconciliationMismatches, MetricUnit.Count, result.mismatches.length);
    for (const mismatch of result.mismatches) logger.error('ledger does not reconcile', { mismatch });
    logger.info('reconciliation finished', {
      since: result.since,
      checked: result.checked,
      mismatches: result.mismatches.length,
    });
    return { checked: result.checked, mismatches: result.mismatches.length };
  });
