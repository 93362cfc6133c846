/**
 * The keys that sign access tokens. Key material is a JSON document `{current, previous?}` of random
 * strings (a Secrets Manager secret in AWS, a generated file locally); each string seeds an Ed25519
 * key pair. Tokens are signed with `current`; `previous` still verifies during a rotation. Each
 * key's `kid` is its JWK thumbprint, so clients of /.well-known/jwks.json can pick the right one.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { z } from 'zod';
import { ConfigError } from '../domain/errors.ts';

export const KeyMaterialSchema = z.object({
  current: z.string().min(32),
  previous: z
    .string()
    .min(32)
    .optional()
    .or(z.literal('').transform(() => undefined)),
});
export type KeyMaterial = z.infer<typeof KeyMaterialSchema>;

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
}

export interface SigningKeys {
  current: SigningKey;
  all: SigningKey[];
}

// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410).
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

async function keyFrom(secret: string): Promise<SigningKey> {
  const seed = createHash('sha256').update(secret).digest();
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, privateKey, publicKey, publicJwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' } };
}

export async function signingKeysFrom(rawMaterial: string): Promise<SigningKeys> {
  let json: unknown;
  try {
    json = JSON.parse(rawMaterial);
  } catch {
    throw new ConfigError('The signing key material is not JSON ({"current": "...", "previous": "..."}).');
  }
  const parsed = KeyMaterialSchema.safeParse(json);
  if (!parsed.success)
    throw new ConfigError('The signing key material needs a "current" secret of 32+ characters.');
  const current = await keyFrom(parsed.data.current);
  const all = [current];
  if (parsed.data.previous) all.push(await keyFrom(parsed.data.previous));
  return { current, all };
}
