/**
 * Posts a webhook over HTTP. The address check is repeated here, at delivery, against what the host
 * name resolves to now: a name that pointed at a public address when the URL was saved may point
 * at 169.254.169.254 today.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { isLocalHostName, isPublicAddress } from '../domain/network.ts';
import type { WebhookSender } from '../notifications/service.ts';

export interface WebhookSenderSettings {
  /** Lets webhooks reach this machine (localhost, 127.0.0.1, ::1): in development only. */
  allowLocalhost: boolean;
  timeoutMs: number;
}

export function httpWebhookSender(settings: WebhookSenderSettings): WebhookSender {
  return async (url, init) => {
    const { hostname } = new URL(url);
    const host = hostname.replace(/^\[|\]$/g, '');
    const local = isLocalHostName(host) || host === '127.0.0.1' || host === '::1';
    if (!(settings.allowLocalhost && local)) {
      const addresses = isIP(host) ? [{ address: host }] : await lookup(host, { all: true });
      if (addresses.length === 0 || addresses.some((a) => !isPublicAddress(a.address))) {
        throw new Error(`the webhook host ${host} does not resolve to public addresses only`);
      }
    }
    const response = await fetch(url, {
      method: 'POST',
      headers: init.headers,
      body: init.body,
      // A redirect could lead anywhere, past the address check: its 3xx counts as a failure.
      redirect: 'manual',
      signal: AbortSignal.timeout(settings.timeoutMs),
    });
    await response.body?.cancel();
    return { status: response.status };
  };
}
