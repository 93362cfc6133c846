/**
 * Sign-in throttling, with low limits so a test can reach them: 3 failures per account and 10 per
 * source per window. Each test signs in from its own loopback address (127.0.0.x), so the sources'
 * counters do not mix.
 */
import { describe, expect, it } from 'vitest';
import { type ApiResponse, signUp, uniqueEmail } from '../support/api.ts';
import { useLocalStack } from '../support/local-stack.ts';
import { expectProblem } from '../support/problems.ts';
import { postJsonFrom } from '../support/source-address.ts';

const PER_ACCOUNT = 3;
const PER_SOURCE = 10;
// A long window, so a test never straddles a window boundary (counters start afresh in each window).
const WINDOW_SECONDS = 86_400;

const local = useLocalStack({
  environment: {
    SIGNIN_MAX_FAILURES_PER_ACCOUNT: String(PER_ACCOUNT),
    SIGNIN_MAX_FAILURES_PER_SOURCE: String(PER_SOURCE),
    SIGNIN_WINDOW_SECONDS: String(WINDOW_SECONDS),
  },
});

const signInFrom = (source: string, email: string, password: string) =>
  postJsonFrom(source, `${local.url}/v1/tokens`, { email, password });

function expectRateLimited(response: ApiResponse): void {
  const problem = expectProblem(response, 429, 'rate-limited');
  const retryAfter = Number(response.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(WINDOW_SECONDS);
  expect(problem.retryAfter).toBe(retryAfter);
  // No tokens in a refusal.
  expect(problem).not.toHaveProperty('accessToken');
}

describe('sign-in throttling', () => {
  it('locks an account after 3 failures: 429 with Retry-After, even for the right password and from elsewhere', async () => {
    const user = await signUp(local.url, 'locked');
    const source = '127.0.0.11';
    for (let i = 0; i < PER_ACCOUNT; i += 1) {
      expectProblem(await signInFrom(source, user.email, `wrong-${i}-password`), 401, 'unauthorized');
    }
    expectRateLimited(await signInFrom(source, user.email, user.password));
    expectRateLimited(await signInFrom(source, user.email, 'wrong-again-password'));
    // The lock is on the account, not the source: another address fares no better...
    expectRateLimited(await signInFrom('127.0.0.12', user.email, user.password));
    // ...in any spelling of the email.
    expectRateLimited(await signInFrom('127.0.0.12', ` ${user.email.toUpperCase()} `, user.password));

    // Other accounts from the same source are not affected.
    const other = await signUp(local.url, 'neighbour');
    const ok = await signInFrom(source, other.email, other.password);
    expect(ok.status).toBe(200);
    expect(ok.body.accessToken).toEqual(expect.any(String));
    // The locked user's existing session is not affected either (throttling is about sign-in).
    expect((await user.api.get('/v1/users/me')).status).toBe(200);
  });

  it('locks unknown emails the same way, so the answer does not reveal whether an account exists', async () => {
    const email = uniqueEmail('ghost');
    const source = '127.0.0.13';
    const answers: ApiResponse[] = [];
    for (let i = 0; i <= PER_ACCOUNT; i += 1) answers.push(await signInFrom(source, email, 'some-password'));
    expect(answers.map((a) => a.status)).toEqual([401, 401, 401, 429]);
    expectRateLimited(answers[PER_ACCOUNT] as ApiResponse);
  });

  it('forgets an account’s failures after a successful sign-in', async () => {
    const user = await signUp(local.url, 'forgiven');
    const source = '127.0.0.14';
    const attempt = (password: string) => signInFrom(source, user.email, password);
    for (let round = 0; round < 2; round += 1) {
      for (let i = 0; i < PER_ACCOUNT - 1; i += 1) expect((await attempt('wrong-password')).status).toBe(401);
      expect((await attempt(user.password)).status).toBe(200);
    }
    // Without the reset, the second round would have met the limit: this would be 429.
    expect((await attempt('wrong-password')).status).toBe(401);
  });

  it('counts attempts in flight: of 10 simultaneous wrong passwords for one account, only 3 are checked', async () => {
    const user = await signUp(local.url, 'burst');
    const source = '127.0.0.15';
    // 10 at once stays within the per-source limit, so only the account's limit is in play.
    const burst = await Promise.all(
      Array.from({ length: PER_SOURCE }, (_, i) => signInFrom(source, user.email, `wrong-${i}-password`)),
    );
    const statuses = burst.map((r) => r.status).sort();
    expect(statuses).toEqual([...Array(PER_ACCOUNT).fill(401), ...Array(PER_SOURCE - PER_ACCOUNT).fill(429)]);
    for (const response of burst.filter((r) => r.status === 429)) expectRateLimited(response);
    expectRateLimited(await signInFrom('127.0.0.16', user.email, user.password));
  });

  it('counts attempts in flight per source too: of 15 simultaneous sign-ins for different emails, only 10 are checked', async () => {
    const source = '127.0.0.17';
    const burst = await Promise.all(
      Array.from({ length: PER_SOURCE + 5 }, (_, i) =>
        signInFrom(source, uniqueEmail(`burst${i}`), 'guessed-password'),
      ),
    );
    const statuses = burst.map((r) => r.status).sort();
    expect(statuses).toEqual([...Array(PER_SOURCE).fill(401), ...Array(5).fill(429)]);
  });

  it('counts neither successful sign-ins nor refused (429) attempts toward the source limit', async () => {
    const source = '127.0.0.18';
    const user = await signUp(local.url, 'regular');
    for (let i = 0; i < PER_SOURCE + 2; i += 1) {
      expect((await signInFrom(source, user.email, user.password)).status).toBe(200);
    }
    const locked = await signUp(local.url, 'hammered');
    for (let i = 0; i < PER_ACCOUNT; i += 1)
      expect((await signInFrom(source, locked.email, 'wrong-pw-1')).status).toBe(401);
    for (let i = 0; i < PER_SOURCE; i += 1)
      expectRateLimited(await signInFrom(source, locked.email, 'wrong-pw-2'));
    // 3 failures from this source so far: far from its limit.
    expect((await signInFrom(source, user.email, user.password)).status).toBe(200);
  });

  it('limits failures per source: after 10 failures over many emails one source gets 429, others do not', async () => {
    const user = await signUp(local.url, 'bystander');
    const source = '127.0.0.21';
    for (let i = 0; i < PER_SOURCE; i += 1) {
      // Each email fails once: no account reaches its own limit.
      expectProblem(
        await signInFrom(source, uniqueEmail(`spray${i}`), 'guessed-password'),
        401,
        'unauthorized',
      );
    }
    // That source is now refused, whoever it signs in as, even with the right password.
    expectRateLimited(await signInFrom(source, user.email, user.password));
    expectRateLimited(await signInFrom(source, uniqueEmail('spray-next'), 'guessed-password'));
    // Another source signs the same user in normally: their account was never locked.
    const elsewhere = await signInFrom('127.0.0.22', user.email, user.password);
    expect(elsewhere.status).toBe(200);
    expect(elsewhere.body).toMatchObject({ tokenType: 'Bearer', accessToken: expect.any(String) });
  });
});
