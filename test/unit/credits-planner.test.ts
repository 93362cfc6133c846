/**
 * The credits planner, called directly (as domain-driven-hexagon tests `Wallet.withdraw`): what a
 * balance change does to an account as it is, before anything is written.
 */
import { describe, expect, it } from 'vitest';
import {
  type AccountState,
  type BalanceChange,
  type BalanceChangePlan,
  noLimits,
  planBalanceChange,
} from '../../shared/domain/credits.ts';

const NOW = new Date('2026-03-15T18:30:00.000Z');
const at = { now: NOW, entryId: '01JENTRY' };

const account = (overrides: Partial<AccountState> = {}): AccountState => ({
  userId: 'u1',
  balance: 100,
  sequence: 4,
  revision: 9,
  limits: noLimits,
  spentToday: 0,
  spentDay: null,
  updatedAt: '2026-03-15T08:00:00.000Z',
  ...overrides,
});

const charge = (amount: number, extra: Partial<BalanceChange> = {}): BalanceChange => ({
  userId: 'u1',
  kind: 'charge',
  amount: -amount,
  idempotencyId: 'i1',
  requestHash: 'h1',
  ...extra,
});

function applied(plan: BalanceChangePlan) {
  if (plan.decision !== 'apply')
    throw new Error(`expected the change to apply, it was refused: ${JSON.stringify(plan)}`);
  return plan;
}

describe('planBalanceChange', () => {
  it('debits a charge: the entry at the next sequence with the exact balance after, the next revision', () => {
    const plan = applied(
      planBalanceChange(account(), charge(30, { predictionId: 'p1', modelId: 'mdl_1' }), at),
    );
    expect(plan.entry).toEqual({
      id: '01JENTRY',
      userId: 'u1',
      kind: 'charge',
      amount: -30,
      balanceAfter: 70,
      sequence: 5,
      predictionId: 'p1',
      modelId: 'mdl_1',
      createdAt: NOW.toISOString(),
    });
    expect(plan.account).toEqual({
      ...account(),
      balance: 70,
      sequence: 5,
      revision: 10,
      spentToday: 30,
      spentDay: '2026-03-15',
      updatedAt: NOW.toISOString(),
    });
    expect(plan.lowBalance).toBeNull();
  });

  it('lets a debit take the balance to exactly zero', () => {
    expect(applied(planBalanceChange(account(), charge(100), at)).account.balance).toBe(0);
  });

  it('never lets a debit take the balance below zero', () => {
    expect(planBalanceChange(account(), charge(101), at)).toEqual({
      decision: 'refuse',
      refusal: { outcome: 'insufficient-credits', balance: 100, cost: 101 },
    });
    expect(planBalanceChange(account({ balance: 0 }), charge(1), at)).toMatchObject({
      decision: 'refuse',
      refusal: { outcome: 'insufficient-credits', balance: 0, cost: 1 },
    });
  });

  it('adds credits whatever the balance, and keeps them out of what was spent today', () => {
    const topUp: BalanceChange = { ...charge(0), kind: 'top_up', amount: 25, actorId: 'u1' };
    const plan = applied(planBalanceChange(account({ spentToday: 7, spentDay: '2026-03-15' }), topUp, at));
    expect(plan.entry).toMatchObject({ kind: 'top_up', amount: 25, balanceAfter: 125, actorId: 'u1' });
    expect(plan.account).toMatchObject({ balance: 125, spentToday: 7, spentDay: '2026-03-15' });
  });

  describe('under a daily spend cap', () => {
    const capped = (spentToday: number, spentDay: string | null = '2026-03-15') =>
      account({ limits: { ...noLimits, dailySpendCap: 50 }, spentToday, spentDay });

    it('allows charges up to the cap, counting what was spent today', () => {
      expect(applied(planBalanceChange(capped(40), charge(10), at)).account).toMatchObject({
        spentToday: 50,
        spentDay: '2026-03-15',
      });
    });

    it('refuses a charge past the cap, saying what the cap leaves', () => {
      expect(planBalanceChange(capped(40), charge(11), at)).toEqual({
        decision: 'refuse',
        refusal: { outcome: 'spend-cap-reached', balance: 100, cost: 11, cap: 50, spentToday: 40 },
      });
    });

    it('starts again on a new UTC day', () => {
      const plan = applied(planBalanceChange(capped(50, '2026-03-14'), charge(50), at));
      expect(plan.account).toMatchObject({ spentToday: 50, spentDay: '2026-03-15' });
    });

    it('does not cap refunds or top-ups', () => {
      const refund: BalanceChange = { ...charge(0), kind: 'refund', amount: 80 };
      expect(applied(planBalanceChange(capped(50), refund, at)).account).toMatchObject({
        balance: 180,
        spentToday: 50,
      });
    });

    it('refuses for the balance first when both run short', () => {
      const plan = planBalanceChange({ ...capped(45), balance: 5 }, charge(10), at);
      expect(plan).toMatchObject({ decision: 'refuse', refusal: { outcome: 'insufficient-credits' } });
    });
  });

  describe('the low-balance threshold', () => {
    const watched = (webhookUrl: string | null = null) =>
      account({ limits: { dailySpendCap: null, lowBalanceThreshold: 50, webhookUrl } });

    it('is crossed by a change from at or above it to below it', () => {
      expect(applied(planBalanceChange(watched(), charge(51), at)).lowBalance).toEqual({
        threshold: 50,
        deliver: false,
      });
      expect(
        applied(planBalanceChange({ ...watched(), balance: 50 }, charge(1), at)).lowBalance,
      ).toMatchObject({ threshold: 50 });
    });

    it('asks for delivery when a webhook is set', () => {
      const plan = applied(planBalanceChange(watched('https://example.com/hook'), charge(60), at));
      expect(plan.lowBalance).toEqual({ threshold: 50, deliver: true });
    });

    it('is not crossed again below it, nor by a change that stays at or above it', () => {
      expect(applied(planBalanceChange({ ...watched(), balance: 40 }, charge(5), at)).lowBalance).toBeNull();
      expect(applied(planBalanceChange(watched(), charge(50), at)).lowBalance).toBeNull();
      const topUp: BalanceChange = { ...charge(0), kind: 'top_up', amount: 5 };
      expect(applied(planBalanceChange({ ...watched(), balance: 10 }, topUp, at)).lowBalance).toBeNull();
    });
  });
});
