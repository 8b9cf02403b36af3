// Who is who: sign-in checked before the upgrade, a name a join frame cannot change, a socket
// closed when its token expires, direct messages that reach every connection of a user and
// nobody else, a push to a user that needs a server credential, the message model's media
// fields, and the message log.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { signToken } from '../../versions/auth.ts';
import type { ChatServer } from '../../versions/host.ts';
import { resolveHostOptions } from '../../versions/host-options.ts';
import type { ServerMessage } from '../../versions/protocol.ts';
import { startVersion, type OneProcessVersion } from '../../versions/versions.ts';
import { delay, eventually, metricValue, openClient, runCli, stats, type TestClient } from '../helpers.ts';

type Direct = Extract<ServerMessage, { type: 'direct' }>;
const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const servers: ChatServer[] = [];
const clients: TestClient[] = [];
const dir = mkdtempSync(join(tmpdir(), 'identity-'));

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(version: OneProcessVersion, options: Parameters<typeof startVersion>[1] = {}): Promise<ChatServer> {
  const s = await startVersion(version, { port: 0, ...options });
  servers.push(s);
  return s;
}

async function open(s: ChatServer, query: Parameters<typeof openClient>[1], headers: Record<string, string> = {}, protocols: string[] = []): Promise<TestClient> {
  const c = await openClient(s, query, headers, true, protocols);
  clients.push(c);
  return c;
}

const jwtServer = (version: OneProcessVersion = 'v3', extra: Parameters<typeof startVersion>[1] = {}): Promise<ChatServer> => start(version, { auth: { mode: 'jwt', jwtSecret: SECRET, audience: 'chat' }, ...extra });
const token = (sub: string, ttl = '1h', more: { name?: string; scope?: string; secret?: string; audience?: string } = {}): Promise<string> =>
  signToken(more.secret ?? SECRET, { sub, ...(more.name ? { name: more.name } : {}), ...(more.scope ? { scope: more.scope } : {}) }, ttl, { audience: more.audience ?? 'chat' });
const bearer = async (sub: string, name?: string): Promise<Record<string, string>> => ({ authorization: `Bearer ${await token(sub, '1h', name ? { name } : {})}` });
const directs = (c: TestClient): Direct[] => c.ofType('direct');

describe('sign-in (--auth jwt), checked before the upgrade', () => {
  it('takes a token from Authorization, from the bearer subprotocol, or from ?token=; the user is its sub, the name its name claim', async () => {
    const s = await jwtServer();
    const a = await open(s, { room: 'r', name: 'ignored' }, await bearer('u-ann', 'Ann'));
    const joined = a.ofType('joined')[0]!;
    expect(joined).toMatchObject({ user: 'u-ann', name: 'Ann' });
    expect(joined.server.auth).toBe('jwt');
    const b = await open(s, { room: 'r' }, {}, ['chatroom', `bearer.${await token('u-bob')}`]);
    expect(b.ws.protocol).toBe('chatroom'); // the token is never echoed back as the protocol
    expect(b.ofType('joined')[0]).toMatchObject({ user: 'u-bob', name: 'u-bob' });
    const c = await open(s, { room: 'r', token: await token('u-cy') });
    expect(c.ofType('joined')[0]!.user).toBe('u-cy');
    c.send({ type: 'chat', content: 'hi' });
    await a.waitFor(() => a.chats().length === 1, 'the chat');
    expect(a.chats()[0]).toMatchObject({ from: 'u-cy', user: 'u-cy' });
  });

  it.each([
    ['no token', async () => ({}), /no token/],
    ['an expired token', async () => ({ authorization: `Bearer ${await signToken(SECRET, { sub: 'ann' }, '-1m', { audience: 'chat' })}` }), /has expired/],
    ['a token signed with another secret', async () => ({ authorization: `Bearer ${await token('ann', '1h', { secret: 'another-secret-of-at-least-32-bytes!' })}` }), /signature does not verify/],
    ['a token for another audience', async () => ({ authorization: `Bearer ${await token('ann', '1h', { audience: 'elsewhere' })}` }), /"aud" claim/],
    ['garbage', async () => ({ authorization: 'Bearer not.a.jwt' }), /not a valid JWT/],
  ])('refuses %s with 401 and the reason, and never opens a socket', async (_what, headers, reason) => {
    const s = await jwtServer();
    await expect(openClient(s, { room: 'r' }, await headers(), false)).rejects.toThrow(reason);
    await expect(openClient(s, { room: 'r' }, await headers(), false)).rejects.toThrow(/^HTTP 401/);
    expect((await stats(s)).connections).toBe(0);
    expect(await metricValue(s, 'chat_limit_refusals_total', 'limit="auth"')).toBe(2);
  });

  it('keeps the name the token gives: a join frame that renames is refused, a switch keeps it; two tabs of one user share it', async () => {
    const s = await jwtServer();
    const a1 = await open(s, { room: 'r' }, await bearer('ann', 'Ann'));
    const a2 = await open(s, { room: 'r' }, await bearer('ann', 'Ann'));
    expect(a2.ofType('joined')[0]!.name).toBe('Ann');
    expect(a2.ofType('error')).toEqual([]); // not NAME_TAKEN: the same user
    a1.send({ type: 'join', room: 'r', name: 'mallory' });
    await a1.waitFor(() => a1.ofType('error').length === 1, 'the refusal');
    expect(a1.ofType('error')[0]).toMatchObject({ code: 'NAME_FIXED' });
    await a1.join('elsewhere');
    expect(a1.ofType('joined').at(-1)).toMatchObject({ room: 'elsewhere', name: 'Ann', user: 'ann' });
  });

  it('closes a socket with 4401 when its token expires', async () => {
    const s = await jwtServer();
    const a = await open(s, { room: 'r' }, { authorization: `Bearer ${await token('ann', '2s')}` });
    await a.waitFor(() => a.closed !== null, 'the close at expiry', 6_000);
    expect(a.closed!.code).toBe(4401);
  });

  it('--auth dev signs in any name from POST /api/dev-token, and only on loopback', async () => {
    expect(() => resolveHostOptions({ host: '0.0.0.0', auth: { mode: 'dev' } })).toThrow(/loopback only/);
    const s = await start('v3', { auth: { mode: 'dev' } });
    const res = await fetch(`${s.url}api/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'zoë' }) });
    expect(res.status).toBe(200);
    const { token: t } = (await res.json()) as { token: string };
    const c = await open(s, { room: 'r' }, {}, ['chatroom', `bearer.${t}`]);
    expect(c.ofType('joined')[0]).toMatchObject({ user: 'zoë', name: 'zoë' });
    await expect(openClient(s, { room: 'r' }, {}, false)).rejects.toThrow(/HTTP 401/);
  });
});

describe('direct messages', () => {
  it.each(['v1', 'v2', 'v3'] as const)('%s: reach every connection of the recipient, in any room, and the sender\'s, and nobody else', async (version) => {
    const s = await start(version);
    const ann1 = await open(s, { room: 'r1', name: 'ann' });
    const ann2 = await open(s, { room: 'r2', name: 'ann' }); // her other tab, in another room
    const bob = await open(s, { room: 'r1', name: 'bob' });
    const cy = await open(s, { room: 'r2', name: 'cy' });
    cy.send({ type: 'direct', to: 'ann', content: 'psst', id: 'd1' });
    for (const c of [ann1, ann2, cy]) await c.waitFor(() => directs(c).length === 1, 'the direct message');
    expect(directs(ann1)[0]).toMatchObject({ type: 'direct', from: 'cy', name: 'cy', to: 'ann', content: 'psst', id: 'd1' });
    await delay(200);
    expect(directs(bob)).toEqual([]);
    expect(bob.chats()).toEqual([]);
    cy.send({ type: 'direct', to: 'nobody', content: 'hello?', id: 'd2' });
    await cy.waitFor(() => cy.ofType('error').length === 1, 'USER_OFFLINE');
    expect(cy.ofType('error')[0]).toMatchObject({ code: 'USER_OFFLINE', id: 'd2' });
    expect(directs(cy)).toHaveLength(1);
    // Without sign-in a user is a name: renamed, the connection is the new name's.
    await bob.join('r1', 'robert');
    cy.send({ type: 'direct', to: 'robert', content: 'hi robert' });
    await bob.waitFor(() => directs(bob).length === 1, 'the direct to the new name');
    cy.send({ type: 'direct', to: 'bob', content: 'hi bob' });
    await cy.waitFor(() => cy.ofType('error').length === 2, 'bob is gone');
  });

  it('signed in, go to the user id whatever the display name, and carry it as from', async () => {
    const s = await jwtServer();
    const ann = await open(s, { room: 'r' }, await bearer('u1', 'Ann'));
    const bob = await open(s, { room: 'r' }, await bearer('u2', 'Bob'));
    bob.send({ type: 'direct', to: 'u1', content: 'hey' });
    await ann.waitFor(() => directs(ann).length === 1, 'the direct');
    expect(directs(ann)[0]).toMatchObject({ from: 'u2', name: 'Bob', to: 'u1' });
    bob.send({ type: 'direct', to: 'Ann', content: 'by name' }); // a display name is not a user
    await bob.waitFor(() => bob.ofType('error').length === 1, 'USER_OFFLINE');
    expect(bob.ofType('error')[0]!.code).toBe('USER_OFFLINE');
  });

  it('refuses a bad recipient or bad media with a code, and the connection goes on', async () => {
    const s = await start('v3');
    const a = await open(s, { room: 'r', name: 'ann' });
    const b = await open(s, { room: 'r', name: 'bob' });
    a.send({ type: 'direct', to: '', content: 'x' });
    a.send({ type: 'chat', content: 'look', media: 'image', url: 'javascript:alert(1)' });
    a.send({ type: 'chat', content: 'look', media: 'video' });
    a.send({ type: 'chat', content: 'look', memo: 'x'.repeat(300) });
    await a.waitFor(() => a.ofType('error').length === 4, 'four refusals');
    expect(a.ofType('error').map((e) => e.code)).toEqual(['BAD_RECIPIENT', 'BAD_MEDIA', 'BAD_MEDIA', 'BAD_MEDIA']);
    a.send({ type: 'chat', content: 'look', media: 'image', url: 'https://example.org/cat.png', pic: 'https://example.org/cat-small.png', memo: 'a cat' });
    await b.waitFor(() => b.chats().length === 1, 'the chat with its media');
    expect(b.chats()[0]).toMatchObject({ content: 'look', media: 'image', url: 'https://example.org/cat.png', pic: 'https://example.org/cat-small.png', memo: 'a cat' });
  });
});

describe('push to a user (POST /api/send with "to")', () => {
  const post = (s: ChatServer, body: unknown, auth?: string): Promise<Response> =>
    fetch(`${s.url}api/send`, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) }, body: JSON.stringify(body) });

  it('needs --api-key or a token with the push scope; reaches every connection of the user; 404 when offline', async () => {
    const key = 'k'.repeat(24);
    const s = await jwtServer('v3', { apiKey: key });
    const a1 = await open(s, { room: 'r1' }, await bearer('ann'));
    const a2 = await open(s, { room: 'r2' }, await bearer('ann'));
    const bob = await open(s, { room: 'r1' }, await bearer('bob'));
    expect((await post(s, { to: 'ann', content: 'x' })).status).toBe(401);
    expect((await post(s, { to: 'ann', content: 'x' }, await token('bob'))).status).toBe(401); // a token without the push scope
    expect((await post(s, { to: 'ann', content: 'from the api' }, key)).status).toBe(202);
    expect((await post(s, { to: 'ann', content: 'from ops' }, await token('ops', '1h', { scope: 'push' }))).status).toBe(202);
    for (const c of [a1, a2]) await c.waitFor(() => directs(c).length === 2, 'both pushes');
    expect(directs(a1).map((d) => [d.from, d.content])).toEqual([['http', 'from the api'], ['ops', 'from ops']]);
    const offline = await post(s, { to: 'nobody', content: 'x' }, key);
    expect(offline.status).toBe(404);
    expect(((await offline.json()) as { error: { code: string } }).error.code).toBe('USER_OFFLINE');
    await delay(100);
    expect(directs(bob)).toEqual([]);
  });

  it('without any credential configured, says how to get one', async () => {
    const s = await start('v3');
    const res = await post(s, { to: 'ann', content: 'x' }, 'whatever');
    expect(res.status).toBe(401);
    expect(await res.text()).toMatch(/--api-key/);
  });
});

describe('the message log', () => {
  it('records every accepted room and direct message without content by default, and rotates by size', async () => {
    const file = join(dir, 'messages.jsonl');
    const s = await start('v3', { messageLog: { target: `jsonl:${file}`, content: false, maxBytes: 2048, keep: 2 } });
    const a = await open(s, { room: 'r', name: 'ann' });
    const b = await open(s, { room: 'r', name: 'bob' });
    for (let i = 0; i < 40; i++) a.send({ type: 'chat', content: `secret-${i}`, id: `c${i}` });
    a.send({ type: 'direct', to: 'bob', content: 'private', id: 'd0' });
    a.send({ type: 'direct', to: 'nobody', content: 'lost' }); // refused: not recorded
    await b.waitFor(() => directs(b).length === 1 && b.chats().length === 40, 'everything');
    await a.waitFor(() => a.ofType('error').length === 1, 'USER_OFFLINE');
    await s.close();
    const files = [file, `${file}.1`, `${file}.2`].filter((f) => existsSync(f));
    expect(files.length).toBeGreaterThanOrEqual(2);
    expect(existsSync(`${file}.3`)).toBe(false);
    const lines = files.reverse().flatMap((f) => readFileSync(f, 'utf8').trim().split('\n')).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const f of files) expect(readFileSync(f).length).toBeLessThanOrEqual(2048);
    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    expect(text).not.toMatch(/secret-|private/);
    expect(lines.at(-1)).toMatchObject({ kind: 'direct', id: 'd0', from: 'ann', to: 'bob', bytes: 7 });
    expect(lines.filter((l) => l.kind === 'room').at(-1)).toMatchObject({ id: 'c39', from: 'ann', room: 'r', bytes: 9 });
    expect(lines.filter((l) => l.to === 'nobody')).toEqual([]);
  });

  it('records the content with --message-log-content', async () => {
    const file = join(dir, 'with-content.jsonl');
    const s = await start('v3', { messageLog: { target: `jsonl:${file}`, content: true, maxBytes: 1 << 20, keep: 1 } });
    const a = await open(s, { room: 'r', name: 'ann' });
    a.send({ type: 'chat', content: 'kept' });
    await a.waitFor(() => a.chats().length === 1, 'the echo');
    await s.close();
    await eventually(() => readFileSync(file, 'utf8').includes('"content":"kept"'), 'the content in the log');
  });
});

describe('sign-in with a public key or a JWKS (RS256, ES256), and the claims checked', () => {
  it('verifies ES256 against a PEM public key and RS256 against a JWKS file, picking the key by kid; refuses a token not valid yet and one from another issuer', async () => {
    const ec = await generateKeyPair('ES256');
    const rsa = await generateKeyPair('RS256');
    const pem = join(dir, 'ec.pem');
    writeFileSync(pem, await exportSPKI(ec.publicKey));
    const jwks = join(dir, 'keys.json');
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'r1', alg: 'RS256' }] }));
    const sign = (key: CryptoKey, alg: string, claims: { sub: string; nbf?: string; iss?: string }, kid?: string): Promise<string> => {
      let t = new SignJWT({}).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).setSubject(claims.sub).setExpirationTime('1h');
      if (claims.nbf) t = t.setNotBefore(claims.nbf);
      if (claims.iss) t = t.setIssuer(claims.iss);
      return t.sign(key);
    };
    const withKey = await start('v3', { auth: { mode: 'jwt', jwtPublicKeyFile: pem, issuer: 'idp' } });
    const a = await open(withKey, { room: 'r' }, { authorization: `Bearer ${await sign(ec.privateKey, 'ES256', { sub: 'ann', iss: 'idp' })}` });
    expect(a.ofType('joined')[0]!.user).toBe('ann');
    await expect(openClient(withKey, { room: 'r' }, { authorization: `Bearer ${await sign(ec.privateKey, 'ES256', { sub: 'ann', iss: 'other' })}` }, false)).rejects.toThrow(/"iss" claim/);
    await expect(openClient(withKey, { room: 'r' }, { authorization: `Bearer ${await sign(ec.privateKey, 'ES256', { sub: 'ann', iss: 'idp', nbf: '10m' })}` }, false)).rejects.toThrow(/not valid yet/);
    await expect(openClient(withKey, { room: 'r' }, { authorization: `Bearer ${await token('ann')}` }, false)).rejects.toThrow(/algorithm this server does not accept/); // an HS256 token where keys are asymmetric
    const withJwks = await start('v3', { auth: { mode: 'jwt', jwksFile: jwks } });
    const b = await open(withJwks, { room: 'r' }, { authorization: `Bearer ${await sign(rsa.privateKey, 'RS256', { sub: 'bob' }, 'r1')}` });
    expect(b.ofType('joined')[0]!.user).toBe('bob');
    await expect(openClient(withJwks, { room: 'r' }, { authorization: `Bearer ${await sign(rsa.privateKey, 'RS256', { sub: 'bob' }, 'r2')}` }, false)).rejects.toThrow(/no key of the JWKS matches/);
  });

  it('npm run token prints a token the server takes, and refuses a short secret', async () => {
    const printed = await runCli('versions/token-cli.ts', ['--sub', 'cy', '--name', 'Cy', '--ttl', '10m', '--secret', SECRET, '--audience', 'chat']);
    expect(printed.code, printed.stderr).toBe(0);
    const s = await jwtServer();
    const c = await open(s, { room: 'r' }, { authorization: `Bearer ${printed.stdout.trim()}` });
    expect(c.ofType('joined')[0]).toMatchObject({ user: 'cy', name: 'Cy' });
    const short = await runCli('versions/token-cli.ts', ['--sub', 'cy', '--secret', 'short']);
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/at least 32 bytes/);
  });
});
