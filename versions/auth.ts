// Who is connecting. With --auth jwt every upgrade must carry a JSON Web Token, verified by jose
// (HS256 with a shared secret, or RS256/ES256 with a public key or a JWKS file) before the socket
// exists: a bad or missing token gets 401 with the reason and never becomes a WebSocket. With
// --auth dev the server signs tokens itself for any name (POST /api/dev-token), on loopback only:
// for the page and local experiments. With --auth none (the default) nobody is anybody in
// particular: a user is the name a connection goes by.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createLocalJWKSet, errors, importSPKI, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { isValidName } from './protocol.ts';

export const AUTH_MODES = ['none', 'dev', 'jwt'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** The subprotocol a browser offers beside its token (`bearer.<jwt>`); the server answers with it, never with the token. */
export const SUBPROTOCOL = 'chatroom';
const BEARER_PROTOCOL = 'bearer.';

export interface AuthOptions {
  mode: AuthMode;
  /** HS256: the shared secret (at least 32 bytes). --auth dev makes one up when none is given. */
  jwtSecret?: string;
  /** RS256 or ES256: a PEM public key (SPKI) file. */
  jwtPublicKeyFile?: string;
  /** RS256 or ES256: a JWKS file ({"keys":[…]}); the token's `kid` picks the key. */
  jwksFile?: string;
  /** Required `iss` and `aud`, when given. */
  issuer?: string;
  audience?: string;
  /** The claim that holds the display name; a token without it shows its `sub`. Default 'name'. */
  nameClaim?: string;
}

/** A signed-in user, from a verified token. */
export interface Account {
  /** The token's `sub`: what a direct message is addressed to. */
  readonly id: string;
  /** The display name (the name claim, else `sub`); a join frame cannot change it. */
  readonly name: string;
  /** When the token expires (ms since the Unix epoch): the socket is closed then (4401). */
  readonly expiresAtMs: number;
  /** The token's `scope` claim, split on spaces: `push` may push to users over HTTP. */
  readonly scopes: readonly string[];
}

export type AuthResult = { ok: true; account: Account | null } | { ok: false; reason: string };

export interface Authenticator {
  readonly mode: AuthMode;
  /** The request's token, verified: an account, null with --auth none, or why it is refused. */
  authenticate(req: IncomingMessage): Promise<AuthResult>;
  /** Verifies a token given by other means (an HTTP push's Authorization). */
  verify(token: string): Promise<AuthResult>;
  /** --auth dev: a token for `sub` (and a display name), valid for `ttl` ("1h"). */
  issue?(sub: string, name: string | undefined, ttl: string): Promise<string>;
}

/** The shortest HS256 secret accepted: RFC 7518 §3.2 asks for a key as long as the hash (32 bytes). */
const MIN_SECRET_BYTES = 32;

export function createAuthenticator(o: AuthOptions): Authenticator {
  if (o.mode === 'none') return { mode: 'none', authenticate: async () => ({ ok: true, account: null }), verify: async () => ({ ok: false, reason: 'this server has no sign-in (--auth none)' }) };
  const sources = [o.jwtSecret, o.jwtPublicKeyFile, o.jwksFile].filter((s) => s !== undefined).length;
  if (sources > 1) throw new Error('give one of --jwt-secret, --jwt-public-key and --jwks-file');
  if (o.mode === 'jwt' && sources === 0) throw new Error('--auth jwt needs --jwt-secret, --jwt-public-key or --jwks-file');
  const secretText = o.jwtSecret ?? (o.mode === 'dev' && sources === 0 ? randomBytes(32).toString('base64url') : undefined);
  if (secretText !== undefined && Buffer.byteLength(secretText) < MIN_SECRET_BYTES) throw new Error(`--jwt-secret must be at least ${MIN_SECRET_BYTES} bytes (HS256)`);
  const secret = secretText === undefined ? null : new TextEncoder().encode(secretText);
  const algorithms = secret ? ['HS256'] : ['RS256', 'ES256'];
  let key: Promise<Uint8Array | CryptoKey | JWTVerifyGetKey>;
  // The secret imported once as a CryptoKey: jose would import raw bytes again on every verify
  // (about a third of what a verify costs; docs/results.md, "Who is who").
  if (secret) key = crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  else if (o.jwksFile) key = Promise.resolve(createLocalJWKSet(JSON.parse(readFileSync(o.jwksFile, 'utf8'))));
  else {
    const pem = readFileSync(o.jwtPublicKeyFile as string, 'utf8');
    // The key's type says which algorithm it verifies: an RSA key RS256, an EC P-256 key ES256.
    key = importSPKI(pem, 'RS256').catch(() => importSPKI(pem, 'ES256'));
  }
  const nameClaim = o.nameClaim ?? 'name';

  async function verify(token: string): Promise<AuthResult> {
    let payload: JWTPayload;
    try {
      const k = await key;
      const opts = { algorithms, requiredClaims: ['sub', 'exp'], ...(o.issuer ? { issuer: o.issuer } : {}), ...(o.audience ? { audience: o.audience } : {}) };
      ({ payload } = typeof k === 'function' ? await jwtVerify(token, k, opts) : await jwtVerify(token, k, opts));
    } catch (err) {
      return { ok: false, reason: whyRefused(err) };
    }
    if (!isValidName(payload.sub)) return { ok: false, reason: 'the token\'s "sub" must be 1-64 printable characters' };
    const claimed = payload[nameClaim];
    const name = isValidName(claimed) ? claimed : payload.sub;
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
    return { ok: true, account: { id: payload.sub, name, expiresAtMs: (payload.exp as number) * 1000, scopes } };
  }

  return {
    mode: o.mode,
    verify,
    authenticate: (req) => {
      const token = tokenOf(req);
      if (token === null) return Promise.resolve({ ok: false, reason: 'no token: send Authorization: Bearer <jwt>, the subprotocol bearer.<jwt>, or ?token=<jwt>' });
      return verify(token);
    },
    ...(o.mode === 'dev' && secret ? { issue: (sub: string, name: string | undefined, ttl: string) => signToken(secret, { sub, ...(name ? { name } : {}) }, ttl, o) } : {}),
  };
}

/** Signs an HS256 token: `npm run token`, and --auth dev's sign-in. */
export function signToken(secret: Uint8Array | string, claims: { sub: string; name?: string; scope?: string }, ttl: string, o: { issuer?: string; audience?: string } = {}): Promise<string> {
  const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  let jwt = new SignJWT({ ...(claims.name ? { name: claims.name } : {}), ...(claims.scope ? { scope: claims.scope } : {}) }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(claims.sub).setIssuedAt().setExpirationTime(ttl);
  if (o.issuer) jwt = jwt.setIssuer(o.issuer);
  if (o.audience) jwt = jwt.setAudience(o.audience);
  return jwt.sign(key);
}

/**
 * The token an upgrade carries: `Authorization: Bearer` (clients that can set headers), the
 * subprotocol `bearer.<jwt>` (browsers: they cannot set headers on a WebSocket, and a
 * subprotocol, unlike a URL, is not written to access logs), or `?token=` (the fallback).
 */
export function tokenOf(req: IncomingMessage): string | null {
  const bearer = bearerOf(req.headers.authorization);
  if (bearer !== null) return bearer;
  for (const p of (req.headers['sec-websocket-protocol'] ?? '').split(',')) {
    const t = p.trim();
    if (t.startsWith(BEARER_PROTOCOL) && t.length > BEARER_PROTOCOL.length) return t.slice(BEARER_PROTOCOL.length);
  }
  return new URL(req.url ?? '/', 'http://x').searchParams.get('token');
}

/** The credential of an `Authorization: Bearer <credential>` header, or null. */
export function bearerOf(header: string | undefined): string | null {
  return (header && /^Bearer\s+(\S+)$/i.exec(header)?.[1]) || null;
}

/** ws's handleProtocols: answer `chatroom` when offered; never echo a `bearer.` protocol (it is a token). */
export function chooseProtocol(offered: Set<string>): string | false {
  return offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false;
}

/** jose's refusal in words a client can act on. */
function whyRefused(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'the token is not valid yet (nbf)';
    if (err.reason === 'missing') return `the token has no "${err.claim}" claim`;
    return `the token's "${err.claim}" claim is not accepted here`;
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token\'s signature does not verify';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token is signed with an algorithm this server does not accept';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key of the JWKS matches the token';
  return 'the token is not a valid JWT';
}
