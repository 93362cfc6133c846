/** Users, their sign-in email, refresh-token families and API keys in DynamoDB. */
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError } from '../../domain/errors.ts';
import type { TransactionPart } from '../../domain/transactions.ts';
import type { User } from '../../domain/users.ts';
import type { ApiKeyRecord, RefreshTokenRecord, StoredUser, UserStore } from '../../users/ports.ts';
import type { DynamoAccountStore } from './account-store.ts';
import { cancellationReasons } from './errors.ts';
import { keys } from './keys.ts';
import { cancellation, conditionError, part, transactItems } from './transactions.ts';

const REGISTER_ATTEMPTS = 5;

export class DynamoUserStore implements UserStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly accounts: DynamoAccountStore,
    /** Counter updates that go with a registration (users, credits added by the bonus). */
    private readonly registrationParts: (
      signupBonus: number,
      createdAt: string,
    ) => TransactionPart[] = () => [],
  ) {}

  async register(user: StoredUser, signupBonus: number, attempt = 1): Promise<void> {
    const parts = [
      // The email item makes addresses unique: of concurrent sign-ups, one condition holds.
      part(
        'email',
        {
          Put: {
            TableName: this.tableName,
            Item: { ...keys.email(user.email), userId: user.id },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        () => new ConflictError('An account with this email already exists.'),
      ),
      part('user-profile', {
        Put: {
          TableName: this.tableName,
          Item: {
            ...keys.userProfile(user.id),
            ...user,
            gsi1pk: 'USERS',
            gsi1sk: `${user.createdAt}#${user.id}`,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      }),
      ...this.accounts.openAccountParts(user.id, signupBonus, user.createdAt),
      ...this.registrationParts(signupBonus, user.createdAt),
    ];
    try {
      await this.client.send(new TransactWriteCommand({ TransactItems: transactItems(parts) }));
    } catch (error) {
      const cancelled = cancellation(error, parts);
      const email = cancelled?.failed.find((f) => f.part.tag === 'email');
      if (email) throw conditionError(email);
      // While another transaction on one of these items is in flight (a concurrent sign-up with the
      // same email, say), DynamoDB cancels this one with TransactionConflict instead of checking the
      // conditions: try again, and the conditions decide.
      if (cancelled?.conflict && attempt < REGISTER_ATTEMPTS) {
        await new Promise((resolve) => setTimeout(resolve, 10 * attempt + Math.random() * 40));
        return this.register(user, signupBonus, attempt + 1);
      }
      throw error;
    }
  }

  async findById(userId: string): Promise<StoredUser | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: keys.userProfile(userId) }),
    );
    return Item ? toStoredUser(Item) : undefined;
  }

  async findByEmail(email: string): Promise<StoredUser | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: keys.email(email) }),
    );
    return Item ? this.findById(String(Item.userId)) : undefined;
  }

  async setRole(userId: string, role: User['role']): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.userProfile(userId),
        UpdateExpression: 'SET #role = :role',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#role': 'role' },
        ExpressionAttributeValues: { ':role': role },
      }),
    );
  }

  // Refresh tokens: every token belongs to a family started by one sign-in.

  async startFamily(token: RefreshTokenRecord): Promise<void> {
    await this.client.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: this.tableName,
              Item: {
                ...keys.tokenFamily(token.familyId),
                userId: token.userId,
                revoked: false,
                expiresAt: token.expiresAt,
              },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
          {
            Put: {
              TableName: this.tableName,
              Item: { ...keys.refreshToken(token.tokenHash), ...token, state: 'active' },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
        ],
      }),
    );
  }

  async findRefreshToken(
    tokenHash: string,
  ): Promise<(RefreshTokenRecord & { state: 'active' | 'spent' }) | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: keys.refreshToken(tokenHash), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    return {
      tokenHash,
      userId: String(Item.userId),
      familyId: String(Item.familyId),
      expiresAt: Number(Item.expiresAt),
      state: Item.state === 'spent' ? 'spent' : 'active',
    };
  }

  /**
   * Spends `old` and issues `next` in the same family, atomically: of two concurrent uses of one
   * token, only one gets a new token. Returns false when the token was already spent or its family
   * revoked.
   */
  async rotate(old: RefreshTokenRecord, next: RefreshTokenRecord, nowSeconds: number): Promise<boolean> {
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.tableName,
                Key: keys.refreshToken(old.tokenHash),
                UpdateExpression: 'SET #state = :spent, spentAt = :now',
                ConditionExpression: '#state = :active AND expiresAt > :now',
                ExpressionAttributeNames: { '#state': 'state' },
                ExpressionAttributeValues: { ':spent': 'spent', ':active': 'active', ':now': nowSeconds },
              },
            },
            {
              ConditionCheck: {
                TableName: this.tableName,
                Key: keys.tokenFamily(old.familyId),
                ConditionExpression: 'revoked = :false',
                ExpressionAttributeValues: { ':false': false },
              },
            },
            {
              Put: {
                TableName: this.tableName,
                Item: { ...keys.refreshToken(next.tokenHash), ...next, state: 'active' },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
      return true;
    } catch (error) {
      if (cancellationReasons(error)) return false;
      throw error;
    }
  }

  async revokeFamily(familyId: string): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.tokenFamily(familyId),
        UpdateExpression: 'SET revoked = :true',
        ExpressionAttributeValues: { ':true': true },
      }),
    );
  }

  // API keys: looked up by the hash of the secret (one read, no scan), listed per user.

  async createApiKey(key: ApiKeyRecord): Promise<void> {
    await this.client.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: this.tableName,
              Item: { ...keys.apiKeyByHash(key.keyHash), ...key },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
          {
            Put: {
              TableName: this.tableName,
              Item: { ...keys.apiKeyOfUser(key.userId, key.id), ...key },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
        ],
      }),
    );
  }

  async findApiKey(keyHash: string): Promise<ApiKeyRecord | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: keys.apiKeyByHash(keyHash), ConsistentRead: true }),
    );
    return Item ? toApiKey(Item) : undefined;
  }

  async listApiKeys(userId: string): Promise<ApiKeyRecord[]> {
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': keys.userProfile(userId).pk, ':prefix': keys.apiKeyOfUserPrefix },
        ScanIndexForward: false,
      }),
    );
    return (Items ?? []).map(toApiKey).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async deleteApiKey(userId: string, keyId: string): Promise<boolean> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: keys.apiKeyOfUser(userId, keyId),
        ConsistentRead: true,
      }),
    );
    if (!Item) return false;
    await this.client.send(
      new TransactWriteCommand({
        TransactItems: [
          { Delete: { TableName: this.tableName, Key: keys.apiKeyByHash(String(Item.keyHash)) } },
          { Delete: { TableName: this.tableName, Key: keys.apiKeyOfUser(userId, keyId) } },
        ],
      }),
    );
    return true;
  }

  // Sign-in throttling: failure counters per fixed window, expiring by TTL.

  async addFailures(scopes: string[], window: number, delta: number, expiresAt: number): Promise<number[]> {
    return Promise.all(
      scopes.map(async (scope) => {
        const { Attributes } = await this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: keys.throttle(scope, window),
            UpdateExpression: 'ADD failures :delta SET expiresAt = :expiresAt',
            ExpressionAttributeValues: { ':delta': delta, ':expiresAt': expiresAt },
            ReturnValues: 'UPDATED_NEW',
          }),
        );
        return Number(Attributes?.failures ?? 0);
      }),
    );
  }

  async clearFailures(scope: string, window: number): Promise<void> {
    await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: keys.throttle(scope, window) }),
    );
  }
}

function toStoredUser(item: Record<string, unknown>): StoredUser {
  return {
    id: String(item.id),
    email: String(item.email),
    role: item.role === 'admin' ? 'admin' : 'user',
    passwordHash: String(item.passwordHash),
    createdAt: String(item.createdAt),
  };
}

function toApiKey(item: Record<string, unknown>): ApiKeyRecord {
  return {
    id: String(item.id),
    userId: String(item.userId),
    role: item.role === 'admin' ? 'admin' : 'user',
    name: String(item.name),
    keyHash: String(item.keyHash),
    prefix: String(item.prefix),
    createdAt: String(item.createdAt),
  };
}
