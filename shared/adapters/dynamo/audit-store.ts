/** Audit entries by month (admin actions are rare, so a month's partition is never hot), newest first. */
import { type DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { decodeTime, ulid } from 'ulid';
import type { AuditEntry } from '../../domain/audit.ts';
import type { TransactionPart } from '../../domain/transactions.ts';
import { keys } from './keys.ts';
import { part } from './transactions.ts';

const monthOf = (at: Date) => at.toISOString().slice(0, 7);
const MAX_MONTHS_BACK = 36;

export class DynamoAuditStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** A new entry with its id and time; write it with `part` (in a transaction) or `record`. */
  entry(input: Omit<AuditEntry, 'id' | 'at'>, now = new Date()): AuditEntry {
    return { id: ulid(now.getTime()), at: now.toISOString(), ...input };
  }

  part(entry: AuditEntry): TransactionPart {
    return part('audit', {
      Put: { TableName: this.tableName, Item: { ...keys.audit(entry.at.slice(0, 7), entry.id), ...entry } },
    });
  }

  async record(entry: AuditEntry): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...keys.audit(entry.at.slice(0, 7), entry.id), ...entry },
      }),
    );
  }

  /** Entries newest first, before `before` (an entry id) when given. */
  async list(
    limit: number,
    before: string | undefined,
    now = new Date(),
  ): Promise<{ items: AuditEntry[]; last: string | null }> {
    // One entry more than the page, to know whether another page follows (and never end on an empty one).
    const wanted = limit + 1;
    const items: AuditEntry[] = [];
    let month = before ? monthOf(new Date(decodeTime(before))) : monthOf(now);
    for (let step = 0; step < MAX_MONTHS_BACK && items.length < wanted; step++) {
      let start: Record<string, unknown> | undefined;
      do {
        const page = await this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: before ? 'pk = :pk AND sk < :before' : 'pk = :pk',
            ExpressionAttributeValues: { ':pk': `AUDIT#${month}`, ...(before ? { ':before': before } : {}) },
            ScanIndexForward: false,
            Limit: wanted - items.length,
            ExclusiveStartKey: start,
          }),
        );
        for (const item of page.Items ?? []) {
          const { pk: _pk, sk: _sk, ...entry } = item;
          items.push(entry as AuditEntry);
        }
        start = items.length < wanted ? page.LastEvaluatedKey : undefined;
      } while (start);
      const [year = 0, monthNumber = 1] = month.split('-').map(Number);
      month = monthOf(new Date(Date.UTC(year, monthNumber - 2, 1)));
    }
    const pageItems = items.slice(0, limit);
    const last = pageItems.at(-1);
    return { items: pageItems, last: items.length > limit && last ? last.id : null };
  }
}
