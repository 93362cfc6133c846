/** Handing notifications to the queue, and the webhook sender's address check, on their own. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpWebhookSender } from '../../shared/adapters/webhook-sender.ts';
import { lowBalanceHandOff, type NotificationQueuePort } from '../../shared/notifications/service.ts';

describe('handing a low-balance notification to the webhook queue', () => {
  it('enqueues it', async () => {
    const queued: string[][] = [];
    const queue: NotificationQueuePort = { enqueue: async (...ids) => void queued.push(ids) };
    await lowBalanceHandOff(() => queue)('u1', 'n1');
    expect(queued).toEqual([['u1', 'n1']]);
  });

  it('never fails the committed charge it follows: a failing queue, or none at all, is only logged', async () => {
    const failing: NotificationQueuePort = {
      enqueue: async () => {
        throw new Error('SQS is down');
      },
    };
    await expect(lowBalanceHandOff(() => failing)('u1', 'n1')).resolves.toBeUndefined();
    const missing = () => {
      throw new Error('NOTIFICATION_QUEUE_URL is not set');
    };
    await expect(lowBalanceHandOff(missing)('u1', 'n1')).resolves.toBeUndefined();
  });
});

describe('the webhook sender', () => {
  const received: { method?: string; body: string; headers: Record<string, unknown> }[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      received.push({ method: request.method, body, headers: request.headers });
      if (request.url === '/moved') response.writeHead(302, { location: 'http://169.254.169.254/' }).end();
      else response.writeHead(204).end();
    });
  });
  let port = 0;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const init = { headers: { 'content-type': 'application/json' }, body: '{"type":"balance.low"}' };

  it('refuses private, loopback and link-local hosts before sending anything', async () => {
    const send = httpWebhookSender({ allowLocalhost: false, timeoutMs: 2000 });
    for (const url of [
      `http://127.0.0.1:${port}/hook`,
      `http://localhost:${port}/hook`,
      'http://10.0.0.1/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/hook',
    ]) {
      await expect(send(url, init), url).rejects.toThrow(/public addresses only/);
    }
    expect(received).toEqual([]);
  });

  it('posts to this machine only when allowed (development), and does not follow a redirect', async () => {
    const send = httpWebhookSender({ allowLocalhost: true, timeoutMs: 2000 });
    expect(await send(`http://127.0.0.1:${port}/hook`, init)).toEqual({ status: 204 });
    expect(await send(`http://localhost:${port}/moved`, init)).toEqual({ status: 302 });
    expect(received.map((r) => [r.method, r.body])).toEqual([
      ['POST', init.body],
      ['POST', init.body],
    ]);
    expect(received[0]?.headers['content-type']).toBe('application/json');
  });
});
