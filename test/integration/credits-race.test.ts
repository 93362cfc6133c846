/**
 * Concurrent balance changes hitting DynamoDB at once: several independent credits stores (as
 * separate Lambda containers would have, each with its own client and its own per-account queue)
 * spend one balance together. No credit may be spent twice, none lost, the balance never below zero.
 * In a file of its own so that its table holds only these users.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { CreditsStore } from '../../shared/adapters/dynamo/credits-store.ts';
import type { BalanceChange, BalanceChangeResult } from '../../shared/domain/credits.ts';
import { signUp } from '../support/api.ts';
import { useLocalStack } from '../support/local-stack.ts';
import { useReconciler } from '../support/reconcile.ts';

// Every new user starts with exactly 100 credits.
const local = useLocalStack({ environment: { SIGNUP_BONUS: '100' } });
const ledger = useReconciler(local);

const CONTAINERS = 8;
const clients: DynamoDBDocumentClient[] = [];
afterAll(() => {
  for (const client of clients) client.destroy();
});

function containers(): CreditsStore[] {
  return Array.from({ length: CONTAINERS }, () => {
    const client = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: local.stack.endpoint, region: local.stack.region }),
      { marshallOptions: { removeUndefinedValues: true } },
    );
    clients.push(client);
    return new CreditsStore(client, local.stack.resources.tableName);
  });
}

const charge = (userId: string, idempotencyId: string): BalanceChange => ({
  userId,
  kind: 'charge',
  amount: -1,
  idempotencyId,
  requestHash: 'x',
});

function split(results: BalanceChangeResult[]) {
  const applied = results.flatMap((r) => (r.outcome === 'applied' ? [r] : []));
  const refused = results.flatMap((r) => (r.outcome === 'insufficient-credits' ? [r] : []));
  return { applied, refused };
}

describe('concurrent charges against one balance', () => {
  it('200 charges of 1 against 100 credits from 8 containers: exactly 100 apply, 5 rounds in a row', async () => {
    const user = await signUp(local.url, 'race');
    const stores = containers();
    const ROUNDS = 5;
    for (let round = 1; round <= ROUNDS; round++) {
      if (round > 1) {
        // Back to exactly 100 (from 0), through yet another container.
        const refill = await (stores[round % CONTAINERS] as CreditsStore).apply({
          userId: user.id,
          kind: 'grant',
          amount: 100,
          idempotencyId: `refill-${round}`,
          requestHash: 'refill',
        });
        expect(refill).toMatchObject({ outcome: 'applied', balance: 100 });
      }
      const startedAt = performance.now();
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          (stores[i % CONTAINERS] as CreditsStore).apply(charge(user.id, `race-${round}-${i}`)),
        ),
      );
      const elapsed = performance.now() - startedAt;
      console.log(`race round ${round}: 200 concurrent charges in ${elapsed.toFixed(0)} ms`);

      const { applied, refused } = split(results);
      expect(applied, `round ${round}`).toHaveLength(100);
      expect(refused, `round ${round}`).toHaveLength(100);
      expect(applied.every((r) => !r.replayed)).toBe(true);
      // Each applied charge took the balance one step down: every value 99..0 exactly once.
      expect(applied.map((r) => r.entry.balanceAfter).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 100 }, (_, i) => i),
      );
      expect(new Set(applied.map((r) => r.entry.id)).size).toBe(100);
      expect(new Set(applied.map((r) => r.entry.sequence)).size).toBe(100);
      expect(refused.every((r) => r.balance === 0 && r.cost === 1)).toBe(true);

      const result = await ledger.expectReconciled(user.id);
      expect(result.balance).toBe(0);
      // The bonus, the refills, and 100 charges per round.
      expect(result.entries).toBe(1 + (round - 1) + 100 * round);
    }
    const { entries } = await ledger.read(user.id);
    expect(entries.filter((e) => e.kind === 'charge')).toHaveLength(100 * ROUNDS);
  });

  it('charges and top-ups interleaved from 8 containers conserve every credit', async () => {
    const user = await signUp(local.url, 'mixed');
    const stores = containers();
    const TOP_UPS = 20;
    const TOP_UP = 5;
    const CHARGES = 200;
    const changes: BalanceChange[] = [];
    for (let i = 0; i < CHARGES; i++) {
      changes.push(charge(user.id, `mixed-charge-${i}`));
      if (i % (CHARGES / TOP_UPS) === 0) {
        changes.push({
          userId: user.id,
          kind: 'top_up',
          amount: TOP_UP,
          idempotencyId: `mixed-top-up-${i}`,
          requestHash: 'top-up',
        });
      }
    }
    expect(changes.filter((c) => c.kind === 'top_up')).toHaveLength(TOP_UPS);

    const startedAt = performance.now();
    const results = await Promise.all(
      changes.map((change, i) =>
        (stores[i % CONTAINERS] as CreditsStore).apply(change).then((result) => ({ change, result })),
      ),
    );
    console.log(
      `mixed race: ${changes.length} concurrent changes in ${(performance.now() - startedAt).toFixed(0)} ms`,
    );

    const topUps = results.filter(({ change }) => change.kind === 'top_up').map(({ result }) => result);
    const charges = results.filter(({ change }) => change.kind === 'charge').map(({ result }) => result);
    // A credit is never refused.
    expect(topUps.every((r) => r.outcome === 'applied')).toBe(true);
    const { applied, refused } = split(charges);
    expect(applied.length + refused.length).toBe(CHARGES);
    // A charge is refused only when the balance was really 0 at that moment.
    expect(refused.every((r) => r.balance === 0 && r.cost === 1)).toBe(true);

    const result = await ledger.expectReconciled(user.id);
    // Conservation: what came in is what was spent plus what is left.
    expect(applied.length + result.balance).toBe(100 + TOP_UPS * TOP_UP);
    expect(result.balance).toBeGreaterThanOrEqual(0);
    expect(result.entries).toBe(1 + TOP_UPS + applied.length);
    // With credits for every charge, a refusal leaves credits over, one for each.
    expect(result.balance).toBe(refused.length);

    const { entries } = await ledger.read(user.id);
    expect(entries.filter((e) => e.kind === 'top_up').map((e) => e.amount)).toEqual(
      Array(TOP_UPS).fill(TOP_UP),
    );
    expect(entries.filter((e) => e.kind === 'charge')).toHaveLength(applied.length);
  });
});
