/**
 * The DynamoDB user store against a scripted client, for what the local emulator cannot show: real
 * DynamoDB cancels a transaction with `TransactionConflict` while another transaction on the same
 * item (here: the email item of a concurrent sign-up) is in flight; the emulator serialises requests.
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoAccountStore } from '../../shared/adapters/dynamo/account-store.ts';
import { DynamoUserStore } from '../../shared/adapters/dynamo/user-store.ts';
import { ConflictError } from '../../shared/domain/errors.ts';

/** `TransactionConflict@2`: the conflict is on the third item of the transaction, not the email's. */
type Outcome = 'ok' | 'TransactionConflict' | 'TransactionConflict@2' | 'ConditionalCheckFailed';

function cancelled(outcome: Exclude<Outcome, 'ok'>): TransactionCanceledException {
  const [code = '', at = '0'] = outcome.split('@');
  const reasons = ['None', 'None', 'None'].map((none, i) => ({ Code: i === Number(at) ? code : none }));
  return new TransactionCanceledException({
    message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
    $metadata: {},
    CancellationReasons: reasons,
  });
}

/** A client whose n-th call has the n-th outcome (the last one repeats). */
function scriptedClient(outcomes: Outcome[]) {
  const sent: TransactWriteCommand[] = [];
  const client = {
    send: async (command: TransactWriteCommand) => {
      sent.push(command);
      const outcome = outcomes[Math.min(sent.length, outcomes.length) - 1] ?? 'ok';
      if (outcome !== 'ok') throw cancelled(outcome);
      return {};
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, sent };
}

function repository(client: DynamoDBDocumentClient) {
  return new DynamoUserStore(client, 'table', new DynamoAccountStore(client, 'table'));
}

const user = {
  id: '01JTESTUSER',
  email: 'race@example.com',
  role: 'user' as const,
  passwordHash: 'scrypt$12$8$1$salt$key',
  createdAt: '2025-01-01T00:00:00.000Z',
};

describe('registering a user in DynamoDB', () => {
  it('answers conflict when the email item already exists', async () => {
    const { client, sent } = scriptedClient(['ConditionalCheckFailed']);
    await expect(repository(client).register(user, 0)).rejects.toBeInstanceOf(ConflictError);
    expect(sent).toHaveLength(1);
  });

  it('tries again after a TransactionConflict with a concurrent sign-up, then answers conflict for the taken email', async () => {
    const { client, sent } = scriptedClient(['TransactionConflict', 'ConditionalCheckFailed']);
    await expect(repository(client).register(user, 0)).rejects.toBeInstanceOf(ConflictError);
    expect(sent).toHaveLength(2);
    // The retry writes the same email item under the same condition.
    const items = sent.map((command) => command.input.TransactItems?.[0]?.Put);
    expect(items[1]).toEqual(items[0]);
    expect(items[1]).toMatchObject({
      Item: { pk: 'EMAIL#race@example.com', userId: user.id },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
  });

  it('tries again after a TransactionConflict and succeeds if the competing sign-up did not go through', async () => {
    const { client, sent } = scriptedClient(['TransactionConflict', 'TransactionConflict', 'ok']);
    await expect(repository(client).register(user, 0)).resolves.toBeUndefined();
    expect(sent).toHaveLength(3);
  });

  it('tries again after a TransactionConflict on another item of the registration', async () => {
    const { client, sent } = scriptedClient(['TransactionConflict@2', 'ok']);
    await expect(repository(client).register(user, 0)).resolves.toBeUndefined();
    expect(sent).toHaveLength(2);
  });

  it('gives up after a few attempts when the conflict does not clear', async () => {
    const { client, sent } = scriptedClient(['TransactionConflict']);
    await expect(repository(client).register(user, 0)).rejects.toBeInstanceOf(TransactionCanceledException);
    expect(sent.length).toBeGreaterThan(1);
    expect(sent.length).toBeLessThanOrEqual(5);
  });
});
