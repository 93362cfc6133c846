/**
 * Low-balance webhooks end to end: a charge that crosses the threshold records a notification and
 * queues it; the webhook dispatcher (invoked by the queue pump, as Lambda's SQS event source would)
 * posts it to a receiver on this machine, signed as Standard Webhooks. The signature is checked
 * here with node:crypto alone. Failed deliveries come back with backoff, then are marked failed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { lambdaContext } from '../../infra/local/lambda-context.ts';
import type { InvocationReport } from '../../infra/local/queue-pump.ts';
import { functions } from '../../shared/api/functions.ts';
import { type Api, type SignedInUser, signUp } from '../support/api.ts';
import { useLocalStack } from '../support/local-stack.ts';
import { useReconciler } from '../support/reconcile.ts';

// A short visibility timeout: a retry that came back by the queue's own timeout (instead of the
// dispatcher's backoff) would show up within seconds.
const local = useLocalStack({ environment: { SIGNUP_BONUS: '100' }, visibilityTimeoutSeconds: 1 });
const ledger = useReconciler(local);

const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** Set once the receiver has answered. */
  answeredWith?: number;
}

interface Receiver {
  url: string;
  received: Received[];
  /** Statuses to answer with, in order; 200 once they run out. */
  plan: number[];
  /** Holds every answer until `open()` (the receiver still records the request at once). */
  hold(): void;
  open(): void;
  close(): Promise<void>;
}

const servers: Server[] = [];
afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  let release: (() => void) | undefined;
  let gate: Promise<void> = Promise.resolve();
  const receiver: Receiver = {
    url: '',
    received,
    plan: [],
    hold() {
      gate = new Promise((resolve) => {
        release = resolve;
      });
    },
    open() {
      release?.();
    },
    async close() {
      release?.();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const entry: Received = {
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      received.push(entry);
      await gate;
      const status = receiver.plan.shift() ?? 200;
      entry.answeredWith = status;
      response.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'nope');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/credits`;
  return receiver;
}

/** Every webhook-dispatcher invocation the pump makes during the test. */
const dispatches: InvocationReport[] = [];
const onInvocation = (report: InvocationReport) => {
  if (report.worker === 'webhook-dispatcher') dispatches.push(report);
};
let listening = false;
function watchDispatcher() {
  if (!listening) {
    local.stack.pump.events.on('invocation', onInvocation);
    listening = true;
  }
}
afterEach(() => {
  dispatches.length = 0;
});
afterAll(() => {
  if (listening) local.stack.pump.events.off('invocation', onInvocation);
});

function recordsFor(notificationId: string): { report: InvocationReport; record: SQSRecord }[] {
  return dispatches.flatMap((report) =>
    report.event.Records.filter((r) => JSON.parse(r.body).notificationId === notificationId).map(
      (record) => ({ report, record }),
    ),
  );
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function notificationsOf(api: Api): Promise<any[]> {
  const me = await api.get('/v1/users/me');
  expect(me.status).toBe(200);
  return me.body.notifications;
}

/** The notification item as stored (attempts and the last error are not in any answer). */
async function storedNotification(userId: string, notificationId: string) {
  const { Item } = await ledger.client().send(
    new GetCommand({
      TableName: local.stack.resources.tableName,
      Key: { pk: `USER#${userId}`, sk: `NOTIF#${notificationId}` },
      ConsistentRead: true,
    }),
  );
  return Item;
}

/** A user whose webhook points at the receiver, with a threshold a 3-row iris prediction crosses. */
async function userWithWebhook(receiver: Receiver, label: string) {
  const user = await signUp(local.url, label);
  const limits = await user.api.put('/v1/account/limits', {
    lowBalanceThreshold: 98,
    webhookUrl: receiver.url,
  });
  expect(limits.status, JSON.stringify(limits.body)).toBe(200);
  const secret = limits.body.webhookSecret as string;
  expect(secret).toMatch(/^whsec_/);
  return { user, secret };
}

async function crossThreshold(user: SignedInUser) {
  const response = await user.api.post('/v1/models/iris/predictions', {
    inputs: { input: [IRIS_ROW, IRIS_ROW, IRIS_ROW] },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  expect(response.body.balance).toBe(97);
  return response;
}

/** Verifies a Standard Webhooks signature independently of the service's code. */
function verifySignature(secret: string, received: Received): boolean {
  const id = String(received.headers['webhook-id']);
  const timestamp = String(received.headers['webhook-timestamp']);
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${received.body}`).digest();
  // The header may carry several space-separated signatures; one valid v1 signature suffices.
  return String(received.headers['webhook-signature'])
    .split(' ')
    .some((candidate) => {
      const [version, signature = ''] = candidate.split(',');
      const given = Buffer.from(signature, 'base64');
      return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
    });
}

function dispatcherEvent(record: SQSRecord, receiveCount: number): SQSEvent {
  return {
    Records: [
      { ...record, attributes: { ...record.attributes, ApproximateReceiveCount: String(receiveCount) } },
    ],
  };
}

/**
 * Invokes the dispatcher as Lambda's event source would. With every record failed, Powertools
 * throws (the whole batch is retried); that is reported here as `all-failed`.
 */
async function invokeDispatcher(event: SQSEvent) {
  const { handler } = await import('../../functions/webhook-dispatcher/handler.ts');
  try {
    return await handler(event, lambdaContext('webhook-dispatcher', functions['webhook-dispatcher']));
  } catch (error) {
    expect((error as Error).name).toBe('FullBatchFailureError');
    return 'all-failed' as const;
  }
}

describe('the low-balance webhook', () => {
  it('is posted by the dispatcher after the request returned, signed as Standard Webhooks', async () => {
    watchDispatcher();
    const receiver = await startReceiver();
    const { user, secret } = await userWithWebhook(receiver, 'hook');

    // The receiver holds its answer until the 201 is in: a webhook called from inside the request
    // would hold the request until the sender's 5 s timeout.
    receiver.hold();
    const started = Date.now();
    const response = await crossThreshold(user);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(receiver.received.every((r) => r.answeredWith === undefined)).toBe(true);

    const [notification] = await notificationsOf(user.api);
    expect(notification).toMatchObject({
      type: 'low_balance',
      balance: 97,
      threshold: 98,
      delivery: 'pending',
    });

    const received = await waitFor('the webhook', () => receiver.received[0]);
    receiver.open();
    const delivered = await waitFor('delivery', async () => {
      const [latest] = await notificationsOf(user.api);
      return latest?.delivery === 'delivered' ? latest : undefined;
    });
    expect(delivered.id).toBe(notification.id);
    expect(receiver.received).toHaveLength(1);
    expect(received.at).toBeGreaterThanOrEqual(started);

    // The call came from a webhook-dispatcher invocation fed by the queue, which succeeded.
    const [dispatch] = await waitFor('the dispatcher invocation', () => {
      const found = recordsFor(notification.id);
      return found.length > 0 ? found : undefined;
    });
    expect(dispatch?.record.eventSource).toBe('aws:sqs');
    expect(JSON.parse(dispatch?.record.body ?? '{}')).toEqual({
      userId: user.id,
      notificationId: notification.id,
    });
    expect(dispatch?.report.failedMessageIds).toEqual([]);

    // Standard Webhooks: id, timestamp and a v1 HMAC-SHA256 of "{id}.{timestamp}.{body}".
    expect(received.headers['webhook-id']).toBe(notification.id);
    const timestamp = Number(received.headers['webhook-timestamp']);
    expect(Number.isInteger(timestamp)).toBe(true);
    expect(Math.abs(timestamp - received.at / 1000)).toBeLessThan(30);
    expect(received.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(verifySignature(secret, received)).toBe(true);
    expect(verifySignature(`whsec_${Buffer.from('not the secret').toString('base64')}`, received)).toBe(
      false,
    );
    expect(verifySignature(secret, { ...received, body: received.body.replace('97', '98') })).toBe(false);
    expect(received.headers['content-type']).toMatch(/^application\/json/);

    const body = JSON.parse(received.body);
    expect(body).toEqual({
      type: 'balance.low',
      timestamp: notification.createdAt,
      data: { userId: user.id, notificationId: notification.id, balance: 97, threshold: 98 },
    });
    expect(response.body.balance).toBe(body.data.balance);

    const stored = await storedNotification(user.id, notification.id);
    expect(stored).toMatchObject({ delivery: 'delivered', attempts: 1, deliveredAt: expect.any(String) });
    await ledger.expectReconciled(user.id);
  });

  it('is not sent while the balance stays below the threshold, and again on the next crossing', async () => {
    watchDispatcher();
    const receiver = await startReceiver();
    const { user, secret } = await userWithWebhook(receiver, 'hook-again');
    await crossThreshold(user);
    await waitFor('the first webhook', () => receiver.received[0]);
    const more = await user.api.post('/v1/models/iris/predictions', { inputs: { input: IRIS_ROW } });
    expect(more.status).toBe(201);
    expect((await user.api.post('/v1/account/top-ups', { amount: 10 })).status).toBe(201); // 96 → 106
    const crossing = await user.api.post('/v1/models/iris/predictions', {
      inputs: { input: Array.from({ length: 9 }, () => IRIS_ROW) },
    });
    expect(crossing.body.balance).toBe(97);
    const second = await waitFor('the second webhook', () => receiver.received[1]);
    const notifications = await notificationsOf(user.api);
    expect(notifications).toHaveLength(2);
    expect(second.headers['webhook-id']).toBe(notifications[0].id);
    expect(receiver.received[0]?.headers['webhook-id']).toBe(notifications[1].id);
    expect(verifySignature(secret, second)).toBe(true);
    // Give a stray third call a moment to show up: there must be none.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(receiver.received).toHaveLength(2);
  });
});

describe('webhook retries', () => {
  it('come back with the dispatcher’s backoff, not the queue’s timeout, and deliver on the third attempt', async () => {
    watchDispatcher();
    const receiver = await startReceiver();
    receiver.plan.push(500, 500, 200);
    const { user, secret } = await userWithWebhook(receiver, 'hook-retry');
    await crossThreshold(user);
    const [notification] = await notificationsOf(user.api);

    // Attempt 1, through the queue pump: the receiver answers 500 and the message stays on the queue.
    const [first] = await waitFor('the first dispatch', () => {
      const found = recordsFor(notification.id);
      return found.length > 0 ? found : undefined;
    });
    expect(first?.report.failedMessageIds).toEqual([first?.record.messageId]);
    expect(first?.record.attributes.ApproximateReceiveCount).toBe('1');
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]?.answeredWith).toBe(500);
    expect(await storedNotification(user.id, notification.id)).toMatchObject({
      delivery: 'pending',
      attempts: 1,
      lastError: 'the webhook answered 500',
    });

    // The queue's visibility timeout is 1 s, but the dispatcher pushed the next attempt back by
    // webhookBackoffSeconds(1) = 15 s: nothing comes back for several seconds.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(recordsFor(notification.id)).toHaveLength(1);
    expect(receiver.received).toHaveLength(1);

    // Attempts 2 and 3, handed to the handler directly as the event source would hand them over
    // (waiting out 15 s + 30 s of backoff here would make the test slow).
    const record = first?.record as SQSRecord;
    expect(await invokeDispatcher(dispatcherEvent(record, 2))).toBe('all-failed');
    expect(receiver.received).toHaveLength(2);
    expect(await storedNotification(user.id, notification.id)).toMatchObject({
      delivery: 'pending',
      attempts: 2,
    });

    const third = await invokeDispatcher(dispatcherEvent(record, 3));
    expect(third).toEqual({ batchItemFailures: [] });
    expect(receiver.received).toHaveLength(3);
    expect(receiver.received.map((r) => r.answeredWith)).toEqual([500, 500, 200]);
    // Every attempt is the same message: the same webhook-id (receivers deduplicate on it), each signed.
    for (const attempt of receiver.received) {
      expect(attempt.headers['webhook-id']).toBe(notification.id);
      expect(verifySignature(secret, attempt)).toBe(true);
    }
    const [latest] = await notificationsOf(user.api);
    expect(latest).toMatchObject({ id: notification.id, delivery: 'delivered' });
    expect(await storedNotification(user.id, notification.id)).toMatchObject({
      delivery: 'delivered',
      attempts: 3,
    });

    // A later redelivery of the same message does not call the receiver again.
    expect(await invokeDispatcher(dispatcherEvent(record, 4))).toEqual({ batchItemFailures: [] });
    expect(receiver.received).toHaveLength(3);
  });

  it('mark the notification failed when the last allowed attempt fails too', async () => {
    watchDispatcher();
    const receiver = await startReceiver();
    receiver.plan.push(500, 503, 502, 500);
    const { user } = await userWithWebhook(receiver, 'hook-fail');
    await crossThreshold(user);
    const [notification] = await notificationsOf(user.api);
    const [first] = await waitFor('the first dispatch', () => {
      const found = recordsFor(notification.id);
      return found.length > 0 ? found : undefined;
    });
    const record = first?.record as SQSRecord;
    expect(await invokeDispatcher(dispatcherEvent(record, 2))).toBe('all-failed');
    expect((await notificationsOf(user.api))[0]).toMatchObject({ delivery: 'pending' });

    // The queue's maxReceiveCount is 3: the third failure is the last one.
    // It still fails the record, so SQS moves the message to the dead-letter queue (and its alarm fires).
    expect(await invokeDispatcher(dispatcherEvent(record, 3))).toBe('all-failed');
    expect(receiver.received).toHaveLength(3);
    expect((await notificationsOf(user.api))[0]).toMatchObject({ id: notification.id, delivery: 'failed' });
    expect(await storedNotification(user.id, notification.id)).toMatchObject({
      delivery: 'failed',
      attempts: 3,
      lastError: 'the webhook answered 502',
    });
  });

  it('skip a notification whose webhook was removed before delivery', async () => {
    watchDispatcher();
    const receiver = await startReceiver();
    receiver.plan.push(500);
    const { user } = await userWithWebhook(receiver, 'hook-removed');
    await crossThreshold(user);
    const [notification] = await notificationsOf(user.api);
    const [first] = await waitFor('the first dispatch', () => {
      const found = recordsFor(notification.id);
      return found.length > 0 ? found : undefined;
    });
    expect((await user.api.put('/v1/account/limits', { webhookUrl: null })).status).toBe(200);
    const record = first?.record as SQSRecord;
    expect(await invokeDispatcher(dispatcherEvent(record, 2))).toEqual({ batchItemFailures: [] });
    expect(receiver.received).toHaveLength(1);
    expect((await notificationsOf(user.api))[0]).toMatchObject({ id: notification.id, delivery: 'none' });
  });
});
