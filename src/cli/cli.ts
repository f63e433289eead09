import cluster from 'node:cluster';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { Logger } from 'pino';
import type { RunningGateway } from '../bootstrap';
import type { ApplyMigrationsResult, Resolution } from '../database/migrator';
import { WORKER_SLOT_FLAG, WorkerPool, workersRefusal } from '../cluster/worker-pool';
import { collectGarbage, trimWhenIdle, tuneGarbageCollection } from './gc-tuning';
import { type AppConfig, ConfigError, type EnvSource, loadConfig } from '../config/config';
import { isWorkersValue, MAX_WORKERS, WORKERS_RULE } from '../config/config.schema';
import { createLogger } from '../logging/logger';
import { GATEWAY_VERSION } from '../version';
import { registerAuditCommands } from './audit';
import { registerServersCommands } from './servers';
import { addTokenCommand } from './token';

/** Exit codes: part of the CLI contract. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/**
 * A flag value refused without quoting it, as commander's own message would (`--url` may hold a password):
 * the message is printed as it is, and the exit code is 2.
 */
export class RefusedArgument extends CommanderError {
  constructor(message: string) {
    super(EXIT.usage, 'mcp-gateway.refusedArgument', message);
    this.name = 'RefusedArgument';
  }
}

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
    .addOption(new Option('--host <address>', 'listen address (env HOST)').argParser(nonEmptyArg))
    .addOption(new Option('--port <port>', 'listen port (env PORT)').argParser(portArg))
    .addOption(
      new Option(
        '--workers <n>',
        `processes serving the one port: 1 to ${MAX_WORKERS}, or auto for one per CPU (env WORKERS)`,
      ).argParser(workersArg),
    )
    .option('--no-migrate', 'do not apply pending migrations at start')
    // Set by the primary of `--workers N` on the command line of each worker it forks.
    .addOption(new Option(`${WORKER_SLOT_FLAG} <n>`).hideHelp().argParser(slotArg))
    .action(
      async (options: { host?: string; port?: string; workers?: string; migrate: boolean; workerSlot?: number }) => {
        const overrides = { HOST: options.host, PORT: options.port, WORKERS: options.workers };
        exitCode = await serve(io, overrides, {
          migrate: options.migrate,
          workerSlot: options.workerSlot,
          workerArgs: argv.slice(2),
        });
      },
    );

  program
    .command('migrate')
    .description('apply pending database migrations to the configured database and exit')
    .addOption(
      new Option(
        '--resolve-applied <migration>',
        'record a failed migration as applied (you applied all of it by hand), apply nothing',
      )
        .argParser(migrationNameArg('--resolve-applied'))
        .conflicts('resolveRolledBack'),
    )
    .addOption(
      new Option(
        '--resolve-rolled-back <migration>',
        'record a failed migration as rolled back (none of it is applied): the next migrate applies it again',
      ).argParser(migrationNameArg('--resolve-rolled-back')),
    )
    .action(async (options: { resolveApplied?: string; resolveRolledBack?: string }) => {
      if (options.resolveApplied !== undefined) {
        exitCode = await resolveMigration(io, options.resolveApplied, 'applied');
      } else if (options.resolveRolledBack !== undefined) {
        exitCode = await resolveMigration(io, options.resolveRolledBack, 'rolled-back');
      } else {
        exitCode = await migrate(io);
      }
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

  registerAuditCommands(
    program,
    io,
    () => configFrom(io, {}),
    (code) => (exitCode = code),
  );

  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error instanceof RefusedArgument) io.stderr(`error: ${error.message}\n`);
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw error;
  }
  return exitCode;
}

/**
 * A flag given with an empty value is a mistake, not "unset" (an empty environment variable is unset: Kubernetes
 * renders them): `--host ''` listened on every interface.
 */
export function nonEmptyArg(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('must not be empty');
  return value;
}

/** A migration's directory name, never quoted back (it may hold anything a terminal would act on). */
function migrationNameArg(flag: string): (value: string) => string {
  return (value) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$/.test(value)) {
      throw new RefusedArgument(
        `option '${flag} <migration>' must be the name of a migration directory (letters, digits, _ and -)`,
      );
    }
    return value;
  };
}

function workersArg(value: string): string {
  if (!isWorkersValue(value)) throw new InvalidArgumentError(WORKERS_RULE);
  return value;
}

function slotArg(value: string): number {
  if (!/^\d{1,3}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a whole number from 1');
  return Number(value);
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

interface ServeOptions {
  migrate: boolean;
  /** The slot of this process when the primary of `--workers N` forked it. */
  workerSlot?: number;
  /** The primary's `serve` arguments, which its workers run again. */
  workerArgs: string[];
}

async function serve(io: CliIo, overrides: EnvSource, options: ServeOptions): Promise<number> {
  const config = configFrom(io, overrides);
  if (!config) return EXIT.usage;
  // Both: a process manager's own cluster (pm2) also makes `cluster.isWorker` true, with no slot of ours.
  if (cluster.isWorker && options.workerSlot !== undefined) {
    const slot = options.workerSlot;
    // The primary migrated, and forwards SIGTERM: a terminal's Ctrl-C, which reaches every process of the
    // group, must not count as a first signal here and a second one when the primary passes it on.
    process.on('SIGINT', () => undefined);
    // The primary bounds its workers' drain (it also ends a worker too stuck to keep a bound of its own).
    return serveOne(io, { ...config, periodicWork: slot === 1 }, createLogger(config).child({ worker: slot }), {
      migrate: false,
      signals: ['SIGTERM'],
      name: `worker ${slot}`,
    });
  }
  if (config.workers > 1) return servePrimary(io, config, options);
  return serveOne(io, config, createLogger(config), {
    migrate: options.migrate,
    signals: ['SIGTERM', 'SIGINT'],
    drainBoundMs: drainBoundMs(config),
  });
}

/** Resolves with the first of `signals` this process receives. */
function firstOf(signals: NodeJS.Signals[]): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    for (const signal of signals) process.once(signal, () => resolve(signal));
  });
}

interface ServeOneOptions {
  migrate: boolean;
  signals: NodeJS.Signals[];
  /** How a worker names itself in the line saying it could not start (a single process needs no name). */
  name?: string;
  /** How long the drain may take before the process exits without it, as on a second signal; unbounded if unset. */
  drainBoundMs?: number;
}

/** One gateway in this process: started, then drained and closed on the first of `signals`. */
async function serveOne(io: CliIo, config: AppConfig, logger: Logger, options: ServeOneOptions): Promise<number> {
  // Listening before start-up: a pod deleted while starting must not wait for its whole grace period.
  const signalled = firstOf(options.signals);
  tuneGarbageCollection(config.heapGrowthPercent);
  let gateway: RunningGateway | undefined;
  // Another process opened the embedded database: draining would go on writing to it (requests, the audit
  // trail's last batch, PGlite's close), which corrupts it. What the audit trail holds goes to the spool (files
  // beside the database, which any gateway on DATA_DIR replays), and the process exits at once.
  const lockLost = (owner: string): void => {
    io.stderr(`mcp-gateway: the embedded database was taken over by another process (${owner}): exiting\n`);
    try {
      gateway?.abandon();
    } finally {
      process.exit(EXIT.failure);
    }
  };
  try {
    // Loaded here, not at the top: commands that talk to a running gateway start without Nest and Prisma.
    const { startGateway } = await import('../bootstrap.js');
    gateway = await startGateway(config, { logger, migrate: options.migrate, onLockLost: lockLost });
  } catch (error) {
    return fail(io, logger, options.name === undefined ? 'could not start' : `${options.name} could not start`, error);
  }
  const running = gateway;
  logger.debug({ pauseMs: Math.round(collectGarbage()) }, 'start-up garbage collected');
  const stopTrimming = trimWhenIdle((pauseMs, releasedBytes) =>
    logger.debug(
      { pauseMs: Math.round(pauseMs), releasedMb: Math.round(releasedBytes / 2 ** 20) },
      'idle: heap given back',
    ),
  );
  const signal = await signalled;
  stopTrimming();
  logger.info({ signal }, 'signal received');
  // A second signal while draining means "now", but the audit records held in memory go to the spool first.
  const exitWithoutDraining = (): void => {
    try {
      running.abandon();
    } finally {
      process.exit(EXIT.failure);
    }
  };
  const forced = (): void => {
    logger.warn('second signal: exiting without draining; queued audit records are spooled');
    exitWithoutDraining();
  };
  for (const each of options.signals) process.once(each, forced);
  // A drain still under way after its bound is stuck (a database that stopped answering mid-write, a hung close):
  // waiting on kept the process up until something outside killed it, the queued audit records lost with it.
  const boundMs = options.drainBoundMs;
  const overdue =
    boundMs === undefined
      ? undefined
      : setTimeout(() => {
          logger.warn(
            { boundMs },
            'still draining after SHUTDOWN_GRACE_MS and AUDIT_WRITE_TIMEOUT_MS: exiting without draining; ' +
              'queued audit records are spooled',
          );
          io.stderr(
            'mcp-gateway: shutdown failed: still draining after SHUTDOWN_GRACE_MS plus AUDIT_WRITE_TIMEOUT_MS ' +
              `(${boundMs} ms): exiting without draining\n`,
          );
          exitWithoutDraining();
        }, boundMs);
  try {
    await running.close();
  } catch (error) {
    return fail(io, logger, 'shutdown failed', error);
  } finally {
    clearTimeout(overdue);
  }
  return EXIT.ok;
}

/** How long the primary waits, after a second signal, for its workers to spool their audit records and exit. */
const ABANDON_BOUND_MS = 5_000;

/**
 * How long a drain may take after the first signal: SHUTDOWN_GRACE_MS for the requests in flight, then
 * AUDIT_WRITE_TIMEOUT_MS for the audit trail's last write, after which it spools. A gateway still draining then is
 * stuck (a database that stopped answering mid-write, a hung close), and exits as on a second signal, its queued audit
 * records spooled: a single process on its own, a worker told by its primary. Waiting on kept the process up until
 * something outside killed it, which a process manager without a SIGKILL never does.
 */
function drainBoundMs(config: AppConfig): number {
  return config.shutdownGraceMs + config.audit.writeTimeoutMs;
}

/**
 * The primary of `serve --workers N`: migrates once, forks the workers, keeps
 * them running, and on SIGTERM or SIGINT has every one of them drain. It
 * serves no request itself. A worker that exits before all of them serve fails
 * the start: the others are stopped as on a signal, within the same bounds.
 */
async function servePrimary(io: CliIo, config: AppConfig, options: ServeOptions): Promise<number> {
  const refusal = workersRefusal(config);
  if (refusal) {
    io.stderr(`mcp-gateway: ${refusal}\n`);
    return EXIT.usage;
  }
  const logger = createLogger(config).child({ role: 'primary' });
  const signalled = firstOf(['SIGTERM', 'SIGINT']);
  if (options.migrate) {
    try {
      const { logMigrations } = await import('../database/migrator.js');
      logMigrations(logger, await applyPendingMigrations(config, logger));
    } catch (error) {
      return fail(io, logger, 'could not start', error);
    }
  }
  const pool = new WorkerPool({ count: config.workers, args: options.workerArgs, logger });
  let startFailed = false;
  try {
    const url = await Promise.race([pool.start(), signalled.then(() => undefined)]);
    if (url)
      logger.info(
        { url, workers: config.workers },
        `mcp-gateway ${GATEWAY_VERSION} serving with ${config.workers} workers`,
      );
  } catch (error) {
    // Said before the others stop, which may take the whole bound: the workers still starting finish first.
    fail(io, logger, 'could not start', error);
    startFailed = true;
  }
  if (!startFailed) {
    const signal = await signalled;
    logger.info({ signal }, 'signal received: the workers drain');
  }
  const stopped = await stopWorkers(io, pool, config, logger);
  if (startFailed) return EXIT.failure;
  switch (stopped) {
    case 'abandoned':
      return EXIT.failure;
    case 'unclean':
      io.stderr('mcp-gateway: shutdown failed: a worker did not drain cleanly\n');
      return EXIT.failure;
    case 'drained':
      logger.info('stopped');
      return EXIT.ok;
  }
}

/**
 * Has every worker drain, and resolves with how they stopped: all `drained`, one `unclean` (it exited non-zero), or
 * `abandoned`. A signal, or a worker still draining after drainBoundMs, is passed on, so that each worker spools its
 * queued audit records and exits (killing them lost those records); a signal after that, or a worker that takes
 * longer than ABANDON_BOUND_MS, is killed.
 */
async function stopWorkers(
  io: CliIo,
  pool: WorkerPool,
  config: AppConfig,
  logger: Logger,
): Promise<'drained' | 'unclean' | 'abandoned'> {
  let abandoning: Promise<void> | undefined;
  let abandoned!: () => void;
  // Resolves once every worker has exited or been killed, after they were told to exit without draining.
  const whenAbandoned = new Promise<false>((resolve) => (abandoned = () => resolve(false)));
  const abandon = (): void => {
    abandoning ??= pool.abandon(ABANDON_BOUND_MS).finally(abandoned);
  };
  const forced = (): void => {
    if (abandoning) {
      logger.warn('signal while the workers exit without draining: killing them');
      pool.kill();
      process.exit(EXIT.failure);
    }
    logger.warn('second signal: the workers exit without draining, once their queued audit records are spooled');
    abandon();
  };
  process.on('SIGTERM', forced);
  process.on('SIGINT', forced);
  const boundMs = drainBoundMs(config);
  const overdue = setTimeout(() => {
    if (abandoning) return;
    const running = pool.running();
    logger.warn(
      { workers: running, boundMs },
      'workers still draining after SHUTDOWN_GRACE_MS and AUDIT_WRITE_TIMEOUT_MS: they exit without draining, ' +
        'once their queued audit records are spooled',
    );
    io.stderr(
      `mcp-gateway: shutdown failed: worker${running.length === 1 ? '' : 's'} ` +
        `${running.map(({ worker }) => worker).join(', ')} still draining after SHUTDOWN_GRACE_MS plus ` +
        `AUDIT_WRITE_TIMEOUT_MS (${boundMs} ms): exiting without draining\n`,
    );
    abandon();
  }, boundMs);
  const drained = await Promise.race([pool.stop(), whenAbandoned]);
  clearTimeout(overdue);
  if (abandoning) {
    await abandoning;
    return 'abandoned';
  }
  return drained ? 'drained' : 'unclean';
}

/** Applies pending migrations to the configured database, opening and closing it for that alone. */
async function applyPendingMigrations(
  config: AppConfig,
  logger: Logger,
): Promise<ApplyMigrationsResult & { description: string }> {
  const [{ openDatabase }, { applyMigrations, MIGRATIONS_DIR }] = await Promise.all([
    import('../database/database.js'),
    import('../database/migrator.js'),
  ]);
  const database = await openDatabase(config.database, logger);
  try {
    return { ...(await applyMigrations(database.adapterFactory, MIGRATIONS_DIR)), description: database.description };
  } finally {
    await database.close();
  }
}

async function migrate(io: CliIo): Promise<number> {
  const config = configFrom(io, {});
  if (!config) return EXIT.usage;
  const logger = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
  try {
    const { applied, rolledBack, description } = await applyPendingMigrations(config, logger);
    for (const name of rolledBack) {
      io.stdout(`rolled back ${name}: an interrupted run left it unfinished, none of it applied; applying it again\n`);
    }
    io.stdout(
      applied.length
        ? `applied ${applied.length} migration(s) to ${description}:\n${applied.map((name) => `  ${name}\n`).join('')}`
        : `no pending migrations: ${description} is up to date\n`,
    );
  } catch (error) {
    return fail(io, logger, 'migration failed', error);
  }
  return EXIT.ok;
}

/** `migrate --resolve-applied | --resolve-rolled-back <migration>`. */
async function resolveMigration(io: CliIo, name: string, resolution: Resolution): Promise<number> {
  const config = configFrom(io, {});
  if (!config) return EXIT.usage;
  const [{ openDatabase }, { migrationNames, resolveFailedMigration, MIGRATIONS_DIR }] = await Promise.all([
    import('../database/database.js'),
    import('../database/migrator.js'),
  ]);
  // A name this release does not hold is a usage error, found before the database is opened.
  if (!(await migrationNames(MIGRATIONS_DIR)).includes(name)) {
    io.stderr(`error: ${name} is not a migration of this release (see ${MIGRATIONS_DIR})\n`);
    return EXIT.usage;
  }
  const logger = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
  try {
    const database = await openDatabase(config.database, logger);
    try {
      await resolveFailedMigration(database.adapterFactory, MIGRATIONS_DIR, name, resolution);
      io.stdout(
        resolution === 'applied'
          ? `recorded migration ${name} as applied in ${database.description}\n`
          : `recorded migration ${name} as rolled back in ${database.description}: the next migrate applies it again\n`,
      );
    } finally {
      await database.close();
    }
  } catch (error) {
    return fail(io, logger, 'resolving the migration failed', error);
  }
  return EXIT.ok;
}

function fail(io: CliIo, logger: Logger, what: string, error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  logger.fatal({ err: error }, what);
  io.stderr(`mcp-gateway: ${what}: ${message}\n`);
  return EXIT.failure;
}
