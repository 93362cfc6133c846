/**
 * Users and sessions over HTTP against the local stack: registration, passwords, access and refresh
 * tokens, API keys, roles, and the refusal of bad input and bad credentials (which must change
 * nothing). Sign-in throttling has its own file (it needs other limits).
 */
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, type ApiResponse, type SignedInUser, signIn, signUp, uniqueEmail } from '../support/api.ts';
import { TableReader } from '../support/dynamo.ts';
import {
  craftAccessToken,
  decodePart,
  foreignPrivateKey,
  hs256Token,
  publicKeySecrets,
  serviceSigningKey,
  tamperPayload,
  unsecuredToken,
} from '../support/jwt.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { errorPaths, expectProblem } from '../support/problems.ts';

// The many deliberate failures below all come from one source; the per-source limit is tested in
// auth-throttling.test.ts, so it must not get in the way here. The per-account limit stays at its default.
const local = useLocalStack({ environment: { SIGNIN_MAX_FAILURES_PER_SOURCE: '1000' } });

let table: TableReader;
let admin: SignedInUser;
const api = () => new Api(local.url);

beforeAll(async () => {
  table = new TableReader(local.stack);
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
});
afterAll(() => table?.destroy());

const newPassword = () => `pw-${randomBytes(8).toString('hex')}`;

async function balanceOf(user: SignedInUser): Promise<number> {
  const me = await user.api.get('/v1/users/me');
  expect(me.status).toBe(200);
  return me.body.balance;
}

async function apiKeyIdsOf(user: SignedInUser): Promise<string[]> {
  const list = await user.api.get('/v1/api-keys');
  expect(list.status).toBe(200);
  return list.body.items.map((item: { id: string }) => item.id);
}

/** A rejected registration must leave no trace: the email cannot sign in and has no item. */
async function expectNoAccount(email: string): Promise<void> {
  const attempt = await api().post('/v1/tokens', {
    email: email.trim().toLowerCase(),
    password: 'whatever-pw',
  });
  expect(attempt.status).toBe(401);
  expect(await table.get({ pk: `EMAIL#${email.trim().toLowerCase()}`, sk: 'EMAIL' })).toBeUndefined();
}

/** Every object key in a JSON value, at any depth. */
function keysDeep(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysDeep);
  if (value && typeof value === 'object')
    return Object.entries(value).flatMap(([key, inner]) => [key, ...keysDeep(inner)]);
  return [];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

describe('registration (POST /v1/users)', () => {
  it('creates a user and answers 201 with exactly id, email, role "user" and createdAt', async () => {
    const email = uniqueEmail('reg');
    const before = Date.now();
    const response = await api().post('/v1/users', { email, password: newPassword() });
    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(Object.keys(response.body).sort()).toEqual(['createdAt', 'email', 'id', 'role']);
    expect(response.body).toMatchObject({ id: expect.any(String), email, role: 'user' });
    expect(response.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(Date.parse(response.body.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(response.body.createdAt)).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it('normalises the email (case and surrounding white space) and keeps it unique in every spelling', async () => {
    const localPart = `MiXeD-${randomBytes(4).toString('hex')}`;
    const canonical = `${localPart.toLowerCase()}@example.com`;
    const password = newPassword();
    const created = await api().post('/v1/users', { email: `  ${localPart}@Example.COM \t`, password });
    expect(created.status).toBe(201);
    expect(created.body.email).toBe(canonical);

    // Signing in works whatever the spelling, and always reaches the same user.
    for (const spelling of [canonical, canonical.toUpperCase(), ` ${localPart}@EXAMPLE.com `]) {
      const user = await signIn(local.url, spelling, password);
      expect(user.id).toBe(created.body.id);
    }
    // Registering again in another spelling is a conflict and creates nothing.
    for (const spelling of [canonical, canonical.toUpperCase(), `\n${canonical}  `]) {
      const again = await api().post('/v1/users', { email: spelling, password: newPassword() });
      expectProblem(again, 409, 'conflict');
    }
    const profiles = (await table.scanAll()).filter(
      (item) => item.sk === 'PROFILE' && String(item.email).toLowerCase() === canonical,
    );
    expect(profiles.map((item) => item.id)).toEqual([created.body.id]);
  });

  it('of 20 concurrent sign-ups with one email, exactly one gets 201 and the other 19 get 409 conflict', async () => {
    const email = uniqueEmail('race');
    const passwords = Array.from({ length: 20 }, newPassword);
    const responses = await Promise.all(
      passwords.map((password) => api().post('/v1/users', { email, password })),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    for (const response of responses.filter((r) => r.status === 409))
      expectProblem(response, 409, 'conflict');

    // One user exists, and it is the winner: only the winner's password signs in.
    const winner = statuses.indexOf(201);
    const winnerId = responses[winner]?.body.id;
    const profiles = (await table.scanAll()).filter((item) => item.sk === 'PROFILE' && item.email === email);
    expect(profiles.map((item) => item.id)).toEqual([winnerId]);
    expect((await signIn(local.url, email, passwords[winner] ?? '')).id).toBe(winnerId);
    const loser = passwords[(winner + 1) % passwords.length];
    expect((await api().post('/v1/tokens', { email, password: loser })).status).toBe(401);
  });
});

describe('passwords', () => {
  it('never appear in any response, nor does anything that looks like a hash', async () => {
    const email = uniqueEmail('secret');
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const responses: ApiResponse[] = [];
    const created = await api().post('/v1/users', { email, password });
    responses.push(created);
    const tokens = await api().post('/v1/tokens', { email, password });
    responses.push(tokens);
    const authed = api().as(tokens.body.accessToken);
    responses.push(await authed.get('/v1/users/me'));
    responses.push(await api().post('/v1/tokens', { refreshToken: tokens.body.refreshToken }));
    responses.push(await authed.post('/v1/api-keys', { name: 'k' }));
    responses.push(await authed.get('/v1/api-keys'));
    responses.push(await api().post('/v1/tokens', { email, password: `${password}-wrong` }));
    responses.push(await api().post('/v1/users', { email, password }));
    expect(responses.map((r) => r.status)).toEqual([201, 200, 200, 200, 201, 200, 401, 409]);

    for (const response of responses) {
      const text = JSON.stringify(response.body);
      expect(text).not.toContain(password);
      expect(text).not.toContain('scrypt');
      expect(keysDeep(response.body).filter((key) => /password|hash|salt/i.test(key))).toEqual([]);
    }
    // The access token carries no secret either.
    expect(JSON.stringify(decodeJwt(tokens.body.accessToken))).not.toContain(password);
  });

  it("are stored only as a scrypt hash in the user's PROFILE item", async () => {
    const email = uniqueEmail('stored');
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const created = await api().post('/v1/users', { email, password });
    expect(created.status).toBe(201);

    const profile = await table.profile(created.body.id);
    expect(profile).toMatchObject({ id: created.body.id, email, role: 'user' });
    const hash = String(profile?.passwordHash);
    expect(hash.startsWith('scrypt$')).toBe(true);
    // scrypt$log2N$r$p$salt$key, at the cost this stack is configured with (vitest.config.ts).
    expect(hash).toMatch(/^scrypt\$12\$8\$1\$[\w-]{16,}\$[\w-]{32,}$/);
    expect(hash).not.toContain(password);
    // Nowhere in the table is the password kept in clear.
    expect(JSON.stringify(await table.scanAll())).not.toContain(password);
  });
});

describe('signing in with a password (POST /v1/tokens)', () => {
  it('answers 200 with a Bearer access token, its lifetime in seconds and a refresh token', async () => {
    const user = await signUp(local.url, 'tokens');
    const response = await api().post('/v1/tokens', { email: user.email, password: user.password });
    expect(response.status).toBe(200);
    expect(Object.keys(response.body).sort()).toEqual([
      'accessToken',
      'expiresIn',
      'refreshToken',
      'tokenType',
    ]);
    expect(response.body).toMatchObject({
      accessToken: expect.any(String),
      tokenType: 'Bearer',
      expiresIn: 900,
      refreshToken: expect.any(String),
    });
    expect(response.body.refreshToken).not.toBe(response.body.accessToken);
    const me = await api().as(response.body.accessToken).get('/v1/users/me');
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(user.id);
  });

  it('issues an EdDSA JWT with a kid and the iss, aud, sub, exp, iat, jti and role claims', async () => {
    const user = await signUp(local.url, 'claims');
    const before = Math.floor(Date.now() / 1000);
    const tokens = await api().post('/v1/tokens', { email: user.email, password: user.password });
    const header = decodeProtectedHeader(tokens.body.accessToken);
    expect(header.alg).toBe('EdDSA');
    expect(header.kid).toEqual(expect.any(String));
    expect(header.kid?.length).toBeGreaterThan(0);

    const claims = decodeJwt(tokens.body.accessToken);
    expect(claims).toMatchObject({
      iss: 'credit-predictions',
      aud: 'credit-predictions-api',
      sub: user.id,
      role: 'user',
      jti: expect.any(String),
      iat: expect.any(Number),
      exp: expect.any(Number),
    });
    expect(claims.iat).toBeGreaterThanOrEqual(before - 5);
    expect(claims.iat).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 5);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(tokens.body.expiresIn);
    // Every token has its own id.
    expect(decodeJwt(user.accessToken).jti).not.toBe(claims.jti);

    // An admin's token says so.
    expect(decodeJwt(admin.accessToken)).toMatchObject({ role: 'admin', sub: admin.id });
  });

  it('publishes the signing key at /.well-known/jwks.json, and issued tokens verify against it', async () => {
    const user = await signUp(local.url, 'jwks');
    const jwks = await api().get('/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    const keys = jwks.body.keys as JWK[];
    const { kid } = decodeProtectedHeader(user.accessToken);
    expect(keys.map((k) => k.kid)).toContain(kid);
    for (const key of keys) {
      expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      expect(key).not.toHaveProperty('d'); // never the private half
    }

    const { payload, protectedHeader } = await jwtVerify(user.accessToken, createLocalJWKSet({ keys }), {
      issuer: 'credit-predictions',
      audience: 'credit-predictions-api',
      algorithms: ['EdDSA'],
    });
    expect(protectedHeader.kid).toBe(kid);
    expect(payload.sub).toBe(user.id);
  });

  it('answers an unknown email and a wrong password alike: 401 with the same problem detail', async () => {
    const user = await signUp(local.url, 'alike');
    const unknown = await api().post('/v1/tokens', { email: uniqueEmail('nobody'), password: user.password });
    const wrong = await api().post('/v1/tokens', { email: user.email, password: `${user.password}x` });
    const a = expectProblem(unknown, 401, 'unauthorized');
    const b = expectProblem(wrong, 401, 'unauthorized');
    expect(a.detail).toBe(b.detail);
    expect(a.title).toBe(b.title);
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    // The right password still works afterwards.
    expect((await signIn(local.url, user.email, user.password)).id).toBe(user.id);
  });

  it('takes about as long for an unknown email as for a wrong password', async () => {
    // Wrong passwords are spread over several users to stay below the per-account limit (5).
    const users = await Promise.all(['t1', 't2', 't3', 't4', 't5'].map((label) => signUp(local.url, label)));
    const time = async (body: unknown) => {
      const started = performance.now();
      const response = await api().post('/v1/tokens', body);
      const elapsed = performance.now() - started;
      expect(response.status).toBe(401);
      return elapsed;
    };
    const unknownEmail = () => ({ email: uniqueEmail('ghost'), password: 'not-the-password' });
    const wrongPassword = (i: number) => ({
      email: users[i % users.length]?.email,
      password: 'not-the-password',
    });
    // Warm up both paths (the dummy hash is computed on first use).
    await time(unknownEmail());
    await time(wrongPassword(0));
    // Back-to-back pairs, in alternating order, so a load spike on the machine hits both sides alike.
    const pairs: { unknown: number; wrong: number }[] = [];
    for (let i = 1; i <= 15; i += 1) {
      if (i % 2) pairs.push({ unknown: await time(unknownEmail()), wrong: await time(wrongPassword(i)) });
      else pairs.push({ wrong: await time(wrongPassword(i)), unknown: await time(unknownEmail()) });
    }
    const ratio = median(pairs.map((p) => p.unknown / p.wrong));
    const detail = pairs.map((p) => `${Math.round(p.unknown)}/${Math.round(p.wrong)}`).join(' ');
    expect(ratio, `unknown/wrong ms: ${detail}`).toBeGreaterThan(0.5);
    expect(ratio, `unknown/wrong ms: ${detail}`).toBeLessThan(2);
  });
});

describe('refresh tokens (POST /v1/tokens with {refreshToken}, POST /v1/tokens/revoke)', () => {
  it('exchange a refresh token for a new, working pair', async () => {
    const user = await signUp(local.url, 'refresh');
    const response = await api().post('/v1/tokens', { refreshToken: user.refreshToken });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
    expect(response.body.refreshToken).not.toBe(user.refreshToken);
    expect(response.body.accessToken).not.toBe(user.accessToken);
    expect(decodeJwt(response.body.accessToken)).toMatchObject({ sub: user.id, role: 'user' });
    const me = await api().as(response.body.accessToken).get('/v1/users/me');
    expect(me.body.id).toBe(user.id);
    // And the new refresh token works in turn.
    expect((await api().post('/v1/tokens', { refreshToken: response.body.refreshToken })).status).toBe(200);
  });

  it('spend the refresh token used: a second use is refused with 401', async () => {
    const user = await signUp(local.url, 'spent');
    expect((await api().post('/v1/tokens', { refreshToken: user.refreshToken })).status).toBe(200);
    const second = await api().post('/v1/tokens', { refreshToken: user.refreshToken });
    expectProblem(second, 401, 'unauthorized');
  });

  it('revoke the whole family when a spent token comes back, so the newest token is refused too', async () => {
    const user = await signUp(local.url, 'reuse');
    const otherSession = await signIn(local.url, user.email, user.password);
    const second = await api().post('/v1/tokens', { refreshToken: user.refreshToken });
    const third = await api().post('/v1/tokens', { refreshToken: second.body.refreshToken });
    expect([second.status, third.status]).toEqual([200, 200]);

    // The first token comes back (stolen?): refused, and its family ends.
    expectProblem(await api().post('/v1/tokens', { refreshToken: user.refreshToken }), 401, 'unauthorized');
    const newest = await api().post('/v1/tokens', { refreshToken: third.body.refreshToken });
    expectProblem(newest, 401, 'unauthorized');

    // Other sign-ins of the same user are separate families and keep working.
    expect((await api().post('/v1/tokens', { refreshToken: otherSession.refreshToken })).status).toBe(200);
  });

  it("sign out with POST /v1/tokens/revoke: 204, and that family's refresh tokens stop working", async () => {
    const user = await signUp(local.url, 'signout');
    const otherSession = await signIn(local.url, user.email, user.password);
    const rotated = await api().post('/v1/tokens', { refreshToken: user.refreshToken });
    expect(rotated.status).toBe(200);

    const revoked = await api().post('/v1/tokens/revoke', { refreshToken: rotated.body.refreshToken });
    expect(revoked.status).toBe(204);
    expect(revoked.body).toBe('');

    expectProblem(
      await api().post('/v1/tokens', { refreshToken: rotated.body.refreshToken }),
      401,
      'unauthorized',
    );
    expectProblem(await api().post('/v1/tokens', { refreshToken: user.refreshToken }), 401, 'unauthorized');
    // Only that family: the other session is untouched.
    expect((await api().post('/v1/tokens', { refreshToken: otherSession.refreshToken })).status).toBe(200);
    // Revoking is idempotent, and an unknown token reveals nothing.
    expect((await api().post('/v1/tokens/revoke', { refreshToken: rotated.body.refreshToken })).status).toBe(
      204,
    );
    expect((await api().post('/v1/tokens/revoke', { refreshToken: 'rt_unknown' })).status).toBe(204);
  });

  it('are stored only hashed: no refresh token appears in any DynamoDB item', async () => {
    const user = await signUp(local.url, 'rthash');
    const rotated = await api().post('/v1/tokens', { refreshToken: user.refreshToken });
    const items = JSON.stringify(await table.scanAll());
    expect(items).not.toContain(user.refreshToken);
    expect(items).not.toContain(rotated.body.refreshToken);
  });
});

describe('API keys', () => {
  it('are created with 201 {id, name, key, createdAt} and authenticate as their owner', async () => {
    const user = await signUp(local.url, 'keys');
    const created = await user.api.post('/v1/api-keys', { name: '  ci pipeline ' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: expect.any(String),
      name: 'ci pipeline',
      key: expect.stringMatching(/^cpk_[\w-]{32,}$/),
      createdAt: expect.any(String),
    });
    expect(Date.parse(created.body.createdAt)).not.toBeNaN();

    const me = await api().as(created.body.key).get('/v1/users/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: user.id, email: user.email, role: 'user' });
  });

  it('are listed without their secret', async () => {
    const user = await signUp(local.url, 'list');
    const first = await user.api.post('/v1/api-keys', { name: 'first' });
    const second = await user.api.post('/v1/api-keys', { name: 'second' });
    const list = await user.api.get('/v1/api-keys');
    expect(list.status).toBe(200);
    expect(list.body.nextCursor).toBeNull();
    expect(list.body.items.map((item: { id: string }) => item.id).sort()).toEqual(
      [first.body.id, second.body.id].sort(),
    );
    for (const item of list.body.items) {
      expect(item).not.toHaveProperty('key');
      expect(item).toMatchObject({
        id: expect.any(String),
        name: expect.any(String),
        createdAt: expect.any(String),
      });
      expect(keysDeep(item).filter((key) => /hash|secret/i.test(key))).toEqual([]);
    }
    const text = JSON.stringify(list.body);
    expect(text).not.toContain(first.body.key);
    expect(text).not.toContain(second.body.key);
    // Listing with an API key shows the same keys.
    const viaKey = await api().as(first.body.key).get('/v1/api-keys');
    expect(viaKey.body.items).toHaveLength(2);
  });

  it('are stored only hashed: the secret appears in no DynamoDB item', async () => {
    const user = await signUp(local.url, 'keyhash');
    const created = await user.api.post('/v1/api-keys', { name: 'stored' });
    expect(created.status).toBe(201);
    const items = await table.scanAll();
    expect(items.some((item) => item.id === created.body.id)).toBe(true);
    expect(JSON.stringify(items)).not.toContain(created.body.key);
    // Nor its random part without the prefix.
    expect(JSON.stringify(items)).not.toContain(String(created.body.key).slice(4));
  });

  it('stop working at once when deleted (204), and a second delete is 404', async () => {
    const user = await signUp(local.url, 'delete');
    const created = await user.api.post('/v1/api-keys', { name: 'short-lived' });
    const keyApi = api().as(created.body.key);
    expect((await keyApi.get('/v1/users/me')).status).toBe(200);

    const deleted = await user.api.delete(`/v1/api-keys/${created.body.id}`);
    expect(deleted.status).toBe(204);
    expectProblem(await keyApi.get('/v1/users/me'), 401, 'unauthorized');
    // A deleted key changes nothing either.
    expectProblem(await keyApi.post('/v1/api-keys', { name: 'from a dead key' }), 401, 'unauthorized');
    expect(await apiKeyIdsOf(user)).toEqual([]);
    expectProblem(await user.api.delete(`/v1/api-keys/${created.body.id}`), 404, 'not-found');
  });

  it("answer 404 to deleting another user's key, which keeps working", async () => {
    const owner = await signUp(local.url, 'owner');
    const intruder = await signUp(local.url, 'intruder');
    const created = await owner.api.post('/v1/api-keys', { name: 'mine' });

    expectProblem(await intruder.api.delete(`/v1/api-keys/${created.body.id}`), 404, 'not-found');
    // Not even an admin can delete someone else's key through this route.
    expectProblem(await admin.api.delete(`/v1/api-keys/${created.body.id}`), 404, 'not-found');
    expect((await api().as(created.body.key).get('/v1/users/me')).body.id).toBe(owner.id);
    expect(await apiKeyIdsOf(owner)).toEqual([created.body.id]);
    expect(await apiKeyIdsOf(intruder)).toEqual([]);
  });

  it("carry their owner's role: an admin's key may call admin-only routes, a user's gets 403", async () => {
    const target = await signUp(local.url, 'grantee');
    const user = await signUp(local.url, 'plain');
    const adminKey = await admin.api.post('/v1/api-keys', { name: 'admin automation' });
    const userKey = await user.api.post('/v1/api-keys', { name: 'user automation' });
    const before = await balanceOf(target);

    const granted = await api()
      .as(adminKey.body.key)
      .post(`/v1/admin/users/${target.id}/grants`, { amount: 5, reason: 'test' });
    expect(granted.status).toBe(201);
    expect(granted.body).toMatchObject({ balance: before + 5, transaction: { kind: 'grant', amount: 5 } });
    expect(await balanceOf(target)).toBe(before + 5);

    const refused = await api()
      .as(userKey.body.key)
      .post(`/v1/admin/users/${target.id}/grants`, { amount: 5, reason: 'test' });
    expectProblem(refused, 403, 'forbidden');
    expect(await balanceOf(target)).toBe(before + 5);
  });
});

describe('roles', () => {
  it('admin-only routes answer 403 forbidden to users and change nothing', async () => {
    const user = await signUp(local.url, 'nonadmin');
    const before = await balanceOf(user);
    const response = await user.api.post(`/v1/admin/users/${user.id}/grants`, { amount: 1000, reason: 'me' });
    expectProblem(response, 403, 'forbidden');
    expect(await balanceOf(user)).toBe(before);
    // The same route works for an admin, so the 403 is about the role.
    const granted = await admin.api.post(`/v1/admin/users/${user.id}/grants`, { amount: 5, reason: 'test' });
    expect(granted.status).toBe(201);
    expect(await balanceOf(user)).toBe(before + 5);
  });

  it('a request body can never set a role or a balance: such fields are refused with 400 naming them', async () => {
    for (const extra of [{ role: 'admin' }, { balance: 1_000_000 }]) {
      const field = Object.keys(extra)[0];
      const email = uniqueEmail('escalate');
      const response = await api().post('/v1/users', { email, password: newPassword(), ...extra });
      const problem = expectProblem(response, 400, 'validation-failed');
      expect(errorPaths(problem)).toContain(`/${field}`);
      await expectNoAccount(email);
    }

    const user = await signUp(local.url, 'escalate');
    const before = await balanceOf(user);
    const key = await user.api.post('/v1/api-keys', { name: 'k', role: 'admin' });
    expect(errorPaths(expectProblem(key, 400, 'validation-failed'))).toContain('/role');
    const topUp = await user.api.post('/v1/account/top-ups', { amount: 1, balance: 1_000_000 });
    expect(errorPaths(expectProblem(topUp, 400, 'validation-failed'))).toContain('/balance');
    const signInAsAdmin = await api().post('/v1/tokens', {
      email: user.email,
      password: user.password,
      role: 'admin',
    });
    expect(errorPaths(expectProblem(signInAsAdmin, 400, 'validation-failed'))).toContain('/role');

    const me = await user.api.get('/v1/users/me');
    expect(me.body).toMatchObject({ role: 'user', balance: before });
    expect(await apiKeyIdsOf(user)).toEqual([]);
  });
});

describe('GET /v1/users/me', () => {
  it('answers {id, email, role, balance, createdAt} and the recent notifications for the caller', async () => {
    const email = uniqueEmail('me');
    const password = newPassword();
    const created = await api().post('/v1/users', { email, password });
    const user = await signIn(local.url, email, password);
    const me = await user.api.get('/v1/users/me');
    expect(me.status).toBe(200);
    expect(Object.keys(me.body).sort()).toEqual([
      'balance',
      'createdAt',
      'email',
      'id',
      'notifications',
      'role',
    ]);
    expect(me.body).toEqual({
      id: created.body.id,
      email,
      role: 'user',
      balance: expect.any(Number),
      createdAt: created.body.createdAt,
      notifications: [],
    });
    expect(Number.isInteger(me.body.balance)).toBe(true);
    // The balance is the account's (the signup bonus, in dev).
    expect(me.body.balance).toBe((await user.api.get('/v1/account')).body.balance);

    const adminMe = await admin.api.get('/v1/users/me');
    expect(adminMe.body).toMatchObject({ id: admin.id, email: TEST_ADMIN.email, role: 'admin' });
  });

  it('needs credentials: without an Authorization header it is 401', async () => {
    const response = await api().get('/v1/users/me');
    expectProblem(response, 401, 'unauthorized');
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });
});

describe('bad input is a clear 4xx problem that changes nothing', () => {
  it('malformed JSON: 400 naming the document', async () => {
    const email = uniqueEmail('malformed');
    const response = await api().request('POST', '/v1/users', {
      rawBody: `{"email": "${email}", "password": "long-enough-pw"`,
      headers: { 'content-type': 'application/json' },
    });
    const problem = expectProblem(response, 400, 'validation-failed');
    expect(errorPaths(problem)).toEqual(['/']);
    await expectNoAccount(email);
  });

  it('missing fields: 400 naming each one', async () => {
    const none = expectProblem(await api().post('/v1/users', {}), 400, 'validation-failed');
    expect(errorPaths(none).sort()).toEqual(['/email', '/password']);

    const email = uniqueEmail('nopassword');
    const noPassword = expectProblem(await api().post('/v1/users', { email }), 400, 'validation-failed');
    expect(errorPaths(noPassword)).toEqual(['/password']);
    await expectNoAccount(email);

    const noBody = expectProblem(await api().request('POST', '/v1/users'), 400, 'validation-failed');
    expect(noBody.detail.length).toBeGreaterThan(0);

    const signInMissing = expectProblem(await api().post('/v1/tokens', { email }), 400, 'validation-failed');
    expect(errorPaths(signInMissing)).toContain('/password');
  });

  it('an invalid email: 400 naming /email', async () => {
    for (const email of ['not-an-email', 'two@@example.com', '@example.com', 'spaces in@example.com', '']) {
      const response = await api().post('/v1/users', { email, password: newPassword() });
      expect(errorPaths(expectProblem(response, 400, 'validation-failed'))).toEqual(['/email']);
    }
    const tooLong = `${'a'.repeat(250)}@example.com`;
    const response = await api().post('/v1/users', { email: tooLong, password: newPassword() });
    expect(errorPaths(expectProblem(response, 400, 'validation-failed'))).toEqual(['/email']);
    expect(await table.get({ pk: `EMAIL#${tooLong}`, sk: 'EMAIL' })).toBeUndefined();
  });

  it('a password shorter than 8 characters: 400 naming /password', async () => {
    const email = uniqueEmail('short');
    const response = await api().post('/v1/users', { email, password: 'seven77' });
    const problem = expectProblem(response, 400, 'validation-failed');
    expect(errorPaths(problem)).toEqual(['/password']);
    expect(problem.errors?.[0]?.message).toMatch(/8/);
    await expectNoAccount(email);
    // Eight characters is enough.
    expect((await api().post('/v1/users', { email, password: 'eight888' })).status).toBe(201);
  });

  it('wrong field types: 400 naming the field', async () => {
    const email = uniqueEmail('types');
    const response = await api().post('/v1/users', { email, password: 12345678 });
    expect(errorPaths(expectProblem(response, 400, 'validation-failed'))).toEqual(['/password']);
    const array = await api().post('/v1/users', [email, 'a-password']);
    expectProblem(array, 400, 'validation-failed');
    await expectNoAccount(email);
  });

  it('a body over MAX_BODY_BYTES (1 MiB): 413 payload-too-large', async () => {
    const email = uniqueEmail('huge');
    const response = await api().post('/v1/users', { email, password: 'x'.repeat(1024 * 1024 + 10) });
    const problem = expectProblem(response, 413, 'payload-too-large');
    expect(problem.detail).toContain(String(1024 * 1024));
    await expectNoAccount(email);
  });

  it('a body that is not JSON by its Content-Type: 415', async () => {
    const email = uniqueEmail('mime');
    const body = JSON.stringify({ email, password: 'long-enough-pw' });
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const response = await api().request('POST', '/v1/users', {
        rawBody: body,
        headers: { 'content-type': contentType },
      });
      expectProblem(response, 415, 'unsupported-media-type');
    }
    await expectNoAccount(email);
  });

  it('a refresh token that is not one: 400 for the wrong shape, 401 for an unknown token', async () => {
    expect(
      errorPaths(
        expectProblem(await api().post('/v1/tokens', { refreshToken: '' }), 400, 'validation-failed'),
      ),
    ).toEqual(['/refreshToken']);
    expectProblem(await api().post('/v1/tokens', { refreshToken: 'rt_made-up' }), 401, 'unauthorized');
    expectProblem(await api().post('/v1/tokens/revoke', {}), 400, 'validation-failed');
  });
});

describe('bad credentials are 401 unauthorized and change nothing', () => {
  let user: SignedInUser;
  let startingBalance: number;
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    user = await signUp(local.url, 'victim');
    startingBalance = await balanceOf(user);
  });

  /** Tries the token on a read and on two writes, and checks the writes did not happen. */
  async function expectRefused(token: string, detail?: RegExp): Promise<void> {
    const as = api().as(token);
    const me = expectProblem(await as.get('/v1/users/me'), 401, 'unauthorized');
    if (detail) expect(me.detail).toMatch(detail);
    expectProblem(await as.post('/v1/api-keys', { name: 'should not exist' }), 401, 'unauthorized');
    expectProblem(await as.post('/v1/account/top-ups', { amount: 50 }), 401, 'unauthorized');
    expect(await apiKeyIdsOf(user)).toEqual([]);
    expect(await balanceOf(user)).toBe(startingBalance);
  }

  it('accepts a token crafted with the real key and the right claims (so each refusal below is about its defect)', async () => {
    const token = await craftAccessToken(user.id);
    const me = await api().as(token).get('/v1/users/me');
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(user.id);
  });

  it('an expired token', async () => {
    await expectRefused(
      await craftAccessToken(user.id, { claims: { iat: now() - 3600, exp: now() - 60 } }),
      /expired/,
    );
  });

  it('a token that is not valid yet (nbf in the future)', async () => {
    await expectRefused(await craftAccessToken(user.id, { claims: { nbf: now() + 3600 } }), /not valid yet/);
  });

  it('a token for another audience', async () => {
    await expectRefused(await craftAccessToken(user.id, { claims: { aud: 'some-other-api' } }));
  });

  it('a token from another issuer', async () => {
    await expectRefused(await craftAccessToken(user.id, { claims: { iss: 'https://evil.example.com' } }));
  });

  it('a token without an expiry', async () => {
    await expectRefused(await craftAccessToken(user.id, { claims: { exp: undefined } }));
  });

  it('a token with a role the service does not know', async () => {
    await expectRefused(await craftAccessToken(user.id, { claims: { role: 'superuser' } }));
  });

  it('a token signed with another key (under the real kid, and without a kid)', async () => {
    const privateKey = foreignPrivateKey();
    await expectRefused(await craftAccessToken(user.id, { privateKey }));
    await expectRefused(await craftAccessToken(user.id, { privateKey, header: { kid: undefined } }));
  });

  it('an unsecured token (alg: none)', async () => {
    const valid = await craftAccessToken(user.id);
    const claims = decodePart(valid, 1);
    await expectRefused(unsecuredToken(claims));
    await expectRefused(unsecuredToken(claims, { kid: decodePart(valid, 0).kid }));
    await expectRefused(unsecuredToken(claims, { alg: 'None' }));
  });

  it('an HS256 token whose HMAC secret is the public key (raw bytes or JWK JSON)', async () => {
    const jwks = await api().get('/.well-known/jwks.json');
    const jwk = jwks.body.keys[0] as JWK;
    // Sanity: the JWKS key is the key the service signs with.
    expect(jwk.kid).toBe((await serviceSigningKey()).kid);
    const claims = decodePart(await craftAccessToken(user.id), 1);
    const { x, json } = publicKeySecrets(jwk);
    await expectRefused(hs256Token(claims, x, { kid: jwk.kid }));
    await expectRefused(hs256Token(claims, json, { kid: jwk.kid }));
    await expectRefused(hs256Token(claims, String(jwk.x), { kid: jwk.kid }));
  });

  it('a tampered token: a valid user token with its role flipped to admin', async () => {
    const genuine = user.accessToken;
    // The genuine token reaches the admin route and is refused for its role.
    const asUser = await api()
      .as(genuine)
      .post(`/v1/admin/users/${user.id}/grants`, { amount: 5, reason: 'test' });
    expectProblem(asUser, 403, 'forbidden');

    const tampered = tamperPayload(genuine, (payload) => {
      payload.role = 'admin';
    });
    expect(decodeJwt(tampered).role).toBe('admin');
    const asAdmin = await api()
      .as(tampered)
      .post(`/v1/admin/users/${user.id}/grants`, { amount: 5, reason: 'test' });
    expectProblem(asAdmin, 401, 'unauthorized');
    await expectRefused(tampered);
    // Tampering the subject is refused too.
    await expectRefused(
      tamperPayload(admin.accessToken, (payload) => {
        payload.sub = user.id;
      }),
    );
  });

  it('malformed Authorization headers', async () => {
    for (const authorization of [
      'Bearer',
      'Bearer ',
      'Basic dXNlcjpwYXNz',
      `Token ${user.accessToken}`,
      'Bearer a.b.c',
    ]) {
      const response = await api().get('/v1/users/me', { authorization });
      expectProblem(response, 401, 'unauthorized');
    }
    await expectRefused('cpk_not-a-real-key');
  });

  it('a deleted API key, and a refresh token used twice', async () => {
    const created = await user.api.post('/v1/api-keys', { name: 'to delete' });
    expect((await user.api.delete(`/v1/api-keys/${created.body.id}`)).status).toBe(204);
    await expectRefused(created.body.key, /API key/);

    const session = await signIn(local.url, user.email, user.password);
    expect((await api().post('/v1/tokens', { refreshToken: session.refreshToken })).status).toBe(200);
    expectProblem(
      await api().post('/v1/tokens', { refreshToken: session.refreshToken }),
      401,
      'unauthorized',
    );
  });
});
