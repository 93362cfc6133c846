import { type DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { TransactionConditionFailedError } from '../../domain/errors.ts';
import { cancellationReasons } from './errors.ts';

type TransactItem = NonNullable<
  ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']
>[number];

/** Writes parts built by the adapters (records, counters, markers) all together or not at all. */
export class DynamoTransactions {
  constructor(private readonly client: DynamoDBDocumentClient) {}

  async write(parts: unknown[]): Promise<void> {
    if (parts.length === 0) return;
    try {
      await this.client.send(new TransactWriteCommand({ TransactItems: parts as TransactItem[] }));
    } catch (error) {
      const reasons = cancellationReasons(error);
      const failed = reasons?.findIndex((r) => r.Code === 'ConditionalCheckFailed') ?? -1;
      if (failed >= 0) throw new TransactionConditionFailedError(failed, undefined);
      throw error;
    }
  }
}
