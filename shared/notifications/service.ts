/**
 * Notifications: listing them, handing new ones to the webhook queue, and delivering them to the
 * account's webhook (from the queue only).
 */
import type { AccountLimits } from '../domain/credits.ts';
import { type Notification, signWebhook } from '../domain/notifications.ts';
import { logger } from '../observability/logger.ts';

export interface NotificationStorePort {
  recent(userId: string, limit: number): Promise<Notification[]>;
  get(userId: string, notificationId: string): Promise<Notification | undefined>;
  markDelivery(
    userId: string,
    notificationId: string,
    outcome: { delivery: Notification['delivery']; error?: string; at: string },
  ): Promise<void>;
}

export interface WebhookAccountPort {
  getAccount(userId: string): Promise<{ limits: AccountLimits } | undefined>;
  accountAttribute(userId: string, name: string): Promise<unknown>;
}

export type WebhookSender = (
  url: string,
  init: { headers: Record<string, string>; body: string },
) => Promise<{ status: number }>;

/** Where recorded notifications wait for the webhook dispatcher. */
export interface NotificationQueuePort {
  enqueue(userId: string, notificationId: string): Promise<void>;
}

/**
 * Hands a recorded low-balance notification to the webhook queue; the webhook itself is never called
 * in a request. This runs after the charge that crossed the threshold committed, so a failed hand-off
 * must not turn that charge into an error: the notification stays `pending` (visible in
 * GET /v1/users/me) and the failure is logged for operators. The queue is resolved on each call, so
 * a function without one fails the same quiet way.
 */
export function lowBalanceHandOff(queue: () => NotificationQueuePort) {
  return async (userId: string, notificationId: string): Promise<void> => {
    try {
      await queue().enqueue(userId, notificationId);
    } catch (error) {
      logger.warn('could not queue a low-balance notification', {
        userId,
        notificationId,
        error: error as Error,
      });
    }
  };
}

export class WebhookDeliveryError extends Error {
  override name = 'WebhookDeliveryError';
}

export class NotificationService {
  constructor(
    private readonly store: NotificationStorePort,
    private readonly accounts: WebhookAccountPort,
    private readonly send: WebhookSender,
    private readonly now: () => Date = () => new Date(),
  ) {}

  recent(userId: string, limit = 10): Promise<Notification[]> {
    return this.store.recent(userId, limit);
  }

  /**
   * Posts the notification to the account's webhook, signed as Standard Webhooks. Throws when the
   * receiver does not answer 2xx, so the queue retries it with backoff; a failed `lastAttempt`
   * marks the notification `failed`.
   */
  async deliver(
    userId: string,
    notificationId: string,
    options: { lastAttempt?: boolean } = {},
  ): Promise<'delivered' | 'skipped'> {
    const notification = await this.store.get(userId, notificationId);
    if (!notification || notification.delivery === 'delivered' || notification.delivery === 'none')
      return 'skipped';
    const account = await this.accounts.getAccount(userId);
    const url = account?.limits.webhookUrl;
    const secret = await this.accounts.accountAttribute(userId, 'webhookSecret');
    if (!url || typeof secret !== 'string') {
      await this.store.markDelivery(userId, notificationId, {
        delivery: 'none',
        at: this.now().toISOString(),
      });
      return 'skipped';
    }
    const body = JSON.stringify({
      type: 'balance.low',
      timestamp: notification.createdAt,
      data: {
        userId,
        notificationId,
        balance: notification.balance,
        threshold: notification.threshold,
      },
    });
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'credit-predictions-webhooks/1',
      ...signWebhook(secret, notification.id, Math.floor(this.now().getTime() / 1000), body),
    };
    let failure: string | undefined;
    try {
      const response = await this.send(url, { headers, body });
      if (response.status < 200 || response.status >= 300)
        failure = `the webhook answered ${response.status}`;
    } catch (error) {
      failure = `the webhook could not be reached: ${(error as Error).message}`;
    }
    const at = this.now().toISOString();
    if (failure) {
      await this.store.markDelivery(userId, notificationId, {
        delivery: options.lastAttempt ? 'failed' : 'pending',
        error: failure,
        at,
      });
      throw new WebhookDeliveryError(failure);
    }
    await this.store.markDelivery(userId, notificationId, { delivery: 'delivered', at });
    return 'delivered';
  }

  async giveUp(userId: string, notificationId: string, reason: string): Promise<void> {
    await this.store.markDelivery(userId, notificationId, {
      delivery: 'failed',
      error: reason,
      at: this.now().toISOString(),
    });
  }
}
