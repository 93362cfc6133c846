/** Model versions in DynamoDB: one item per version, indexed by name for "newest active version". */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Model, ModelStatus } from '../../domain/models.ts';
import type { ModelStore, ModelUpdate } from '../../models/ports.ts';
import { isConditionalCheckFailed } from './errors.ts';
import { keys } from './keys.ts';
import { queryAll } from './query.ts';

const MODEL_FIELDS = [
  'id',
  'name',
  'version',
  'description',
  'price',
  'status',
  'statusReason',
  'inputs',
  'outputs',
  'sha256',
  'sizeBytes',
  's3Key',
  'createdAt',
  'updatedAt',
] as const;

function toModel(item: Record<string, unknown>): Model {
  const model: Record<string, unknown> = {};
  for (const field of MODEL_FIELDS) if (item[field] !== undefined) model[field] = item[field];
  return { inputs: [], outputs: [], ...model } as unknown as Model;
}

export class DynamoModelStore implements ModelStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async nextVersion(name: string): Promise<number> {
    const { Attributes } = await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.modelVersions(name),
        UpdateExpression: 'ADD latest :one',
        ExpressionAttributeValues: { ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return Number(Attributes?.latest);
  }

  async put(model: Model): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          ...keys.model(model.id),
          ...model,
          ...keys.modelsIndex(model.name, model.version),
          ...keys.modelNameIndex(model.name, model.version),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async get(modelId: string): Promise<Model | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: keys.model(modelId), ConsistentRead: true }),
    );
    return Item ? toModel(Item) : undefined;
  }

  async versions(name: string): Promise<Model[]> {
    const items = await queryAll(this.client, {
      TableName: this.tableName,
      IndexName: 'gsi2',
      KeyConditionExpression: 'gsi2pk = :pk',
      ExpressionAttributeValues: { ':pk': keys.modelNameIndex(name, 0).gsi2pk },
      ScanIndexForward: false,
    });
    return items.map(toModel);
  }

  async list(options: {
    limit: number;
    after?: string | undefined;
  }): Promise<{ items: Model[]; last: string | null }> {
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :pk',
        ExpressionAttributeValues: { ':pk': 'MODELS' },
        Limit: options.limit,
        ...(options.after ? { ExclusiveStartKey: this.listPosition(options.after) } : {}),
      }),
    );
    const items = (page.Items ?? []).map(toModel);
    const lastItem = page.Items?.at(-1);
    return { items, last: page.LastEvaluatedKey && lastItem ? `${lastItem.gsi1sk}|${lastItem.id}` : null };
  }

  /** A list position `gsi1sk|modelId` as DynamoDB's ExclusiveStartKey for the index. */
  private listPosition(after: string) {
    const [gsi1sk = '', modelId = ''] = after.split('|');
    return { gsi1pk: 'MODELS', gsi1sk, ...keys.model(modelId) };
  }

  async update(
    modelId: string,
    change: ModelUpdate,
    expectedStatus?: ModelStatus[],
  ): Promise<Model | undefined> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets: string[] = [];
    const removes: string[] = [];
    for (const [field, value] of Object.entries(change)) {
      if (value === undefined) continue;
      names[`#${field}`] = field;
      if (value === null) removes.push(`#${field}`);
      else {
        values[`:${field}`] = value;
        sets.push(`#${field} = :${field}`);
      }
    }
    let condition = 'attribute_exists(pk)';
    if (expectedStatus?.length) {
      names['#status'] = 'status';
      condition += ` AND #status IN (${expectedStatus.map((_, i) => `:expected${i}`).join(', ')})`;
      expectedStatus.forEach((status, i) => {
        values[`:expected${i}`] = status;
      });
    }
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.model(modelId),
          UpdateExpression: [
            sets.length ? `SET ${sets.join(', ')}` : '',
            removes.length ? `REMOVE ${removes.join(', ')}` : '',
          ]
            .filter(Boolean)
            .join(' '),
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? toModel(Attributes) : undefined;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
  }
}
