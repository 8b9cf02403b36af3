// `npm run token -- --sub ann [--name Ann] [--ttl 1h] [--scope push]`: prints a development token
// (HS256) signed with --secret or $CHAT_JWT_SECRET, for a server started with the same secret
// (`npm run v3 -- --auth jwt --jwt-secret …`). Tokens for real users come from an identity provider.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { signToken } from './auth.ts';
import { isValidName } from './protocol.ts';

const argv = await yargs(hideBin(process.argv))
  .scriptName('npm run token --')
  .version(false)
  .options({
    sub: { type: 'string', demandOption: true, describe: "the user id (the token's sub): what direct messages are addressed to" },
    name: { type: 'string', describe: 'the display name (the name claim); default: the sub' },
    ttl: { type: 'string', default: '1h', describe: 'how long the token is valid: 30s, 15m, 1h, 7d' },
    scope: { type: 'string', describe: "the scope claim: 'push' may push to users over POST /api/send" },
    secret: { type: 'string', describe: 'the HS256 secret (default: $CHAT_JWT_SECRET), at least 32 bytes' },
    issuer: { type: 'string', describe: 'the iss claim' },
    audience: { type: 'string', describe: 'the aud claim' },
  })
  .strict()
  .help()
  .parseAsync();

const secret = argv.secret ?? process.env.CHAT_JWT_SECRET;
const fail = (why: string): never => {
  console.error(`npm run token: ${why}`);
  process.exit(1);
};
if (!secret) fail('no secret: pass --secret or set CHAT_JWT_SECRET (the server needs the same one: --jwt-secret)');
if (Buffer.byteLength(secret as string) < 32) fail('the secret must be at least 32 bytes (HS256)');
if (!isValidName(argv.sub)) fail('--sub must be 1-64 printable characters');
if (argv.name !== undefined && !isValidName(argv.name)) fail('--name must be 1-64 printable characters');
if (!/^\d+\s*[smhdw]$/.test(argv.ttl)) fail('--ttl must be a number and a unit: 30s, 15m, 1h, 7d, 2w');
console.log(await signToken(secret as string, { sub: argv.sub, ...(argv.name ? { name: argv.name } : {}), ...(argv.scope ? { scope: argv.scope } : {}) }, argv.ttl, { ...(argv.issuer ? { issuer: argv.issuer } : {}), ...(argv.audience ? { audience: argv.audience } : {}) }));
