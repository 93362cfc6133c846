/** Batch records in DynamoDB, under their user; a lease keeps two runs off one batch. */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { BatchProgress, BatchStore } from '../../batches/ports.ts';
import type { Batch, BatchCheckpoint } from '../../domain/batches.ts';
import { cancellationReasons, isConditionalCheckFailed } from './errors.ts';
import { keys } from './keys.ts';
import { part } from './transactions.ts';

const FIELDS = [
  'id',
  'userId',
  'modelId',
  'modelName',
  'modelVersion',
  'price',
  'format',
  'status',
  'statusReason',
  'rows',
  'processed',
  'succeeded',
  'failed',
  'cost',
  'inputKey',
  'resultsKey',
  'checkpoint',
  'createdAt',
  'startedAt',
  'finishedAt',
] as const;

/** Marks a file an operator dropped into the inbox as having its batch (sort key prefix, per user). */
const dropMarker = (userId: string, dropId: string) => ({
  pk: keys.batch(userId, '').pk,
  sk: `BATCHDROP#${dropId}`,
});

function toBatch(item: Record<string, unknown>): Batch {
  const batch: Record<string, unknown> = {};
  for (const field of FIELDS) if (item[field] !== undefined) batch[field] = item[field];
  return { rows: null, ...batch } as unknown as Batch;
}

export class DynamoBatchStore implements BatchStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async create(batch: Batch): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...keys.batch(batch.userId, batch.id), ...batch },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  async createForDrop(batch: Batch, dropId: string): Promise<{ id: string; created: boolean }> {
    // A marker per dropped object, written with the batch, makes the creation happen once.
    const marker = dropMarker(batch.userId, dropId);
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: { ...marker, batchId: batch.id },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            {
              Put: {
                TableName: this.tableName,
                Item: { ...keys.batch(batch.userId, batch.id), ...batch },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
      return { id: batch.id, created: true };
    } catch (error) {
      if (!cancellationReasons(error)) throw error;
      const id = await this.findDrop(batch.userId, dropId);
      if (!id) throw error;
      return { id, created: false };
    }
  }

  async findDrop(userId: string, dropId: string): Promise<string | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: dropMarker(userId, dropId), ConsistentRead: true }),
    );
    return Item ? String(Item.batchId) : undefined;
  }

  async get(userId: string, batchId: string): Promise<Batch | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: keys.batch(userId, batchId), ConsistentRead: true }),
    );
    return Item ? toBatch(Item) : undefined;
  }

  async list(userId: string, options: { limit: number; before?: string | undefined }) {
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': keys.batch(userId, '').pk, ':prefix': keys.batchPrefix },
        ScanIndexForward: false,
        // One more than the page, so a cursor is given only when another page exists.
        Limit: options.limit + 1,
        ...(options.before ? { ExclusiveStartKey: keys.batch(userId, options.before) } : {}),
      }),
    );
    const all = (Items ?? []).map(toBatch);
    const items = all.slice(0, options.limit);
    const last = items.at(-1);
    return { items, last: all.length > options.limit && last ? last.id : null };
  }

  async acquire(userId: string, batchId: string, owner: string, leaseUntil: number, nowMs: number) {
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.batch(userId, batchId),
          UpdateExpression:
            'SET #status = :running, leaseOwner = :owner, leaseUntil = :until, startedAt = if_not_exists(startedAt, :now)',
          // A finished batch never runs again; a running one only when its lease has lapsed.
          ConditionExpression:
            'attribute_exists(pk) AND #status IN (:awaiting, :queued, :running) AND (attribute_not_exists(leaseUntil) OR leaseUntil < :nowMs OR leaseOwner = :owner)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':running': 'running',
            ':awaiting': 'awaiting_upload',
            ':queued': 'queued',
            ':owner': owner,
            ':until': leaseUntil,
            ':nowMs': nowMs,
            ':now': new Date(nowMs).toISOString(),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? toBatch(Attributes) : undefined;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
  }

  async setRows(userId: string, batchId: string, rows: number) {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.batch(userId, batchId),
        UpdateExpression: 'SET #rows = :rows',
        ExpressionAttributeNames: { '#rows': 'rows' },
        ExpressionAttributeValues: { ':rows': rows },
      }),
    );
  }

  private progressUpdate(userId: string, batchId: string, progress: BatchProgress) {
    return {
      TableName: this.tableName,
      Key: keys.batch(userId, batchId),
      // Absolute values computed from the checkpoint: a chunk redone after a crash writes the same numbers.
      UpdateExpression:
        'SET #processed = :processed, #succeeded = :succeeded, #failed = :failed, #cost = :cost',
      ExpressionAttributeNames: {
        '#processed': 'processed',
        '#succeeded': 'succeeded',
        '#failed': 'failed',
        '#cost': 'cost',
      } as Record<string, string>,
      ExpressionAttributeValues: {
        ':processed': progress.processed,
        ':succeeded': progress.succeeded,
        ':failed': progress.failed,
        ':cost': progress.cost,
      },
    };
  }

  progressPart(userId: string, batchId: string, progress: BatchProgress) {
    return part('batch-progress', { Update: this.progressUpdate(userId, batchId, progress) });
  }

  async saveProgress(userId: string, batchId: string, progress: BatchProgress) {
    await this.client.send(new UpdateCommand(this.progressUpdate(userId, batchId, progress)));
  }

  async saveCheckpoint(
    userId: string,
    batchId: string,
    checkpoint: BatchCheckpoint,
    progress: BatchProgress,
  ) {
    const update = this.progressUpdate(userId, batchId, progress);
    await this.client.send(
      new UpdateCommand({
        ...update,
        UpdateExpression: `${update.UpdateExpression}, #checkpoint = :checkpoint`,
        ExpressionAttributeNames: { ...update.ExpressionAttributeNames, '#checkpoint': 'checkpoint' },
        ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':checkpoint': checkpoint },
      }),
    );
  }

  async finish(
    userId: string,
    batchId: string,
    outcome: {
      status: 'succeeded' | 'failed';
      statusReason?: string;
      resultsKey?: string;
      finishedAt: string;
    },
  ) {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.batch(userId, batchId),
        UpdateExpression: `SET #status = :status, finishedAt = :finishedAt${outcome.statusReason ? ', statusReason = :reason' : ''}${outcome.resultsKey ? ', resultsKey = :results' : ''} REMOVE leaseOwner, leaseUntil`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':status': outcome.status,
          ':finishedAt': outcome.finishedAt,
          ...(outcome.statusReason ? { ':reason': outcome.statusReason } : {}),
          ...(outcome.resultsKey ? { ':results': outcome.resultsKey } : {}),
        },
      }),
    );
  }

  async release(userId: string, batchId: string, owner: string) {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.batch(userId, batchId),
          UpdateExpression: 'REMOVE leaseOwner, leaseUntil',
          ConditionExpression: 'leaseOwner = :owner',
          ExpressionAttributeValues: { ':owner': owner },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }
}
