/** Users, roles and the rules for the identities people sign in with. */
import { z } from 'zod';

export type Role = 'user' | 'admin';

export interface User {
  id: string;
  email: string;
  role: Role;
  createdAt: string;
}

export interface Principal {
  userId: string;
  role: Role;
  /** How the caller proved who they are. */
  via: 'access-token' | 'api-key';
}

export const MIN_PASSWORD_LENGTH = 8;
/** scrypt happily hashes megabytes; nobody's password is that long. */
export const MAX_PASSWORD_LENGTH = 256;

/** Email addresses are compared case-insensitively and without surrounding white space. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export const EmailSchema = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email({ message: 'must be a valid email address' }))
  .transform(normalizeEmail);

export const PasswordSchema = z
  .string()
  .min(MIN_PASSWORD_LENGTH, { message: `must be at least ${MIN_PASSWORD_LENGTH} characters` })
  .max(MAX_PASSWORD_LENGTH, { message: `must be at most ${MAX_PASSWORD_LENGTH} characters` });

export function isAdmin(principal: Principal): boolean {
  return principal.role === 'admin';
}
