/** What the user use cases need from storage; the DynamoDB adapter implements it. */
import type { Role, User } from '../domain/users.ts';

export interface StoredUser extends User {
  passwordHash: string;
}

export interface RefreshTokenRecord {
  tokenHash: string;
  userId: string;
  familyId: string;
  /** Epoch seconds; the item expires by TTL after this. */
  expiresAt: number;
}

export interface ApiKeyRecord {
  id: string;
  userId: string;
  /** The owner's role, copied when the key is made. */
  role: Role;
  name: string;
  keyHash: string;
  /** The first characters of the key, so people can tell their keys apart. */
  prefix: string;
  createdAt: string;
}

export interface UserStore {
  register(user: StoredUser, signupBonus: number): Promise<void>;
  findById(userId: string): Promise<StoredUser | undefined>;
  findByEmail(email: string): Promise<StoredUser | undefined>;
  setRole(userId: string, role: Role): Promise<void>;
  startFamily(token: RefreshTokenRecord): Promise<void>;
  findRefreshToken(
    tokenHash: string,
  ): Promise<(RefreshTokenRecord & { state: 'active' | 'spent' }) | undefined>;
  rotate(old: RefreshTokenRecord, next: RefreshTokenRecord, nowSeconds: number): Promise<boolean>;
  revokeFamily(familyId: string): Promise<void>;
  createApiKey(key: ApiKeyRecord): Promise<void>;
  findApiKey(keyHash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(userId: string): Promise<ApiKeyRecord[]>;
  deleteApiKey(userId: string, keyId: string): Promise<boolean>;
  /** Adds `delta` to each scope's failure counter of the window, atomically; returns the new counts. */
  addFailures(scopes: string[], window: number, delta: number, expiresAt: number): Promise<number[]>;
  clearFailures(scope: string, window: number): Promise<void>;
}
