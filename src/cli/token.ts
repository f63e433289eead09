import { type Command, InvalidArgumentError, Option } from 'commander';
import { shortScopeName } from '../auth/access-policy';
import { issueDevToken, loadOrCreateDevKey } from '../auth/dev-signing-key';
import type { AppConfig } from '../config/config';
import { type CliIo, type EXIT, nonEmptyArg } from './cli';

export type Outcome = keyof typeof EXIT;

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const MAX_TTL_SECONDS = 30 * 86_400;

interface TokenOptions {
  roles?: string[];
  scopes?: string[];
  ttl: number;
  appOnly?: boolean;
  name?: string;
}

/**
 * `mcp-gateway token`: prints an access token the gateway accepts in
 * `AUTH_MODE=dev`, signed with the development key in DATA_DIR (created when
 * missing). Refused in any other mode, and under NODE_ENV=production (by the
 * configuration itself).
 */
export function addTokenCommand(
  program: Command,
  io: CliIo,
  config: () => AppConfig | undefined,
  done: (outcome: Outcome) => void,
): void {
  program
    .command('token')
    .description('print an access token for MCP_PREFIX, signed with the local development key (AUTH_MODE=dev only)')
    .addOption(new Option('--roles <roles>', 'app roles, comma-separated (e.g. Gateway.Admin)').argParser(listArg))
    .addOption(
      new Option('--scopes <scopes>', 'delegated scopes, comma-separated (default: AUTH_REQUIRED_SCOPES)').argParser(
        listArg,
      ),
    )
    .addOption(
      new Option('--ttl <duration>', 'lifetime: 90s, 15m, 1h, 7d (at most 30d)').default(3600, '1h').argParser(ttlArg),
    )
    .option('--app-only', 'a token an application got for itself: roles, no scopes, no user')
    .addOption(
      new Option('--name <name>', 'display name of the developer (the same name gives the same oid)').argParser(
        nonEmptyArg,
      ),
    )
    .action(async (options: TokenOptions) => done(await printToken(io, config, options)));
}

async function printToken(io: CliIo, config: () => AppConfig | undefined, options: TokenOptions): Promise<Outcome> {
  const settings = config();
  if (!settings) return 'usage';
  if (settings.auth.mode !== 'dev') {
    io.stderr('mcp-gateway: token works with AUTH_MODE=dev only; with AUTH_MODE=entra, tokens come from Entra ID\n');
    return 'usage';
  }
  try {
    const key = await loadOrCreateDevKey(settings.dataDir);
    const token = await issueDevToken(key, {
      roles: options.roles ?? [],
      scopes: options.scopes ?? settings.auth.requiredScopes.map(shortScopeName),
      ttlSeconds: options.ttl,
      appOnly: options.appOnly,
      name: options.name,
    });
    io.stdout(`${token}\n`);
    return 'ok';
  } catch (error) {
    io.stderr(`mcp-gateway: token failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 'failure';
  }
}

function listArg(value: string): string[] {
  const items = value.split(/[\s,]+/).filter((item) => item.length > 0);
  // An empty value is a mistake, as for every flag (no roles: leave --roles out).
  if (items.length === 0) throw new InvalidArgumentError('must not be empty');
  if (!items.every((item) => /^[\x21-\x7e]{1,200}$/.test(item))) {
    throw new InvalidArgumentError('must be names without spaces, comma-separated');
  }
  return items;
}

function ttlArg(value: string): number {
  const match = /^(\d{1,7})([smhd]?)$/.exec(value);
  const seconds = match ? Number(match[1]) * (UNITS[match[2] || 's'] ?? 1) : NaN;
  if (!(seconds >= 1 && seconds <= MAX_TTL_SECONDS)) {
    throw new InvalidArgumentError('must be a duration from 1s to 30d, e.g. 90s, 15m, 1h, 7d');
  }
  return seconds;
}
