/**
 * The rules behind reports and notifications, called directly: report day ranges, grouping the
 * per-(day, model) counters, latency percentiles from a histogram, CSV quoting, Standard Webhooks
 * signatures and the webhook retry backoff.
 */
import { createHmac } from 'node:crypto';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { DynamoUsageStore, STAT_SHARDS } from '../../shared/adapters/dynamo/usage-store.ts';
import { ValidationError } from '../../shared/domain/errors.ts';
import {
  signWebhook,
  WEBHOOK_SECRET_PREFIX,
  webhookBackoffSeconds,
} from '../../shared/domain/notifications.ts';
import {
  dayRange,
  groupUsage,
  latencyBucket,
  latencyBuckets,
  percentileFromHistogram,
  toCsv,
  type UsageRecord,
} from '../../shared/domain/usage.ts';

const TODAY = new Date('2026-03-15T18:30:00.000Z');

function validationErrorOf(run: () => unknown): ValidationError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}

describe('dayRange', () => {
  it('covers the last 30 days up to today (UTC) when no dates are given', () => {
    const range = dayRange({}, TODAY);
    expect(range.from).toBe('2026-02-14');
    expect(range.to).toBe('2026-03-15');
    expect(range.days).toHaveLength(30);
    expect(range.days[0]).toBe('2026-02-14');
    expect(range.days.at(-1)).toBe('2026-03-15');
  });

  it('uses the UTC day of `today`, not the local one', () => {
    expect(dayRange({}, new Date('2026-03-15T23:59:59.999Z')).to).toBe('2026-03-15');
    expect(dayRange({}, new Date('2026-03-16T00:00:00.000Z')).to).toBe('2026-03-16');
  });

  it('counts back 29 days from a given `to` and up to today from a given `from`', () => {
    expect(dayRange({ to: '2026-01-10' }, TODAY)).toMatchObject({ from: '2025-12-12', to: '2026-01-10' });
    const fromOnly = dayRange({ from: '2026-03-10' }, TODAY);
    expect(fromOnly).toMatchObject({ from: '2026-03-10', to: '2026-03-15' });
    expect(fromOnly.days).toEqual([
      '2026-03-10',
      '2026-03-11',
      '2026-03-12',
      '2026-03-13',
      '2026-03-14',
      '2026-03-15',
    ]);
  });

  it('lists every day of an explicit range inclusively, across month ends and leap days', () => {
    expect(dayRange({ from: '2024-02-27', to: '2024-03-01' }, TODAY).days).toEqual([
      '2024-02-27',
      '2024-02-28',
      '2024-02-29',
      '2024-03-01',
    ]);
    expect(dayRange({ from: '2026-03-15', to: '2026-03-15' }, TODAY).days).toEqual(['2026-03-15']);
  });

  it('accepts a range of exactly 366 days and refuses 367', () => {
    expect(dayRange({ from: '2024-01-01', to: '2024-12-31' }, TODAY).days).toHaveLength(366);
    const error = validationErrorOf(() => dayRange({ from: '2025-01-01', to: '2026-01-02' }, TODAY));
    expect(error.code).toBe('validation-failed');
    expect(error.errors?.[0]?.message).toMatch(/367 days/);
  });

  it('refuses dates that do not exist, naming the field', () => {
    const error = validationErrorOf(() => dayRange({ from: '2026-02-30', to: '2026-03-01' }, TODAY));
    expect(error.errors).toEqual([{ path: 'query.from', message: 'is not a real date' }]);
    expect(validationErrorOf(() => dayRange({ to: '2025-02-29' }, TODAY)).errors).toEqual([
      { path: 'query.to', message: 'is not a real date' },
    ]);
    expect(validationErrorOf(() => dayRange({ from: '2026-13-01', to: '2026-14-01' }, TODAY)).errors).toEqual(
      [
        { path: 'query.from', message: 'is not a real date' },
        { path: 'query.to', message: 'is not a real date' },
      ],
    );
    expect(() => dayRange({ from: 'yesterday' }, TODAY)).toThrow(ValidationError);
  });

  it('refuses a `to` that is no date at all without a `from`, blaming only `to`', () => {
    for (const to of ['2026-3-1', 'today', '']) {
      expect(validationErrorOf(() => dayRange({ to }, TODAY)).errors, to).toEqual([
        { path: 'query.to', message: 'is not a real date' },
      ]);
    }
  });

  it('refuses `from` after `to`', () => {
    const error = validationErrorOf(() => dayRange({ from: '2026-03-02', to: '2026-03-01' }, TODAY));
    expect(error.errors).toEqual([{ path: 'query.from', message: 'is after to' }]);
  });
});

describe('groupUsage', () => {
  const days = ['2026-03-01', '2026-03-02', '2026-03-03'];
  const records: UsageRecord[] = [
    { day: '2026-03-01', modelId: 'iris-1', predictions: 4, failed: 1, credits: 4 },
    { day: '2026-03-01', modelId: 'digits-1', predictions: 2, failed: 0, credits: 6 },
    { day: '2026-03-03', modelId: 'iris-1', predictions: 1, failed: 3, credits: 1 },
    { day: '2026-03-03', modelId: 'broken-1', predictions: 0, failed: 2, credits: 0 },
  ];

  it('by day lists every day of the range in order, days without usage as zeros', () => {
    const { items, totals } = groupUsage(records, 'day', days);
    expect(items).toEqual([
      { period: '2026-03-01', predictions: 6, failed: 1, credits: 10 },
      { period: '2026-03-02', predictions: 0, failed: 0, credits: 0 },
      { period: '2026-03-03', predictions: 1, failed: 5, credits: 1 },
    ]);
    expect(totals).toEqual({ predictions: 7, failed: 6, credits: 11 });
  });

  it('by day with no records at all is a row of zeros per day', () => {
    const { items, totals } = groupUsage([], 'day', days);
    expect(items).toEqual(days.map((period) => ({ period, predictions: 0, failed: 0, credits: 0 })));
    expect(totals).toEqual({ predictions: 0, failed: 0, credits: 0 });
  });

  it('by model sums each model over the days, most credits first (ties by model id)', () => {
    const { items, totals } = groupUsage(records, 'model', days);
    expect(items).toEqual([
      { modelId: 'digits-1', predictions: 2, failed: 0, credits: 6 },
      { modelId: 'iris-1', predictions: 5, failed: 4, credits: 5 },
      { modelId: 'broken-1', predictions: 0, failed: 2, credits: 0 },
    ]);
    expect(totals).toEqual({ predictions: 7, failed: 6, credits: 11 });
    const tie = groupUsage(
      [
        { day: '2026-03-01', modelId: 'b', predictions: 1, failed: 0, credits: 2 },
        { day: '2026-03-01', modelId: 'a', predictions: 2, failed: 0, credits: 2 },
      ],
      'model',
      days,
    );
    expect(tie.items.map((i) => i.modelId)).toEqual(['a', 'b']);
  });

  it('by model with no records is empty, with zero totals', () => {
    expect(groupUsage([], 'model', days)).toEqual({
      items: [],
      totals: { predictions: 0, failed: 0, credits: 0 },
    });
  });

  it('does not change the records it is given', () => {
    const copy = structuredClone(records);
    groupUsage(records, 'day', days);
    groupUsage(records, 'model', days);
    expect(records).toEqual(copy);
  });
});

describe('latency histogram', () => {
  it('puts a latency in the first bucket whose upper bound holds it', () => {
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(1)).toBe(0);
    expect(latencyBucket(1.5)).toBe(1);
    expect(latencyBucket(50)).toBe(latencyBuckets.indexOf(50));
    expect(latencyBucket(51)).toBe(latencyBuckets.indexOf(100));
    expect(latencyBucket(10 ** 9)).toBe(latencyBuckets.length - 1);
  });

  it('answers null without data', () => {
    expect(percentileFromHistogram([], 95)).toBeNull();
    expect(
      percentileFromHistogram(
        latencyBuckets.map(() => 0),
        50,
      ),
    ).toBeNull();
  });

  it('answers the upper bound of the bucket the percentile falls in', () => {
    const counts = latencyBuckets.map(() => 0);
    counts[latencyBucket(3)] = 50; // 50 samples up to 5 ms
    counts[latencyBucket(40)] = 45; // 45 samples up to 50 ms
    counts[latencyBucket(700)] = 5; // 5 samples up to 1000 ms
    expect(percentileFromHistogram(counts, 50)).toBe(5);
    expect(percentileFromHistogram(counts, 51)).toBe(50);
    expect(percentileFromHistogram(counts, 95)).toBe(50);
    expect(percentileFromHistogram(counts, 96)).toBe(1000);
    expect(percentileFromHistogram(counts, 100)).toBe(1000);
  });

  it('reports the largest finite bound for samples in the open last bucket', () => {
    const counts = latencyBuckets.map(() => 0);
    counts[latencyBuckets.length - 1] = 3;
    expect(percentileFromHistogram(counts, 50)).toBe(latencyBuckets.at(-2));
  });
});

describe('toCsv', () => {
  it('writes a header and one CRLF-terminated line per row, in the given column order', () => {
    const csv = toCsv(
      ['b', 'a'],
      [
        { a: 1, b: 'x' },
        { a: 2, b: 'y', ignored: 'z' },
      ],
    );
    expect(csv).toBe('b,a\r\nx,1\r\ny,2\r\n');
  });

  it('quotes fields with commas, quotes, CR or LF as RFC 4180 asks, and leaves others bare', () => {
    const rows = [
      { id: 'plain', text: 'a, b' },
      { id: 'quote', text: 'say "hi"' },
      { id: 'newline', text: 'line1\nline2' },
      { id: 'cr', text: 'a\rb' },
    ];
    const csv = toCsv(['id', 'text'], rows);
    expect(csv.split('\r\n')[1]).toBe('plain,"a, b"');
    expect(csv.split('\r\n')[2]).toBe('quote,"say ""hi"""');
    expect(parse(csv, { columns: true })).toEqual(rows);
  });

  it('writes missing and null values as empty fields and objects as JSON', () => {
    const csv = toCsv(['a', 'b', 'c', 'd'], [{ a: null, c: { k: [1, 2] }, d: false }]);
    expect(csv).toBe('a,b,c,d\r\n,,"{""k"":[1,2]}",false\r\n');
    expect(parse(csv, { columns: true })).toEqual([{ a: '', b: '', c: '{"k":[1,2]}', d: 'false' }]);
  });

  it('is just the header line without rows', () => {
    expect(toCsv(['period', 'credits'], [])).toBe('period,credits\r\n');
  });
});

describe('signWebhook', () => {
  it('matches the Standard Webhooks reference vector', () => {
    // The example of the Standard Webhooks specification (and the Svix libraries' tests).
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
    const timestamp = 1614265330;
    const body = '{"test": 2432232314}';
    // Computed here independently: HMAC-SHA256 keyed with the base64-decoded part after `whsec_`.
    const expected = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
      .update(`${id}.${timestamp}.${body}`)
      .digest('base64');
    expect(expected).toBe('g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    expect(signWebhook(secret, id, timestamp, body)).toEqual({
      'webhook-id': id,
      'webhook-timestamp': '1614265330',
      'webhook-signature': `v1,${expected}`,
    });
  });

  it('signs the exact body: any change to id, timestamp, body or secret changes the signature', () => {
    const secret = `${WEBHOOK_SECRET_PREFIX}${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
    const base = signWebhook(secret, 'n1', 1_700_000_000, '{"a":1}')['webhook-signature'];
    expect(base).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(signWebhook(secret, 'n2', 1_700_000_000, '{"a":1}')['webhook-signature']).not.toBe(base);
    expect(signWebhook(secret, 'n1', 1_700_000_001, '{"a":1}')['webhook-signature']).not.toBe(base);
    expect(signWebhook(secret, 'n1', 1_700_000_000, '{"a":2}')['webhook-signature']).not.toBe(base);
    const other = `${WEBHOOK_SECRET_PREFIX}${Buffer.from('another secret of 32 bytes......').toString('base64')}`;
    expect(signWebhook(other, 'n1', 1_700_000_000, '{"a":1}')['webhook-signature']).not.toBe(base);
  });
});

describe('webhookBackoffSeconds', () => {
  it('waits 15 s after the first failed attempt and doubles after each further one', () => {
    expect(webhookBackoffSeconds(1)).toBe(15);
    expect(webhookBackoffSeconds(2)).toBe(30);
    expect(webhookBackoffSeconds(3)).toBe(60);
    expect(webhookBackoffSeconds(4)).toBe(120);
    expect(webhookBackoffSeconds(0)).toBe(15);
  });

  it('never decreases and is capped at an hour', () => {
    const delays = Array.from({ length: 30 }, (_, i) => webhookBackoffSeconds(i + 1));
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1] ?? 0);
    expect(Math.max(...delays)).toBe(3600);
    expect(webhookBackoffSeconds(9)).toBe(3600);
    expect(webhookBackoffSeconds(1000)).toBe(3600);
  });
});

describe('DynamoUsageStore (with a stand-in client)', () => {
  /** A client that answers each command with the next of `answers` and records what it was sent. */
  function fakeClient(answer: (input: any, name: string) => unknown) {
    const sent: { name: string; input: any }[] = [];
    const client = {
      send: async (command: { input: unknown; constructor: { name: string } }) => {
        sent.push({ name: command.constructor.name, input: command.input });
        return answer(command.input, command.constructor.name);
      },
    };
    return { client: client as unknown as DynamoDBDocumentClient, sent };
  }

  it('counts users over every shard, asking again for keys BatchGetItem left unprocessed', async () => {
    let call = 0;
    const { client, sent } = fakeClient((input) => {
      call++;
      const requested = input.RequestItems.t.Keys as { pk: string }[];
      // The first answer leaves three shards unprocessed, as DynamoDB does under throttling.
      const answered = call === 1 ? requested.slice(0, STAT_SHARDS - 3) : requested;
      return {
        Responses: { t: answered.map((key, i) => ({ ...key, users: i + 1 })) },
        UnprocessedKeys: call === 1 ? { t: { Keys: requested.slice(STAT_SHARDS - 3) } } : {},
      };
    });
    const store = new DynamoUsageStore(client, 't');
    // Shards 1..5 on the first call, then 1..3 for the three left over.
    expect(await store.userCount()).toBe(1 + 2 + 3 + 4 + 5 + (1 + 2 + 3));
    expect(sent).toHaveLength(2);
    expect(sent[0]?.input.RequestItems.t.Keys).toHaveLength(STAT_SHARDS);
    expect(sent[1]?.input.RequestItems.t.Keys).toHaveLength(3);
  });

  it('sums a day’s shards: users, models with their latency histograms, and credits added', async () => {
    const { client } = fakeClient((input) => {
      const pk = input.ExpressionAttributeValues[':pk'] as string;
      const shard = Number(pk.split('#S')[1]);
      if (!pk.startsWith('DAY#2026-03-01#')) return { Items: [] };
      const items: Record<string, unknown>[] = [
        { pk, sk: 'MODEL#iris-1', predictions: 2, failed: 1, credits: 2, lat0: 1, lat3: shard === 0 ? 1 : 0 },
        { pk, sk: 'ADDED', credits: 10 },
      ];
      if (shard === 2) items.push({ pk, sk: 'USER#u1', predictions: 4, failed: 0, credits: 9 });
      return { Items: items };
    });
    const store = new DynamoUsageStore(client, 't');
    const [day, empty] = await store.dayStats(['2026-03-01', '2026-03-02']);
    expect(day?.day).toBe('2026-03-01');
    expect(day?.creditsAdded).toBe(10 * STAT_SHARDS);
    expect(day?.users).toEqual(new Map([['u1', { predictions: 4, failed: 0, credits: 9 }]]));
    const iris = day?.models.get('iris-1');
    expect(iris).toMatchObject({
      predictions: 2 * STAT_SHARDS,
      failed: STAT_SHARDS,
      credits: 2 * STAT_SHARDS,
    });
    expect(iris?.latency[0]).toBe(STAT_SHARDS);
    expect(iris?.latency[3]).toBe(1);
    expect(iris?.latency).toHaveLength(latencyBuckets.length);
    expect(empty).toEqual({ day: '2026-03-02', users: new Map(), models: new Map(), creditsAdded: 0 });
  });

  it('keeps a user on one day shard and writes the per-user (day, model) counters', () => {
    const store = new DynamoUsageStore(fakeClient(() => ({})).client, 't');
    const delta = {
      userId: 'u1',
      modelId: 'iris-1',
      day: '2026-03-01',
      predictions: 3,
      failed: 1,
      credits: 3,
    };
    const shardsOfUser = new Set(
      Array.from(
        { length: 20 },
        () => (store.usageParts(delta).map((p) => p.item)[1] as any).Update.Key.pk as string,
      ),
    );
    expect(shardsOfUser.size).toBe(1);
    const [perUser, , perModel] = store.usageParts({ ...delta, latencyMs: 7 }).map((p) => p.item) as any[];
    expect(perUser.Update.Key).toEqual({ pk: 'USER#u1', sk: 'USAGE#2026-03-01#iris-1' });
    expect(perUser.Update.ExpressionAttributeValues).toMatchObject({
      ':a0': 3,
      ':a1': 1,
      ':a2': 3,
      ':s0': '2026-03-01',
      ':s1': 'iris-1',
    });
    expect(perModel.Update.Key.sk).toBe('MODEL#iris-1');
    expect(perModel.Update.ExpressionAttributeNames).toMatchObject({ '#a3': `lat${latencyBucket(7)}` });
  });
});
