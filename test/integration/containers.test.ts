/**
 * The service on Lambda-like containers, at the production scrypt cost: concurrent requests run in
 * several containers at once, as on AWS, and nothing that was safe in one process breaks.
 */
import { describe, expect, it } from 'vitest';
import type { InvocationRecord } from '../../infra/local/lambda-runtime.ts';
import { Api, signUp, uniqueEmail } from '../support/api.ts';
import { useLocalStack } from '../support/local-stack.ts';
import { useReconciler } from '../support/reconcile.ts';

const local = useLocalStack({
  environment: {
    // OWASP's cost, as deployed: every hash takes 128 MiB and most of a core.
    SCRYPT_LOG2_N: '17',
    SIGNUP_BONUS: '1000',
  },
});
const ledger = useReconciler(local);

/** The containers that served `name` while `work` ran. */
async function containersUsed<T>(
  name: string,
  work: () => Promise<T>,
): Promise<{ result: T; containers: Set<number> }> {
  const containers = new Set<number>();
  const listener = (record: InvocationRecord) => {
    if (record.name === name) containers.add(record.container);
  };
  local.stack.runtime.events.on('invocation', listener);
  try {
    return { result: await work(), containers };
  } finally {
    local.stack.runtime.events.off('invocation', listener);
  }
}

describe('concurrent requests on Lambda-like containers', () => {
  it('gives 20 concurrent sign-ups of one email exactly one 201 and nineteen 409s, with no 5xx', async () => {
    const api = new Api(local.url);
    const email = uniqueEmail('race');
    const { result: statuses, containers } = await containersUsed('auth', () =>
      Promise.all(
        Array.from(
          { length: 20 },
          async () => (await api.post('/v1/users', { email, password: 'correct horse' })).status,
        ),
      ),
    );
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    expect(containers.size).toBeGreaterThan(1);
  });

  it("runs one user's concurrent predictions in several containers and the ledger still reconciles", async () => {
    const user = await signUp(local.url, 'busy');
    const count = 40;
    const { result, containers } = await containersUsed('predict', () =>
      Promise.all(
        Array.from({ length: count }, () =>
          user.api.post('/v1/models/iris/predictions', { inputs: { input: [5.1, 3.5, 1.4, 0.2] } }),
        ),
      ),
    );
    expect(containers.size).toBeGreaterThan(1);
    expect(result.map((r) => r.status)).toEqual(result.map(() => 201));
    // Each container charged from the account state it last saw; the revision condition made the
    // others retry, so the ledger is gapless and every prediction was charged once.
    const reconciliation = await ledger.expectReconciled(user.id);
    expect(reconciliation.balance).toBe(1000 - count);
    const charges = (await ledger.read(user.id)).entries.filter((entry) => entry.kind === 'charge');
    expect(charges).toHaveLength(count);
  });
});
