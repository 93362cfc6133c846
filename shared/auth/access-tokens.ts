/**
 * Access tokens: short-lived JWTs signed with EdDSA. Verification pins the algorithm and requires
 * exp, iat, sub, jti, the issuer and the audience, so `alg: none`, HMAC-with-the-public-key,
 * foreign keys, other audiences and tampered tokens are all refused.
 */
import { randomUUID } from 'node:crypto';
import { errors, type JWTVerifyGetKey, jwtVerify, SignJWT } from 'jose';
import { UnauthorizedError } from '../domain/errors.ts';
import type { Principal, Role } from '../domain/users.ts';
import type { SigningKeys } from './signing-keys.ts';

export const ACCESS_TOKEN_ALGORITHM = 'EdDSA';

export interface TokenSettings {
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

export async function issueAccessToken(
  keys: SigningKeys,
  settings: TokenSettings,
  subject: { userId: string; role: Role },
): Promise<{ token: string; expiresIn: number }> {
  const token = await new SignJWT({ role: subject.role })
    .setProtectedHeader({ alg: ACCESS_TOKEN_ALGORITHM, kid: keys.current.kid, typ: 'at+jwt' })
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setSubject(subject.userId)
    .setIssuedAt()
    .setExpirationTime(`${settings.ttlSeconds}s`)
    .setJti(randomUUID())
    .sign(keys.current.privateKey);
  return { token, expiresIn: settings.ttlSeconds };
}

export async function verifyAccessToken(
  keys: SigningKeys,
  settings: TokenSettings,
  token: string,
): Promise<Principal> {
  const keyFor: JWTVerifyGetKey = (header) => {
    const key = keys.all.find((k) => k.kid === header.kid);
    if (!key) throw new errors.JWKSNoMatchingKey();
    return key.publicKey;
  };
  try {
    const { payload } = await jwtVerify(token, keyFor, {
      algorithms: [ACCESS_TOKEN_ALGORITHM],
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ['exp', 'iat', 'sub', 'jti'],
      typ: 'at+jwt',
      clockTolerance: 5,
    });
    const role = payload.role;
    if ((role !== 'user' && role !== 'admin') || !payload.sub)
      throw new UnauthorizedError('The access token is not valid.');
    return { userId: payload.sub, role, via: 'access-token' };
  } catch (error) {
    if (error instanceof UnauthorizedError) throw error;
    if (error instanceof errors.JWTExpired)
      throw new UnauthorizedError('The access token has expired; get a new one with your refresh token.');
    if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'nbf') {
      throw new UnauthorizedError('The access token is not valid yet.');
    }
    throw new UnauthorizedError('The access token is not valid.', { cause: error });
  }
}
