/** Notifications about an account (today: its balance fell below the low-balance threshold). */
import { createHmac } from 'node:crypto';

export interface Notification {
  id: string;
  userId: string;
  type: 'low_balance';
  balance: number;
  threshold: number;
  /** `none` without a webhook; `pending` until the webhook answered 2xx. */
  delivery: 'none' | 'pending' | 'delivered' | 'failed';
  attempts?: number;
  lastError?: string;
  deliveredAt?: string;
  createdAt: string;
}

export const WEBHOOK_SECRET_PREFIX = 'whsec_';

/**
 * Standard Webhooks signature headers: `webhook-id`, `webhook-timestamp` (seconds) and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
 * base64 secret after its `whsec_` prefix.
 */
export function signWebhook(
  secret: string,
  id: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  const key = Buffer.from(
    secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(WEBHOOK_SECRET_PREFIX.length) : secret,
    'base64',
  );
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `v1,${signature}`,
  };
}

/** Seconds before delivery attempt `receiveCount + 1`: exponential, capped at an hour. */
export function webhookBackoffSeconds(receiveCount: number): number {
  return Math.min(3600, 15 * 2 ** Math.max(0, receiveCount - 1));
}
