/**
 * The composition root: wires the adapters to the use cases once per container, from configuration.
 * Handlers ask for the services here; use cases never construct adapters themselves.
 */
import { dynamoClient } from '../adapters/aws-clients.ts';
import { CreditsStore } from '../adapters/dynamo/credits-store.ts';
import { DynamoUserRepository } from '../adapters/dynamo/users-store.ts';
import { signingKeys } from '../adapters/signing-key-source.ts';
import { config, requireResource } from '../config.ts';
import { CreditsService } from '../credits/service.ts';
import { UserService } from '../users/service.ts';

function build() {
  const settings = config();
  const tableName = requireResource('tableName');
  const creditsStore = new CreditsStore(dynamoClient(), tableName);
  const userRepository = new DynamoUserRepository(dynamoClient(), tableName, creditsStore);
  const users = new UserService(userRepository, signingKeys, {
    scryptLog2N: settings.auth.scryptLog2N,
    signupBonus: settings.signupBonus,
    refreshTokenTtlSeconds: settings.auth.refreshTokenTtlSeconds,
    token: {
      issuer: settings.auth.issuer,
      audience: settings.auth.audience,
      ttlSeconds: settings.auth.accessTokenTtlSeconds,
    },
    signIn: settings.auth.signIn,
  });
  const credits = new CreditsService(creditsStore, userRepository, {
    selfServiceTopUps: settings.selfServiceTopUps,
  });
  return { users, credits, creditsStore, userRepository };
}

let built: ReturnType<typeof build> | undefined;

export function services(): ReturnType<typeof build> {
  built ??= build();
  return built;
}
