import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { ServerListDto, ServerView, UnreadableServerView } from '../registry/server.dto';
import type { ImportReport, ServerExport } from '../registry/server-transfer.dto';
import { ConfigError, loadGatewayClientConfig } from '../config/config';
import { envSchema, GATEWAY_URL_RULE, isGatewayUrl } from '../config/config.schema';
import { type CliIo, EXIT, RefusedArgument } from './cli';
import { GatewayApiError, GatewayClient, GatewayUnreachableError } from './gateway-client';
import { importLines, problemLines, serverDetails, serverTable, unreadableLines } from './servers-output';

interface GatewayOptions {
  url?: string;
  apiPrefix?: string;
  json?: boolean;
}

interface AddOptions extends GatewayOptions {
  name: string;
  serverUrl: string;
  slug?: string;
  title?: string;
  description?: string;
  serverVersion?: string;
  transport?: string;
  tag: string[];
  allowedRole: string[];
}

interface ListOptions extends GatewayOptions {
  tag?: string;
  status?: string;
  q?: string;
}

type Action = (client: GatewayClient) => Promise<number>;

/**
 * `mcp-gateway servers …`: the registry of a running gateway, over its HTTP
 * API. Needs no database; `setExit` receives the exit code.
 */
export function registerServersCommands(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const servers = program
    .command('servers')
    .description('manage the upstream servers registered with a running gateway (its admin API, API_PREFIX)');
  const run = (options: GatewayOptions, action: Action): Promise<void> =>
    runAgainstGateway(io, options, action).then(setExit);

  servers
    .command('add')
    .description('register an upstream server')
    .requiredOption('--name <name>', 'reverse-DNS name, e.g. com.example/weather')
    .requiredOption('--server-url <url>', 'URL of the upstream MCP endpoint')
    .option('--slug <slug>', 'short name in /mcp/{slug} (default: derived from the name)')
    .option('--title <title>', 'display name')
    .option('--description <text>', 'what it does (at most 100 characters)')
    .option('--server-version <version>', 'version of the server (default 0.0.0)')
    .addOption(new Option('--transport <transport>', 'upstream transport').choices(['streamable-http', 'sse']))
    .option('--tag <tag>', 'a tag (repeatable)', collect, [])
    .option('--allowed-role <role>', 'a role that may reach it through /mcp (repeatable)', collect, [])
    .addOption(gatewayUrlOption())
    .addOption(apiPrefixOption())
    .addOption(jsonOption())
    .action((options: AddOptions) =>
      run(options, async (client) => {
        const server = await client.request<ServerView>('POST', '/servers', registrationOf(options));
        print(io, options, server, (created) => `registered ${created.name} as ${created.slug} (id ${created.id})\n`);
        return EXIT.ok;
      }),
    );

  servers
    .command('list')
    .description('list registered servers (every page)')
    .option('--tag <tag>', 'only servers with this tag')
    .addOption(
      new Option('--status <status>', 'only servers in this status').choices(['active', 'deprecated', 'disabled']),
    )
    .option('--q <text>', 'only servers whose name, title or description contains this')
    .addOption(gatewayUrlOption())
    .addOption(apiPrefixOption())
    .addOption(jsonOption())
    .action((options: ListOptions) =>
      run(options, async (client) => {
        const { servers: all, unreadable } = await listAll(client, options);
        // A server the gateway cannot read is no row of the table: it is named on stderr, for an admin to fix.
        for (const server of unreadable) io.stderr(unreadableLines(server));
        const listed = unreadable.length > 0 ? { servers: all, unreadable } : { servers: all };
        print(io, options, listed, (list) => serverTable(list.servers));
        return EXIT.ok;
      }),
    );

  servers
    .command('show')
    .description('show one server')
    .argument('<ref>', 'id, slug or name')
    .addOption(gatewayUrlOption())
    .addOption(apiPrefixOption())
    .addOption(jsonOption())
    .action((ref: string, options: GatewayOptions) =>
      run(options, async (client) => {
        const server = await client.request<ServerView>('GET', `/servers/${encodeURIComponent(ref)}`);
        print(io, options, server, serverDetails);
        return EXIT.ok;
      }),
    );

  servers
    .command('rm')
    .description('remove a server (its version history stays)')
    .argument('<ref>', 'id, slug or name')
    .addOption(gatewayUrlOption())
    .addOption(apiPrefixOption())
    .addOption(jsonOption())
    .action((ref: string, options: GatewayOptions) =>
      run(options, async (client) => {
        await client.perform('DELETE', `/servers/${encodeURIComponent(ref)}`);
        print(io, options, { removed: ref }, () => `removed ${ref}\n`);
        return EXIT.ok;
      }),
    );

  servers
    .command('import')
    .description('import server.json documents: one, an array, or { "servers": [...] }')
    .argument('<file>', 'a JSON file')
    .addOption(gatewayUrlOption())
    .addOption(apiPrefixOption())
    .addOption(jsonOption())
    .action((file: string, options: GatewayOptions) =>
      run(options, async (client) => {
        const documents = await readJsonFile(io, file);
        if (documents === undefined) return EXIT.failure;
        const report = await client.request<ImportReport>('POST', '/servers/import', documents);
        print(io, options, report, importLines);
        return report.failed > 0 ? EXIT.failure : EXIT.ok;
      }),
    );

  servers
    .command('export')
    .description(
      'print every server as server.json ({ "servers": [...] }), ready for import; a server the gateway cannot read ' +
        'is named on stderr and in "unreadable", and the exit code is 1',
    )
    .addOption(gatewayUrlOption())
    .addOption(apiPrefixOption())
    .action((options: GatewayOptions) =>
      run(options, async (client) => {
        const exported = await client.request<ServerExport>('GET', '/servers/export');
        io.stdout(`${JSON.stringify(exported, null, 2)}\n`);
        // The document holds less than the registry: a backup made so must not pass for a whole one.
        for (const server of exported.unreadable ?? []) io.stderr(unreadableLines(server));
        return exported.unreadable?.length ? EXIT.failure : EXIT.ok;
      }),
    );
}

async function runAgainstGateway(io: CliIo, options: GatewayOptions, action: Action): Promise<number> {
  let gatewayUrl: string;
  let apiPrefix: string;
  try {
    ({ gatewayUrl, apiPrefix } = loadGatewayClientConfig(io.env, {
      MCP_GATEWAY_URL: options.url,
      API_PREFIX: options.apiPrefix,
    }));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.stderr(`mcp-gateway: invalid configuration\n${error.problems.map((line) => `  ${line}\n`).join('')}`);
    return EXIT.usage;
  }
  try {
    return await action(new GatewayClient(gatewayUrl, apiPrefix));
  } catch (error) {
    if (error instanceof GatewayApiError) {
      io.stderr(problemLines(error.problem));
      return EXIT.failure;
    }
    if (error instanceof GatewayUnreachableError) {
      io.stderr(`mcp-gateway: ${error.message}\n`);
      return EXIT.failure;
    }
    throw error;
  }
}

async function listAll(
  client: GatewayClient,
  options: ListOptions,
): Promise<{ servers: ServerView[]; unreadable: UnreadableServerView[] }> {
  const all: ServerView[] = [];
  const unreadable: UnreadableServerView[] = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ limit: '100' });
    for (const [key, value] of Object.entries({ tag: options.tag, status: options.status, q: options.q, cursor })) {
      if (value !== undefined) query.set(key, value);
    }
    const page = await client.request<ServerListDto>('GET', `/servers?${query.toString()}`);
    all.push(...page.servers);
    unreadable.push(...(page.unreadable ?? []));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return { servers: all, unreadable };
}

function registrationOf(options: AddOptions): Record<string, unknown> {
  const optional = {
    slug: options.slug,
    title: options.title,
    description: options.description,
    version: options.serverVersion,
    transport: options.transport,
  };
  return {
    name: options.name,
    url: options.serverUrl,
    ...Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== undefined)),
    ...(options.tag.length ? { tags: options.tag } : {}),
    ...(options.allowedRole.length ? { allowedRoles: options.allowedRole } : {}),
  };
}

async function readJsonFile(io: CliIo, file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    io.stderr(`mcp-gateway: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}\n`);
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    io.stderr(`mcp-gateway: ${file} is not JSON\n`);
    return undefined;
  }
}

function print<T>(io: CliIo, options: GatewayOptions, value: T, human: (value: T) => string): void {
  io.stdout(options.json ? `${JSON.stringify(value, null, 2)}\n` : human(value));
}

function gatewayUrlOption(): Option {
  const flags = '--url <gateway>';
  return new Option(flags, 'gateway base URL (env MCP_GATEWAY_URL, default http://localhost:8000)').argParser(
    (value) => {
      // Never quoted back: the value may hold a password.
      if (!isGatewayUrl(value)) throw new RefusedArgument(`option '${flags}' ${GATEWAY_URL_RULE}`);
      return value;
    },
  );
}

function apiPrefixOption(): Option {
  return new Option(
    '--api-prefix <path>',
    "path prefix of the gateway's admin API (env API_PREFIX, default /api/v1)",
  ).argParser((value) => {
    const parsed = envSchema.shape.API_PREFIX.safeParse(value);
    if (!parsed.success) throw new InvalidArgumentError(parsed.error.issues[0]?.message ?? 'is not valid');
    return value;
  });
}

function jsonOption(): Option {
  return new Option('--json', 'print the API response as JSON');
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
