import { presentLedgerEntry, presentPrediction } from '#shared/api/presenters.ts';
import { authenticate, services } from '#shared/app/services.ts';
import { ModelError } from '#shared/domain/errors.ts';
import { toCsv } from '#shared/domain/usage.ts';
import { csvResponse, wantsCsv } from '#shared/http/csv.ts';
import { httpFunction } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';
import { metricNames } from '#shared/observability/metric-names.ts';
import { MetricUnit, metrics } from '#shared/observability/metrics.ts';

const predictionColumns = [
  'id',
  'createdAt',
  'modelId',
  'modelName',
  'modelVersion',
  'status',
  'rows',
  'cost',
  'latencyMs',
  'error',
  'refundedAt',
];

export const handler = httpFunction(
  'predict',
  {
    'POST /v1/models/{modelId}/predictions': async ({ principal, params, body, headers }) => {
      const started = performance.now();
      try {
        const result = await services().predictions.predict(
          principal,
          params.modelId,
          body,
          headers['idempotency-key'],
        );
        metrics.addMetric(metricNames.predictions, MetricUnit.Count, result.rows);
        metrics.addMetric(metricNames.creditsCharged, MetricUnit.Count, result.cost);
        metrics.addMetric(
          metricNames.predictionLatency,
          MetricUnit.Milliseconds,
          performance.now() - started,
        );
        return json(201, result, { Location: `/v1/predictions/${result.id}` });
      } catch (error) {
        if (error instanceof ModelError)
          metrics.addMetric(metricNames.predictionFailures, MetricUnit.Count, 1);
        throw error;
      }
    },

    'GET /v1/predictions': async ({ principal, query, event }) => {
      if (wantsCsv(event.headers, query.format)) {
        const all = await services().predictions.exportAll(principal, query.modelId);
        const rows = all.map((p) => ({
          ...presentPrediction(p),
          error: p.error ? `${p.error.code}: ${p.error.message}` : '',
        }));
        return csvResponse(toCsv(predictionColumns, rows), 'predictions.csv');
      }
      const page = await services().predictions.list(principal, query);
      return json(200, { items: page.items.map(presentPrediction), nextCursor: page.nextCursor });
    },

    'GET /v1/predictions/{predictionId}': async ({ principal, params }) =>
      json(200, presentPrediction(await services().predictions.get(principal, params.predictionId))),

    'POST /v1/admin/predictions/{predictionId}/refunds': async ({ principal, params, body }) => {
      const result = await services().predictions.refund(principal, params.predictionId, body.reason);
      return json(201, { transaction: presentLedgerEntry(result.entry), balance: result.balance });
    },
  },
  { authenticate, metrics },
);
