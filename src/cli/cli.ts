import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { Logger } from 'pino';
import { type AppConfig, ConfigError, type EnvSource, loadConfig } from '../config/config';
import { createLogger } from '../logging/logger';
import { GATEWAY_VERSION } from '../version';
import { registerServersCommands } from './servers';
import { addTokenCommand } from './token';

/** Exit codes: part of the CLI contract. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export interface CliIo {
  env: EnvSource;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: CliIo = {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Runs the CLI and resolves with the process exit code (for `serve`, once it has stopped). */
export async function runCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command('mcp-gateway')
    .description('A registry of MCP servers and the gateway that agents reach them through')
    .version(GATEWAY_VERSION, '-v, --version')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .showHelpAfterError();

  program
    .command('serve')
    .description('serve the registry API, the MCP gateway, health and docs on one port')
    .addOption(new Option('--host <address>', 'listen address (env HOST)'))
    .addOption(new Option('--port <port>', 'listen port (env PORT)').argParser(portArg))
    .option('--no-migrate', 'do not apply pending migrations at start')
    .action(async (options: { host?: string; port?: string; migrate: boolean }) => {
      exitCode = await serve(io, { HOST: options.host, PORT: options.port }, options.migrate);
    });

  program
    .command('migrate')
    .description('apply pending database migrations to the configured database and exit')
    .action(async () => {
      exitCode = await migrate(io);
    });

  addTokenCommand(
    program,
    io,
    () => configFrom(io, {}),
    (outcome) => (exitCode = EXIT[outcome]),
  );

  registerServersCommands(program, io, (code) => {
    exitCode = code;
  });

  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw error;
  }
  return exitCode;
}

function portArg(value: string): string {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError('must be a whole number from 0 to 65535');
  }
  return value;
}

function configFrom(io: CliIo, overrides: EnvSource): AppConfig | undefined {
  try {
    return loadConfig(io.env, overrides);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.stderr(`mcp-gateway: invalid configuration\n${error.problems.map((line) => `  ${line}\n`).join('')}`);
    return undefined;
  }
}

async function serve(io: CliIo, overrides: EnvSource, migrate: boolean): Promise<number> {
  const config = configFrom(io, overrides);
  if (!config) return EXIT.usage;
  const logger = createLogger(config);
  // Listening before start-up: a pod deleted while starting must not wait for its whole grace period.
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  let gateway;
  try {
    // Loaded here, not at the top: commands that talk to a running gateway start without Nest and Prisma.
    const { startGateway } = await import('../bootstrap.js');
    gateway = await startGateway(config, { logger, migrate });
  } catch (error) {
    return fail(io, logger, 'could not start', error);
  }
  const running = gateway;
  const signal = await signalled;
  logger.info({ signal }, 'signal received');
  // A second signal while draining means "now".
  const forced = (): void => {
    logger.warn('second signal: exiting without draining');
    process.exit(EXIT.failure);
  };
  process.once('SIGTERM', forced);
  process.once('SIGINT', forced);
  try {
    await running.close();
  } catch (error) {
    return fail(io, logger, 'shutdown failed', error);
  }
  return EXIT.ok;
}

async function migrate(io: CliIo): Promise<number> {
  const config = configFrom(io, {});
  if (!config) return EXIT.usage;
  const logger = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
  try {
    const [{ MIGRATIONS_DIR }, { openDatabase }, { applyMigrations }] = await Promise.all([
      import('../bootstrap.js'),
      import('../database/database.js'),
      import('../database/migrator.js'),
    ]);
    const database = await openDatabase(config.database, logger);
    try {
      const { applied } = await applyMigrations(database.adapterFactory, MIGRATIONS_DIR);
      io.stdout(
        applied.length
          ? `applied ${applied.length} migration(s) to ${database.description}:\n${applied.map((name) => `  ${name}\n`).join('')}`
          : `no pending migrations: ${database.description} is up to date\n`,
      );
    } finally {
      await database.close();
    }
  } catch (error) {
    return fail(io, logger, 'migration failed', error);
  }
  return EXIT.ok;
}

function fail(io: CliIo, logger: Logger, what: string, error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  logger.fatal({ err: error }, what);
  io.stderr(`mcp-gateway: ${what}: ${message}\n`);
  return EXIT.failure;
}
