/** The single-table layout: every key of every item, in one place. */

import { createHash } from 'node:crypto';

const SEQUENCE_WIDTH = 12;

export function accountShard(userId: string): number {
  return createHash('sha256').update(userId).digest().readUInt32BE(0) % 8;
}

export const keys = {
  userProfile: (userId: string) => ({ pk: `USER#${userId}`, sk: 'PROFILE' }),
  email: (email: string) => ({ pk: `EMAIL#${email}`, sk: 'EMAIL' }),
  account: (userId: string) => ({ pk: `USER#${userId}`, sk: 'ACCOUNT' }),
  ledgerEntry: (userId: string, sequence: number) => ({
    pk: `USER#${userId}`,
    sk: `LEDGER#${String(sequence).padStart(SEQUENCE_WIDTH, '0')}`,
  }),
  ledgerPrefix: 'LEDGER#',
  balanceChange: (userId: string, idempotencyId: string) => ({
    pk: `USER#${userId}`,
    sk: `TXN#${idempotencyId}`,
  }),
  refreshToken: (tokenHash: string) => ({ pk: `REFRESH#${tokenHash}`, sk: 'REFRESH' }),
  tokenFamily: (familyId: string) => ({ pk: `FAMILY#${familyId}`, sk: 'FAMILY' }),
  apiKeyByHash: (keyHash: string) => ({ pk: `APIKEY#${keyHash}`, sk: 'APIKEY' }),
  apiKeyOfUser: (userId: string, keyId: string) => ({ pk: `USER#${userId}`, sk: `APIKEYREF#${keyId}` }),
  apiKeyOfUserPrefix: 'APIKEYREF#',
  throttle: (scope: string, window: number) => ({ pk: `THROTTLE#${scope}`, sk: `W#${window}` }),
  model: (modelId: string) => ({ pk: `MODEL#${modelId}`, sk: 'MODEL' }),
  modelVersions: (name: string) => ({ pk: `MODELNAME#${name}`, sk: 'VERSIONS' }),
  /** gsi1: every model version, by name and version. */
  modelsIndex: (name: string, version: number) => ({
    gsi1pk: 'MODELS',
    gsi1sk: `${name}#${String(version).padStart(6, '0')}`,
  }),
  /** gsi2: the versions of one model name, newest last. */
  modelNameIndex: (name: string, version: number) => ({
    gsi2pk: `MODELNAME#${name}`,
    gsi2sk: String(version).padStart(6, '0'),
  }),
  prediction: (userId: string, predictionId: string) => ({
    pk: `USER#${userId}`,
    sk: `PRED#${predictionId}`,
  }),
  predictionPrefix: 'PRED#',
  batch: (userId: string, batchId: string) => ({ pk: `USER#${userId}`, sk: `BATCH#${batchId}` }),
  batchPrefix: 'BATCH#',
  notification: (userId: string, notificationId: string) => ({
    pk: `USER#${userId}`,
    sk: `NOTIF#${notificationId}`,
  }),
  notificationPrefix: 'NOTIF#',
  userUsage: (userId: string, day: string, modelId: string) => ({
    pk: `USER#${userId}`,
    sk: `USAGE#${day}#${modelId}`,
  }),
  userUsagePrefix: 'USAGE#',
  /** Service-wide counters per day, spread over shards so no single item is hot. */
  dayShard: (day: string, shard: number) => `DAY#${day}#S${shard}`,
  usersCounter: (shard: number) => ({ pk: `USERS#S${shard}`, sk: 'COUNT' }),
  audit: (month: string, id: string) => ({ pk: `AUDIT#${month}`, sk: id }),
  /** gsi2 values of an account that changed at `at`, spread over shards by user. */
  accountChanged: (userId: string, at: string, shardName: string, atName: string) => ({
    [shardName]: `ACCOUNTS#${accountShard(userId)}`,
    [atName]: `${at}#${userId}`,
  }),
  accountShards: 8,
  /** gsi1: a prediction by id alone (for admin refunds). */
  predictionIndex: (predictionId: string) => ({ gsi1pk: `PRED#${predictionId}`, gsi1sk: 'PRED' }),
} as const;

/** Seconds since the epoch, as DynamoDB's TTL wants them. */
export function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
