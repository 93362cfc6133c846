/**
 * The scheduled reconciliation against the real table: each run checks balance = sum of ledger for
 * the accounts whose balance changed since the previous run (found through the gsi2 index that
 * every balance change stamps), re-checking a five-minute overlap before that run's start.
 *
 * The tests in this file share the table's reconciliation state, so they run in order: the first
 * runs the real handler on the real clock, later ones pass `reconcileChangedAccounts` a clock of
 * their own that starts an hour after the activity.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { lambdaContext } from '../../infra/local/lambda-context.ts';
import { functions } from '../../shared/api/functions.ts';
import { services } from '../../shared/app/services.ts';
import { type ReconcilerPort, reconcileChangedAccounts } from '../../shared/credits/reconciler.ts';
import { type SignedInUser, signIn, signUp } from '../support/api.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { useReconciler } from '../support/reconcile.ts';

const local = useLocalStack({ environment: { SIGNUP_BONUS: '100' } });
const ledger = useReconciler(local);

const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];
const MINUTE = 60_000;
const OVERLAP_MS = 5 * MINUTE;

/** The reconciler's reads, recording which accounts a run looked at. */
function recordingPort() {
  const store = services().reconcilerStore;
  const checked: string[] = [];
  const sinces: string[] = [];
  const port: ReconcilerPort = {
    accountsChangedSince: (since) => {
      sinces.push(since);
      return store.accountsChangedSince(since);
    },
    getAccount: (userId) => {
      checked.push(userId);
      return store.getAccount(userId);
    },
    allLedgerEntries: (userId) => store.allLedgerEntries(userId),
    lastReconciliation: () => store.lastReconciliation(),
    saveReconciliation: (at) => store.saveReconciliation(at),
  };
  return { port, checked, sinces };
}

async function runAt(at: number) {
  const recording = recordingPort();
  const result = await reconcileChangedAccounts(recording.port, () => new Date(at));
  return { ...result, checkedUsers: recording.checked.sort(), since: recording.sinces[0] };
}

/** Marks an account as changed at `at`, as a balance change would stamp it. */
function changedAtKey(userId: string, at: number) {
  return `${new Date(at).toISOString()}#${userId}`;
}

let admin: SignedInUser;
/** Users whose balance changed (a charge, a top-up, a grant, a refund). */
const changed: Record<'charged' | 'toppedUp' | 'granted' | 'refunded', SignedInUser> = {} as never;
/** Users whose balance never changed after signing up (one only changed a limit). */
const unchanged: Record<'signedUp' | 'limitsOnly', SignedInUser> = {} as never;
/** The first run of the own clock: an hour after all the activity. */
let clock = 0;

beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
  const [charged, toppedUp, granted, refunded, signedUp, limitsOnly] = await Promise.all(
    ['charged', 'topped-up', 'granted', 'refunded', 'signed-up', 'limits-only'].map((label) =>
      signUp(local.url, `reconcile-${label}`),
    ),
  );
  Object.assign(changed, { charged, toppedUp, granted, refunded });
  Object.assign(unchanged, { signedUp, limitsOnly });

  const predict = (user: SignedInUser, rows: number) =>
    user.api.post('/v1/models/iris/predictions', {
      inputs: { input: Array.from({ length: rows }, () => IRIS_ROW) },
    });
  expect((await predict(charged as SignedInUser, 3)).status).toBe(201);
  expect((await predict(charged as SignedInUser, 2)).status).toBe(201);
  expect((await toppedUp?.api.post('/v1/account/top-ups', { amount: 25 }))?.status).toBe(201);
  const grant = await admin.api.post(`/v1/admin/users/${granted?.id}/grants`, { amount: 7, reason: 'test' });
  expect(grant.status).toBe(201);
  const prediction = await predict(refunded as SignedInUser, 4);
  expect(prediction.status).toBe(201);
  const refund = await admin.api.post(`/v1/admin/predictions/${prediction.body.id}/refunds`, {
    reason: 'test',
  });
  expect(refund.status).toBe(201);
  expect((await limitsOnly?.api.put('/v1/account/limits', { dailySpendCap: 10 }))?.status).toBe(200);
  clock = Date.now() + 60 * MINUTE;
});

const ids = (users: Record<string, SignedInUser>) =>
  Object.values(users)
    .map((u) => u.id)
    .sort();

describe('the scheduled reconciliation', () => {
  it('first checks every account opened or changed, and finds no mismatch after normal activity', async () => {
    const recording = recordingPort();
    // The scheduled function itself, on the real clock; it reads the same store.
    const { handler } = await import('../../functions/reconciler/handler.ts');
    const result = await handler({}, lambdaContext('reconciler', functions.reconciler));
    expect(result.mismatches).toBe(0);

    // The same run through a recording port on the same state: since the handler's start minus the
    // overlap, so the same accounts: every one whose balance changed, and every account opened
    // (its signup bonus is a balance change too), whatever else happened to it.
    const again = await reconcileChangedAccounts(recording.port);
    expect(again.mismatches).toEqual([]);
    expect(again.checked).toBe(result.checked);
    expect(recording.checked).toEqual(expect.arrayContaining([...ids(changed), ...ids(unchanged)]));
    expect(recording.checked).toHaveLength(result.checked);
    // The accounts left out still reconcile: nothing was missed that could be wrong.
    for (const user of [...Object.values(changed), ...Object.values(unchanged)])
      await ledger.expectReconciled(user.id);
  });

  it('re-checks only the overlap before the previous run, so a quiet hour later it checks nothing', async () => {
    // An hour on, the last run (just now) is within the overlap window: the same accounts again.
    const first = await runAt(clock);
    expect(Date.parse(first.since ?? '')).toBeLessThanOrEqual(Date.now() - OVERLAP_MS + 5_000);
    expect(first.checkedUsers).toEqual(expect.arrayContaining([...ids(changed), ...ids(unchanged)]));
    expect(first.mismatches).toEqual([]);

    // Another hour on with no activity: nothing changed after the previous run's start minus 5 min.
    const quiet = await runAt(clock + 60 * MINUTE);
    expect(quiet.since).toBe(new Date(clock - OVERLAP_MS).toISOString());
    expect(quiet.checked).toBe(0);
    expect(quiet.checkedUsers).toEqual([]);
    expect(quiet.mismatches).toEqual([]);
  });

  it('reports a tampered balance as one mismatch for that user, once', async () => {
    const victim = changed.charged;
    const before = await ledger.read(victim.id);
    const tamperedAt = clock + 90 * MINUTE;
    await ledger.client().send(
      new UpdateCommand({
        TableName: local.stack.resources.tableName,
        Key: { pk: `USER#${victim.id}`, sk: 'ACCOUNT' },
        UpdateExpression: 'SET balance = balance + :extra, gsi2sk = :changedAt',
        ExpressionAttributeValues: { ':extra': 1000, ':changedAt': changedAtKey(victim.id, tamperedAt) },
      }),
    );

    const run = await runAt(clock + 120 * MINUTE);
    expect(run.checkedUsers).toEqual([victim.id]);
    expect(run.mismatches).toHaveLength(1);
    const [mismatch] = run.mismatches;
    expect(mismatch).toMatchObject({
      userId: victim.id,
      balance: (before.account?.balance ?? 0) + 1000,
      ledgerSum: before.account?.balance,
      entries: before.entries.length,
      ok: false,
    });
    expect(mismatch?.problems).toEqual([
      `balance ${(before.account?.balance ?? 0) + 1000} differs from ledger sum ${before.account?.balance}`,
    ]);

    // The next run is past the overlap of that change: reported once, not at every run.
    const next = await runAt(clock + 180 * MINUTE);
    expect(next.checked).toBe(0);
    expect(next.mismatches).toEqual([]);
  });

  it('re-checks an account stamped within the overlap before the previous run started', async () => {
    // A change committed while the previous run was going, stamped two minutes before its start.
    const lastRun = clock + 180 * MINUTE;
    const late = changed.toppedUp;
    await ledger.client().send(
      new UpdateCommand({
        TableName: local.stack.resources.tableName,
        Key: { pk: `USER#${late.id}`, sk: 'ACCOUNT' },
        UpdateExpression: 'SET gsi2sk = :changedAt',
        ExpressionAttributeValues: { ':changedAt': changedAtKey(late.id, lastRun - 2 * MINUTE) },
      }),
    );
    // And one stamped before the overlap: the previous run saw it.
    const early = changed.granted;
    await ledger.client().send(
      new UpdateCommand({
        TableName: local.stack.resources.tableName,
        Key: { pk: `USER#${early.id}`, sk: 'ACCOUNT' },
        UpdateExpression: 'SET gsi2sk = :changedAt',
        ExpressionAttributeValues: { ':changedAt': changedAtKey(early.id, lastRun - 6 * MINUTE) },
      }),
    );
    const run = await runAt(lastRun + 60 * MINUTE);
    expect(run.since).toBe(new Date(lastRun - OVERLAP_MS).toISOString());
    expect(run.checkedUsers).toEqual([late.id]);
    expect(run.mismatches).toEqual([]);
  });
});
