import { presentLedgerEntry, presentPrediction } from '#shared/api/presenters.ts';
import {
  IdempotencyHeadersSchema,
  ModelRefParamsSchema,
  PredictionBodySchema,
  PredictionIdParamsSchema,
  PredictionsQuerySchema,
  RefundBodySchema,
} from '#shared/api/schemas.ts';
import { services } from '#shared/app/services.ts';
import { ModelError } from '#shared/domain/errors.ts';
import { toCsv } from '#shared/domain/usage.ts';
import { csvResponse, wantsCsv } from '#shared/http/csv.ts';
import { httpFunction, principalOf } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';
import { parseRequest } from '#shared/http/validation.ts';
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
    'POST /v1/models/{modelId}/predictions': async (request) => {
      const { modelId } = parseRequest(ModelRefParamsSchema, request.params, 'path');
      const body = parseRequest(PredictionBodySchema, request.body, 'body');
      const headers = parseRequest(IdempotencyHeadersSchema, request.headers, 'header');
      const started = performance.now();
      try {
        const result = await services().predictions.predict(
          principalOf(request),
          modelId,
          body,
          headers['idempotency-key'],
        );
        metrics.addMetric('Predictions', MetricUnit.Count, result.rows);
        metrics.addMetric('CreditsCharged', MetricUnit.Count, result.cost);
        metrics.addMetric('PredictionLatency', MetricUnit.Milliseconds, performance.now() - started);
        return json(201, result, { Location: `/v1/predictions/${result.id}` });
      } catch (error) {
        if (error instanceof ModelError) metrics.addMetric('PredictionFailures', MetricUnit.Count, 1);
        throw error;
      }
    },

    'GET /v1/predictions': async (request) => {
      const query = parseRequest(PredictionsQuerySchema, request.query, 'query');
      if (wantsCsv(request, query.format)) {
        const all = await services().predictions.exportAll(principalOf(request), query.modelId);
        const rows = all.map((p) => ({
          ...presentPrediction(p),
          error: p.error ? `${p.error.code}: ${p.error.message}` : '',
        }));
        return csvResponse(toCsv(predictionColumns, rows), 'predictions.csv');
      }
      const page = await services().predictions.list(principalOf(request), query);
      return json(200, { items: page.items.map(presentPrediction), nextCursor: page.nextCursor });
    },

    'GET /v1/predictions/{predictionId}': async (request) => {
      const { predictionId } = parseRequest(PredictionIdParamsSchema, request.params, 'path');
      return json(
        200,
        presentPrediction(await services().predictions.get(principalOf(request), predictionId)),
      );
    },

    'POST /v1/admin/predictions/{predictionId}/refunds': async (request) => {
      const { predictionId } = parseRequest(PredictionIdParamsSchema, request.params, 'path');
      const { reason } = parseRequest(RefundBodySchema, request.body, 'body');
      const result = await services().predictions.refund(principalOf(request), predictionId, reason);
      return json(201, { transaction: presentLedgerEntry(result.entry), balance: result.balance });
    },
  },
  { metrics },
);
