import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoAccountStore } from '../../shared/adapters/dynamo/account-store.ts';
import { type Account, creditAmount, MAX_TOP_UP, reconcile } from '../../shared/domain/credits.ts';

// reconcile() reads only these fields of the account.
const account = (balance: number, sequence: number) =>
  ({ userId: 'u1', balance, sequence, updatedAt: '2025-01-01T00:00:00.000Z' }) as Account;

/** A consistent ledger built from signed amounts. */
function ledger(amounts: number[]) {
  let running = 0;
  return amounts.map((amount, index) => {
    running += amount;
    return { amount, sequence: index + 1, balanceAfter: running };
  });
}

describe('reconcile', () => {
  it('accepts a consistent account and ledger, in any order', () => {
    const entries = ledger([100, -30, 5, -75]);
    const result = reconcile(account(0, 4), [...entries].reverse());
    expect(result).toEqual({ userId: 'u1', balance: 0, ledgerSum: 0, entries: 4, ok: true, problems: [] });
  });

  it('accepts an empty ledger with a zero balance', () => {
    expect(reconcile(account(0, 0), [])).toMatchObject({ ok: true, entries: 0, ledgerSum: 0 });
  });

  it('detects a gap in the sequence', () => {
    const entries = ledger([10, 20, 30]);
    const gapped = [entries[0], entries[2]].flatMap((e) => (e ? [e] : []));
    // The third entry's balanceAfter is 60 and it is the second stored: amounts sum to 40.
    const result = reconcile(account(40, 2), gapped);
    expect(result.ok).toBe(false);
    expect(result.problems).toContainEqual(expect.stringContaining('gap or repeat at 3'));
  });

  it('detects a repeated sequence number', () => {
    const result = reconcile(account(20, 2), [
      { amount: 10, sequence: 1, balanceAfter: 10 },
      { amount: 10, sequence: 1, balanceAfter: 20 },
    ]);
    expect(result.ok).toBe(false);
    expect(result.problems.join('\n')).toMatch(/gap or repeat at 1/);
  });

  it('detects a wrong balanceAfter', () => {
    const entries = ledger([50, -20, 10]);
    const broken = entries.map((e) => (e.sequence === 2 ? { ...e, balanceAfter: 31 } : e));
    const result = reconcile(account(40, 3), broken);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual(['entry 2 says balance 31, sum is 30']);
  });

  it('detects a balance that differs from the ledger sum', () => {
    const result = reconcile(account(41, 3), ledger([50, -20, 10]));
    expect(result).toMatchObject({ ok: false, balance: 41, ledgerSum: 40 });
    expect(result.problems).toEqual(['balance 41 differs from ledger sum 40']);
  });

  it('detects an account sequence that does not match the number of entries', () => {
    const result = reconcile(account(40, 4), ledger([50, -20, 10]));
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual(['account sequence 4 but 3 entries']);
  });

  it('detects a balance that went below zero on the way', () => {
    const result = reconcile(account(5, 3), ledger([10, -15, 10]));
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual(['balance went below zero at entry 2']);
  });

  it('detects a negative balance', () => {
    const result = reconcile(account(-5, 2), ledger([10, -15]));
    expect(result.ok).toBe(false);
    expect(result.problems).toContain('balance is negative');
    expect(result.problems).toContain('balance went below zero at entry 2');
  });
});

describe('creditAmount', () => {
  const topUp = creditAmount(MAX_TOP_UP);

  it.each([1, 2, 999_999, MAX_TOP_UP])('accepts %s', (value) => {
    expect(topUp.safeParse(value)).toEqual({ success: true, data: value });
  });

  it.each([
    ['zero', 0],
    ['a negative number', -5],
    ['a fraction', 1.5],
    ['a string', '10'],
    ['one over the limit', MAX_TOP_UP + 1],
    ['a number beyond 2^53', 2 ** 53 + 2],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['null', null],
    ['undefined', undefined],
  ])('rejects %s', (_label, value) => {
    expect(topUp.safeParse(value).success).toBe(false);
  });

  it('never allows more than Number.MAX_SAFE_INTEGER, whatever the limit asked for', () => {
    const unlimited = creditAmount(Number.POSITIVE_INFINITY);
    expect(unlimited.safeParse(Number.MAX_SAFE_INTEGER).success).toBe(true);
    expect(unlimited.safeParse(2 ** 53).success).toBe(false);
    expect(unlimited.safeParse(2 ** 53 + 2).success).toBe(false);
  });

  it('says what is wrong', () => {
    const message = (value: unknown) => topUp.safeParse(value).error?.issues[0]?.message;
    expect(message(0)).toBe('must be at least 1');
    expect(message(1.5)).toBe('must be a whole number of credits');
    expect(message(MAX_TOP_UP + 1)).toBe(`must be at most ${MAX_TOP_UP}`);
    expect(message('10')).toBe('must be a number of credits');
  });
});

describe('DynamoAccountStore retries a transaction DynamoDB cancels for a conflicting transaction', () => {
  // Real DynamoDB (not moto, which serialises) cancels a transaction that overlaps another one on the
  // same item with the reason `TransactionConflict`; the SDK does not retry that.
  it('starts again from a fresh read and applies the change once', async () => {
    const account = {
      pk: 'USER#u1',
      sk: 'ACCOUNT',
      userId: 'u1',
      balance: 10,
      sequence: 1,
      revision: 1,
      updatedAt: '2025-01-01T00:00:00.000Z',
    };
    const sent: string[] = [];
    let transactions = 0;
    const client = {
      send: async (command: { constructor: { name: string } }) => {
        sent.push(command.constructor.name);
        if (command instanceof GetCommand) {
          return { Item: command.input.Key?.sk === 'ACCOUNT' ? account : undefined };
        }
        if (command instanceof TransactWriteCommand) {
          transactions++;
          if (transactions === 1) {
            throw new TransactionCanceledException({
              message: 'Transaction cancelled, please refer cancellation reasons for specific reasons',
              $metadata: {},
              CancellationReasons: [{ Code: 'TransactionConflict' }, { Code: 'None' }, { Code: 'None' }],
            });
          }
          return {};
        }
        throw new Error(`unexpected ${command.constructor.name}`);
      },
    };
    const store = new DynamoAccountStore(client as unknown as DynamoDBDocumentClient, 'table');
    const result = await store.apply({
      userId: 'u1',
      kind: 'charge',
      amount: -3,
      idempotencyId: 'i1',
      requestHash: 'h',
    });
    expect(result).toMatchObject({ outcome: 'applied', balance: 7, replayed: false });
    expect(transactions).toBe(2);
    expect(sent).toEqual(['GetCommand', 'TransactWriteCommand', 'GetCommand', 'TransactWriteCommand']);
  });
});
