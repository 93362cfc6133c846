/**
 * Crafting access tokens for negative tests: with the service's real signing key (read in-process
 * from the same key file the service uses), with a foreign key, unsecured (`alg: none`), HMAC'd with
 * the public key, or tampered after signing.
 */
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { type JWK, type JWTPayload, SignJWT } from 'jose';
import { signingKeys } from '../../shared/adapters/signing-key-source.ts';
import type { SigningKey } from '../../shared/auth/signing-keys.ts';
import { config } from '../../shared/config.ts';

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** The service's current signing key (private half included), as its functions load it. */
export async function serviceSigningKey(): Promise<SigningKey> {
  return (await signingKeys()).current;
}

export interface CraftOptions {
  /** Claims to add or override (`undefined` removes a default claim). */
  claims?: Record<string, unknown>;
  /** Header members to add or override. */
  header?: Record<string, unknown>;
  /** Signs with this key instead of the service's (e.g. a foreign Ed25519 key). */
  privateKey?: SigningKey['privateKey'];
}

/**
 * An access token shaped exactly like the service's (EdDSA, kid, typ at+jwt, iss, aud, sub, iat,
 * exp, jti, role), with `options` applied on top. With no options it is a valid token for `sub`.
 */
export async function craftAccessToken(sub: string, options: CraftOptions = {}): Promise<string> {
  const key = await serviceSigningKey();
  const { issuer, audience } = config().auth;
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: issuer,
    aud: audience,
    sub,
    iat: now,
    exp: now + 600,
    jti: randomUUID(),
    role: 'user',
    ...options.claims,
  };
  for (const name of Object.keys(payload)) if (payload[name] === undefined) delete payload[name];
  const header = { alg: 'EdDSA', kid: key.kid, typ: 'at+jwt', ...options.header } as {
    alg: string;
    [name: string]: unknown;
  };
  return new SignJWT(payload as JWTPayload)
    .setProtectedHeader(header)
    .sign(options.privateKey ?? key.privateKey);
}

/** A fresh Ed25519 private key the service has never seen. */
export function foreignPrivateKey(): SigningKey['privateKey'] {
  return generateKeyPairSync('ed25519').privateKey;
}

/** An unsecured JWT (`alg: none`, empty signature), built by hand since libraries refuse to. */
export function unsecuredToken(
  payload: Record<string, unknown>,
  header: Record<string, unknown> = {},
): string {
  return `${b64url(JSON.stringify({ alg: 'none', typ: 'at+jwt', ...header }))}.${b64url(JSON.stringify(payload))}.`;
}

/** An HS256 JWT whose HMAC secret is `secret` (the classic "verify with the public key as HMAC key" attack). */
export function hs256Token(
  payload: Record<string, unknown>,
  secret: string | Buffer,
  header: Record<string, unknown> = {},
): string {
  const signingInput = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', ...header }))}.${b64url(JSON.stringify(payload))}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

/** The JWK's raw public key bytes (`x`) and its JSON, the two secrets an HS256 confusion attack tries. */
export function publicKeySecrets(jwk: JWK): { x: Buffer; json: string } {
  return { x: Buffer.from(String(jwk.x), 'base64url'), json: JSON.stringify(jwk) };
}

export function decodePart(token: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString('utf8'));
}

/** Replaces a signed token's payload, keeping its header and (now wrong) signature. */
export function tamperPayload(token: string, change: (payload: Record<string, unknown>) => void): string {
  const [header, , signature] = token.split('.');
  const payload = decodePart(token, 1);
  change(payload);
  return `${header}.${b64url(JSON.stringify(payload))}.${signature}`;
}
