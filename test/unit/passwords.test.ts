import { scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashPassword, verifyAgainstDummy, verifyPassword } from '../../shared/auth/passwords.ts';
import { loadConfig } from '../../shared/config.ts';

describe('password hashing', () => {
  it("uses OWASP's scrypt cost of 2^17 by default in production configuration", () => {
    expect(loadConfig({}).auth.scryptLog2N).toBe(17);
    expect(loadConfig({ STAGE: 'prod' }).auth.scryptLog2N).toBe(17);
  });

  it('needs more memory at cost 2^17 than Node allows scrypt by default', () => {
    // The reason passwords.ts raises maxmem: without it, production hashing would throw.
    expect(() => scryptSync('password', 'salt', 32, { N: 2 ** 17, r: 8, p: 1 })).toThrow(/memory/i);
  });

  it('hashes and verifies a password at the production cost of 2^17', async () => {
    const hash = await hashPassword('correct horse battery staple', 17);
    expect(hash).toMatch(/^scrypt\$17\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(hash).not.toContain('correct horse battery staple');
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
    expect(await verifyPassword('correct horse battery stapler', hash)).toBe(false);
  });

  it('refuses a wrong password, including one differing only in case or white space', async () => {
    const hash = await hashPassword('Secret-password-1', 12);
    expect(await verifyPassword('Secret-password-1', hash)).toBe(true);
    for (const wrong of [
      'secret-password-1',
      'Secret-password-1 ',
      ' Secret-password-1',
      'Secret-password-2',
      '',
    ]) {
      expect(await verifyPassword(wrong, hash)).toBe(false);
    }
  });

  it('salts every hash, so the same password never hashes the same way twice', async () => {
    const first = await hashPassword('same password', 12);
    const second = await hashPassword('same password', 12);
    expect(first).not.toBe(second);
    expect(await verifyPassword('same password', first)).toBe(true);
    expect(await verifyPassword('same password', second)).toBe(true);
  });

  it('verifies against the cost stored in the hash, so raising the cost keeps old passwords working', async () => {
    const old = await hashPassword('an older password', 10);
    expect(old.split('$')[1]).toBe('10');
    expect(await verifyPassword('an older password', old)).toBe(true);
  });

  it('treats malformed or foreign stored hashes as a mismatch instead of throwing', async () => {
    for (const stored of [
      '',
      'plain-text',
      'bcrypt$12$abc',
      'scrypt$12$8$1$',
      'scrypt$12$16$1$c2FsdA$a2V5',
    ]) {
      expect(await verifyPassword('anything', stored)).toBe(false);
    }
  });

  it('answers false for the dummy check that unknown emails go through', async () => {
    expect(await verifyAgainstDummy('dummy password that matches nothing', 12)).toBe(false);
    expect(await verifyAgainstDummy('whatever', 12)).toBe(false);
  });
});
