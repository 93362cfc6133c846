/**
 * The service's custom metrics, named once: the functions write them (EMF, through
 * shared/observability/metrics.ts) and the dashboard and alarms watch them (infra/observability.ts).
 */

/** The service name in every log line and metric (Powertools' `service` dimension). */
export const SERVICE_NAME = 'credit-predictions';

export const METRICS_NAMESPACE = 'CreditPredictions';

export const metricNames = {
  /** Rows predicted by synchronous predictions. */
  predictions: 'Predictions',
  /** Synchronous predictions the model failed (not charged). */
  predictionFailures: 'PredictionFailures',
  creditsCharged: 'CreditsCharged',
  predictionLatency: 'PredictionLatency',
  /** Rows a batch worker run processed. */
  batchRows: 'BatchRows',
  /** Written by the reconciler on every run, whatever it finds: the heartbeat its alarm watches. */
  accountsReconciled: 'AccountsReconciled',
  reconciliationMismatches: 'ReconciliationMismatches',
} as const;

/** The dimensions every custom metric carries (the functions' Metrics default dimensions). */
export function metricDimensions(stage: string): { service: string; stage: string } {
  return { service: SERVICE_NAME, stage };
}
