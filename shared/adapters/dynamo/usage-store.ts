/**
 * Usage counters in DynamoDB. Per user: one item per (day, model), updated inside the charge's
 * transaction. Service-wide: per day, spread over shards (a user always lands on the same shard,
 * a model's and the top-up counters on a random one), summed when an admin asks. No counter is a
 * single hot item, and no report scans the table.
 */
import { createHash } from 'node:crypto';
import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TransactionPart } from '../../domain/transactions.ts';
import {
  latencyBucket,
  latencyBuckets,
  type UsageCounts,
  type UsageDelta,
  type UsageRecord,
} from '../../domain/usage.ts';
import { keys } from './keys.ts';
import { queryAll } from './query.ts';
import { part } from './transactions.ts';

export const STAT_SHARDS = 8;

function shardOf(value: string): number {
  return createHash('sha256').update(value).digest().readUInt32BE(0) % STAT_SHARDS;
}

const randomShard = () => Math.floor(Math.random() * STAT_SHARDS);

export interface DayStats {
  day: string;
  users: Map<string, UsageCounts>;
  models: Map<string, UsageCounts & { latency: number[] }>;
  creditsAdded: number;
}

async function inBatches<T, R>(items: T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size)
    results.push(...(await Promise.all(items.slice(i, i + size).map(work))));
  return results;
}

export class DynamoUsageStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  private add(
    tag: 'usage' | 'credits-added' | 'users-counter',
    key: Record<string, string>,
    counts: Record<string, number>,
    set: Record<string, string> = {},
  ): TransactionPart {
    const names: Record<string, string> = {};
    const values: Record<string, number | string> = {};
    const adds: string[] = [];
    const sets: string[] = [];
    Object.entries(counts).forEach(([name, value], i) => {
      names[`#a${i}`] = name;
      values[`:a${i}`] = value;
      adds.push(`#a${i} :a${i}`);
    });
    Object.entries(set).forEach(([name, value], i) => {
      names[`#s${i}`] = name;
      values[`:s${i}`] = value;
      sets.push(`#s${i} = :s${i}`);
    });
    return part(tag, {
      Update: {
        TableName: this.tableName,
        Key: key,
        UpdateExpression: `ADD ${adds.join(', ')}${sets.length ? ` SET ${sets.join(', ')}` : ''}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    });
  }

  /** The counter updates for rows predicted, failed and charged; for the charge's transaction. */
  usageParts(delta: UsageDelta): TransactionPart[] {
    const counts = { predictions: delta.predictions, failed: delta.failed, credits: delta.credits };
    const modelCounts: Record<string, number> = { ...counts };
    if (delta.latencyMs !== undefined) modelCounts[`lat${latencyBucket(delta.latencyMs)}`] = 1;
    return [
      this.add('usage', keys.userUsage(delta.userId, delta.day, delta.modelId), counts, {
        day: delta.day,
        modelId: delta.modelId,
      }),
      this.add(
        'usage',
        { pk: keys.dayShard(delta.day, shardOf(delta.userId)), sk: `USER#${delta.userId}` },
        counts,
      ),
      this.add(
        'usage',
        { pk: keys.dayShard(delta.day, randomShard()), sk: `MODEL#${delta.modelId}` },
        modelCounts,
      ),
    ];
  }

  /** Counts credits added by top-ups and grants (the signup bonus included). */
  creditsAddedPart(day: string, credits: number): TransactionPart {
    return this.add('credits-added', { pk: keys.dayShard(day, randomShard()), sk: 'ADDED' }, { credits });
  }

  userCreatedPart(): TransactionPart {
    return this.add('users-counter', keys.usersCounter(randomShard()), { users: 1 });
  }

  async userUsage(userId: string, from: string, to: string): Promise<UsageRecord[]> {
    const items = await queryAll(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': keys.userProfile(userId).pk,
        ':from': `${keys.userUsagePrefix}${from}`,
        ':to': `${keys.userUsagePrefix}${to}#\uffff`,
      },
    });
    return items.map((item) => ({
      day: String(item.day),
      modelId: String(item.modelId),
      predictions: Number(item.predictions ?? 0),
      failed: Number(item.failed ?? 0),
      credits: Number(item.credits ?? 0),
    }));
  }

  async userCount(): Promise<number> {
    let requested: Record<string, unknown>[] = Array.from({ length: STAT_SHARDS }, (_, shard) =>
      keys.usersCounter(shard),
    );
    let users = 0;
    // BatchGetItem may leave keys unprocessed (throttling): ask again for those, or the count is short.
    for (let attempt = 0; requested.length > 0; attempt++) {
      if (attempt >= 10) throw new Error('The user counters stayed unprocessed after 10 attempts');
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
      const { Responses, UnprocessedKeys } = await this.client.send(
        new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: requested } } }),
      );
      users += (Responses?.[this.tableName] ?? []).reduce((sum, item) => sum + Number(item.users ?? 0), 0);
      requested = UnprocessedKeys?.[this.tableName]?.Keys ?? [];
    }
    return users;
  }

  async dayStats(days: string[]): Promise<DayStats[]> {
    const shards = days.flatMap((day) => Array.from({ length: STAT_SHARDS }, (_, shard) => ({ day, shard })));
    const pages = await inBatches(shards, 16, async ({ day, shard }) => ({
      day,
      items: await queryAll(this.client, {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.dayShard(day, shard) },
      }),
    }));
    const byDay = new Map<string, DayStats>(
      days.map((day) => [day, { day, users: new Map(), models: new Map(), creditsAdded: 0 }]),
    );
    for (const { day, items } of pages) {
      const stats = byDay.get(day);
      if (!stats) continue;
      for (const item of items) {
        const sk = String(item.sk);
        const counts = {
          predictions: Number(item.predictions ?? 0),
          failed: Number(item.failed ?? 0),
          credits: Number(item.credits ?? 0),
        };
        if (sk === 'ADDED') stats.creditsAdded += counts.credits;
        else if (sk.startsWith('USER#')) stats.users.set(sk.slice(5), counts);
        else if (sk.startsWith('MODEL#')) {
          const modelId = sk.slice(6);
          const current = stats.models.get(modelId) ?? {
            predictions: 0,
            failed: 0,
            credits: 0,
            latency: latencyBuckets.map(() => 0),
          };
          current.predictions += counts.predictions;
          current.failed += counts.failed;
          current.credits += counts.credits;
          latencyBuckets.forEach((_, i) => {
            current.latency[i] = (current.latency[i] ?? 0) + Number(item[`lat${i}`] ?? 0);
          });
          stats.models.set(modelId, current);
        }
      }
    }
    return days.map((day) => byDay.get(day) as DayStats);
  }
}
