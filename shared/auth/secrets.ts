import { createHash, randomBytes } from 'node:crypto';

/** A high-entropy secret with a recognisable prefix, e.g. for API keys and refresh tokens. */
export function newSecret(prefix: string, bytes = 32): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}

/**
 * Secrets we issue are 256 random bits, so a fast hash is enough to store them: nobody can guess
 * one from its hash. (Passwords, chosen by people, get scrypt instead.)
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

export function fingerprint(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64url');
}
