/** Loads the signing key material once per container: Secrets Manager in AWS, a local file in development. */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type SigningKeys, signingKeysFrom } from '../auth/signing-keys.ts';
import { config } from '../config.ts';
import { ConfigError } from '../domain/errors.ts';

async function localKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dirname(path), { recursive: true });
  const material = JSON.stringify({ current: randomBytes(32).toString('base64url') });
  // Written whole to a temporary file, then published with link(), which fails if the key exists:
  // of processes starting together one key wins, and nobody ever reads a half-written file.
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, material, { mode: 0o600 });
  try {
    await link(temporary, path);
    return material;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readFile(path, 'utf8');
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

async function secretValue(arn: string): Promise<string> {
  const { region, endpoints } = config();
  const endpoint = endpoints.secretsManager;
  const client = new SecretsManagerClient(endpoint ? { region, endpoint } : { region });
  try {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: arn }));
    if (!SecretString) throw new ConfigError('The signing key secret is empty.');
    return SecretString;
  } finally {
    client.destroy();
  }
}

let loaded: Promise<SigningKeys> | undefined;

export function signingKeys(): Promise<SigningKeys> {
  loaded ??= (async () => {
    const { signingKeySecretArn, signingKeyFile } = config().auth;
    if (signingKeySecretArn) return signingKeysFrom(await secretValue(signingKeySecretArn));
    if (signingKeyFile) return signingKeysFrom(await localKeyFile(signingKeyFile));
    throw new ConfigError(
      'No signing key configured: set SIGNING_KEY_SECRET_ARN (or SIGNING_KEY_FILE locally).',
    );
  })();
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}
