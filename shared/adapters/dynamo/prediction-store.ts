/** Prediction records in DynamoDB: under the user (own listing), indexed by id (admin refunds). */
import { type DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ModelPriceChangedError, PredictionAlreadyRefundedError } from '../../domain/errors.ts';
import type { Prediction } from '../../domain/predictions.ts';
import type { PredictionStore } from '../../predictions/ports.ts';
import { epochSeconds, keys } from './keys.ts';
import { part } from './transactions.ts';

const FIELDS = [
  'id',
  'userId',
  'modelId',
  'modelName',
  'modelVersion',
  'status',
  'rows',
  'cost',
  'outputs',
  'error',
  'latencyMs',
  'createdAt',
  'refundedAt',
] as const;

function toPrediction(item: Record<string, unknown>): Prediction {
  const prediction: Record<string, unknown> = {};
  for (const field of FIELDS) if (item[field] !== undefined) prediction[field] = item[field];
  return prediction as unknown as Prediction;
}

export class DynamoPredictionStore implements PredictionStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  private item(prediction: Prediction, retentionSeconds: number) {
    return {
      ...keys.prediction(prediction.userId, prediction.id),
      ...keys.predictionIndex(prediction.id),
      ...prediction,
      expiresAt: epochSeconds(new Date(prediction.createdAt)) + retentionSeconds,
    };
  }

  recordPart(prediction: Prediction, retentionSeconds: number) {
    return part('prediction', {
      Put: {
        TableName: this.tableName,
        Item: this.item(prediction, retentionSeconds),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    });
  }

  async get(userId: string, predictionId: string): Promise<Prediction | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: keys.prediction(userId, predictionId) }),
    );
    return Item ? toPrediction(Item) : undefined;
  }

  async findById(predictionId: string): Promise<Prediction | undefined> {
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :pk AND gsi1sk = :sk',
        ExpressionAttributeValues: {
          ':pk': keys.predictionIndex(predictionId).gsi1pk,
          ':sk': keys.predictionIndex(predictionId).gsi1sk,
        },
      }),
    );
    const found = Items?.[0];
    // The index is eventually consistent; read the item itself for the current state.
    return found ? this.get(String(found.userId), predictionId) : undefined;
  }

  async list(
    userId: string,
    options: { limit: number; before?: string | undefined; model?: string | undefined },
  ) {
    // One more than the page is read, so a cursor is given only when another page exists.
    const wanted = options.limit + 1;
    const items: Prediction[] = [];
    let start: Record<string, unknown> | undefined = options.before
      ? keys.prediction(userId, options.before)
      : undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: {
            ':pk': keys.prediction(userId, '').pk,
            ':prefix': keys.predictionPrefix,
            ...(options.model ? { ':model': options.model } : {}),
          },
          ...(options.model ? { FilterExpression: 'modelId = :model OR modelName = :model' } : {}),
          ScanIndexForward: false,
          Limit: options.model ? 100 : wanted - items.length,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) if (items.length < wanted) items.push(toPrediction(item));
      start = page.LastEvaluatedKey;
    } while (start && items.length < wanted);
    const pageItems = items.slice(0, options.limit);
    const last = pageItems.at(-1);
    return { items: pageItems, last: items.length > options.limit && last ? last.id : null };
  }

  refundPart(prediction: Prediction, at: string) {
    return part(
      'prediction-refund',
      {
        Update: {
          TableName: this.tableName,
          Key: keys.prediction(prediction.userId, prediction.id),
          UpdateExpression: 'SET refundedAt = :at',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(refundedAt)',
          ExpressionAttributeValues: { ':at': at },
        },
      },
      () => new PredictionAlreadyRefundedError(),
    );
  }

  priceCheckPart(modelId: string, price: number) {
    return part(
      'price-check',
      {
        ConditionCheck: {
          TableName: this.tableName,
          Key: keys.model(modelId),
          ConditionExpression: '#status = :active AND price = :price',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':active': 'active', ':price': price },
        },
      },
      () => new ModelPriceChangedError(modelId, price),
    );
  }
}
