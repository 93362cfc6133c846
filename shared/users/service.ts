/** The user system's use cases: sign-up, sign-in, refresh, sign-out, API keys and authentication. */
import { randomUUID } from 'node:crypto';
import { ulid } from 'ulid';
import { issueAccessToken, type TokenSettings, verifyAccessToken } from '../auth/access-tokens.ts';
import { hashPassword, verifyAgainstDummy, verifyPassword } from '../auth/passwords.ts';
import { hashSecret, newSecret } from '../auth/secrets.ts';
import type { SigningKeys } from '../auth/signing-keys.ts';
import { ConflictError, NotFoundError, RateLimitedError, UnauthorizedError } from '../domain/errors.ts';
import type { Principal, Role, User } from '../domain/users.ts';
import type { ApiKeyRecord, UserStore } from './ports.ts';

export const API_KEY_PREFIX = 'cpk_';
export const REFRESH_TOKEN_PREFIX = 'rt_';

export interface UserServiceSettings {
  scryptLog2N: number;
  signupBonus: number;
  refreshTokenTtlSeconds: number;
  token: TokenSettings;
  signIn: { maxFailuresPerAccount: number; maxFailuresPerSource: number; windowSeconds: number };
}

export interface TokenPair {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  refreshToken: string;
}

const INVALID_CREDENTIALS = 'The email or password is not correct.';
const INVALID_REFRESH = 'The refresh token is not valid; sign in again.';

export class UserService {
  constructor(
    private readonly users: UserStore,
    private readonly keys: () => Promise<SigningKeys>,
    private readonly settings: UserServiceSettings,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async register(input: { email: string; password: string; role?: Role }): Promise<User> {
    const user = {
      id: ulid(),
      email: input.email,
      role: input.role ?? 'user',
      passwordHash: await hashPassword(input.password, this.settings.scryptLog2N),
      createdAt: this.now().toISOString(),
    };
    await this.users.register(user, this.settings.signupBonus);
    return { id: user.id, email: user.email, role: user.role, createdAt: user.createdAt };
  }

  /** Creates the admin if the email is new; makes an existing user admin. Used at first start. */
  async ensureAdmin(email: string, password: string): Promise<User> {
    const existing = await this.users.findByEmail(email);
    if (existing) {
      if (existing.role !== 'admin') await this.users.setRole(existing.id, 'admin');
      return { id: existing.id, email: existing.email, role: 'admin', createdAt: existing.createdAt };
    }
    try {
      return await this.register({ email, password, role: 'admin' });
    } catch (error) {
      if (error instanceof ConflictError) return this.ensureAdmin(email, password);
      throw error;
    }
  }

  async signIn(input: { email: string; password: string; source: string }): Promise<TokenPair> {
    const { windowSeconds, maxFailuresPerAccount, maxFailuresPerSource } = this.settings.signIn;
    const nowSeconds = Math.floor(this.now().getTime() / 1000);
    const window = Math.floor(nowSeconds / windowSeconds);
    const retryAfter = (window + 1) * windowSeconds - nowSeconds;
    const scopes = [`account#${input.email}`, `source#${input.source}`];
    const expiresAt = (window + 2) * windowSeconds;
    // Count this attempt as a failure before checking the password, atomically, and take it back
    // unless it fails: reading the counts first would let a burst of concurrent guesses all pass
    // the check before any of them is recorded.
    const [accountFailures = 0, sourceFailures = 0] = await this.users.addFailures(
      scopes,
      window,
      1,
      expiresAt,
    );
    if (accountFailures > maxFailuresPerAccount || sourceFailures > maxFailuresPerSource) {
      await this.users.addFailures(scopes, window, -1, expiresAt);
      throw new RateLimitedError('Too many failed sign-ins; wait before trying again.', retryAfter);
    }
    const user = await this.users.findByEmail(input.email);
    // Unknown email and wrong password take the same time and get the same answer.
    const valid = user
      ? await verifyPassword(input.password, user.passwordHash)
      : await verifyAgainstDummy(input.password, this.settings.scryptLog2N);
    if (!user || !valid) throw new UnauthorizedError(INVALID_CREDENTIALS);
    await Promise.all([
      this.users.clearFailures(scopes[0] ?? '', window),
      this.users.addFailures(scopes.slice(1), window, -1, expiresAt),
    ]);
    const refreshToken = newSecret(REFRESH_TOKEN_PREFIX);
    await this.users.startFamily({
      tokenHash: hashSecret(refreshToken),
      userId: user.id,
      familyId: randomUUID(),
      expiresAt: nowSeconds + this.settings.refreshTokenTtlSeconds,
    });
    return this.pair(user.id, user.role, refreshToken);
  }

  /** Exchanges a refresh token for a new pair; the old one is spent. Reusing a spent one revokes its family. */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const nowSeconds = Math.floor(this.now().getTime() / 1000);
    const stored = await this.users.findRefreshToken(hashSecret(refreshToken));
    if (!stored || stored.expiresAt <= nowSeconds) throw new UnauthorizedError(INVALID_REFRESH);
    if (stored.state === 'spent') {
      // A spent token coming back means it leaked: end that whole session.
      await this.users.revokeFamily(stored.familyId);
      throw new UnauthorizedError(INVALID_REFRESH);
    }
    const user = await this.users.findById(stored.userId);
    if (!user) throw new UnauthorizedError(INVALID_REFRESH);
    const next = newSecret(REFRESH_TOKEN_PREFIX);
    const rotated = await this.users.rotate(
      stored,
      {
        tokenHash: hashSecret(next),
        userId: user.id,
        familyId: stored.familyId,
        expiresAt: nowSeconds + this.settings.refreshTokenTtlSeconds,
      },
      nowSeconds,
    );
    if (!rotated) {
      await this.users.revokeFamily(stored.familyId);
      throw new UnauthorizedError(INVALID_REFRESH);
    }
    return this.pair(user.id, user.role, next);
  }

  /** Signs out: the token's whole family stops working. Unknown tokens are ignored (idempotent). */
  async revoke(refreshToken: string): Promise<void> {
    const stored = await this.users.findRefreshToken(hashSecret(refreshToken));
    if (stored) await this.users.revokeFamily(stored.familyId);
  }

  /** The public keys that verify access tokens (a JWKS): the current key, and the previous one while it rotates out. */
  async publicKeys(): Promise<SigningKeys['all'][number]['publicJwk'][]> {
    return (await this.keys()).all.map((key) => key.publicJwk);
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
    if (!match?.[1]) throw new UnauthorizedError();
    const credential = match[1];
    if (credential.startsWith(API_KEY_PREFIX)) {
      const key = await this.users.findApiKey(hashSecret(credential));
      if (!key) throw new UnauthorizedError('The API key is not valid or was deleted.');
      return { userId: key.userId, role: key.role, via: 'api-key' };
    }
    return verifyAccessToken(await this.keys(), this.settings.token, credential);
  }

  async me(userId: string): Promise<User> {
    const user = await this.users.findById(userId);
    if (!user) throw new NotFoundError('This user no longer exists.');
    return { id: user.id, email: user.email, role: user.role, createdAt: user.createdAt };
  }

  async createApiKey(principal: Principal, name: string): Promise<{ record: ApiKeyRecord; key: string }> {
    const user = await this.me(principal.userId);
    const key = newSecret(API_KEY_PREFIX);
    const record: ApiKeyRecord = {
      id: ulid(),
      userId: user.id,
      role: user.role,
      name,
      keyHash: hashSecret(key),
      prefix: key.slice(0, API_KEY_PREFIX.length + 6),
      createdAt: this.now().toISOString(),
    };
    await this.users.createApiKey(record);
    return { record, key };
  }

  listApiKeys(principal: Principal): Promise<ApiKeyRecord[]> {
    return this.users.listApiKeys(principal.userId);
  }

  async deleteApiKey(principal: Principal, keyId: string): Promise<void> {
    const deleted = await this.users.deleteApiKey(principal.userId, keyId);
    if (!deleted) throw new NotFoundError('There is no such API key.');
  }

  private async pair(userId: string, role: Role, refreshToken: string): Promise<TokenPair> {
    const access = await issueAccessToken(await this.keys(), this.settings.token, { userId, role });
    return { accessToken: access.token, tokenType: 'Bearer', expiresIn: access.expiresIn, refreshToken };
  }
}
