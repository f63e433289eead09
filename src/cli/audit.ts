import type { Command } from 'commander';
import { databaseFailureReason, isDatabaseTimeout } from '../common/database-errors';
import type { AppConfig, DatabaseConfig } from '../config/config';
import { createLogger } from '../logging/logger';
import { EXIT, type CliIo } from './cli';

/**
 * `mcp-gateway audit verify`: walks every audit chain in the configured
 * database. Exit 0 when all hold, 1 at the first broken link (or when the
 * database cannot be read), 2 for bad usage or configuration.
 */
export function registerAuditCommands(
  program: Command,
  io: CliIo,
  config: () => AppConfig | undefined,
  done: (code: number) => void,
): void {
  const audit = program.command('audit').description('inspect the audit trail of MCP requests');
  audit
    .command('verify')
    .description(
      'check every audit hash chain in the configured database (DATABASE_URL, or the embedded one in DATA_DIR) and report the first broken link',
    )
    .action(async () => done(await verify(io, config)));
}

async function verify(io: CliIo, config: () => AppConfig | undefined): Promise<number> {
  const settings = config();
  if (!settings) return EXIT.usage;
  const logger = createLogger({ logLevel: settings.logLevel === 'info' ? 'warn' : settings.logLevel });
  try {
    // Loaded here: other commands start without Prisma.
    const [{ openDatabase }, { PrismaService }, { AuditRepository }, { verifyAuditTrail }] = await Promise.all([
      import('../database/database.js'),
      import('../database/prisma.service.js'),
      import('../audit/audit.repository.js'),
      import('../audit/audit-verifier.js'),
    ]);
    // Bounded as serve's statements are (DATABASE_QUERY_TIMEOUT_MS): verify reads a page at a time, each short, so a
    // database that stops answering fails it rather than leave it waiting until TCP gives up, or for ever.
    const database = await openDatabase(settings.database, logger);
    const prisma = new PrismaService(database);
    try {
      await prisma.onModuleInit();
      const report = await verifyAuditTrail(new AuditRepository(prisma), settings.audit.hmacKey).catch(
        (error: unknown) => {
          throw new Error(`reading ${database.description}: ${readFailure(error, settings.database)}`, {
            cause: error,
          });
        },
      );
      const { broken } = report;
      if (broken) {
        const record = broken.recordId ? `record ${broken.recordId} (seq ${broken.seq})` : `seq ${broken.seq}`;
        io.stdout(`audit chain BROKEN: stream ${broken.streamId}, ${record}: ${broken.reason}\n`);
        io.stdout(`verified before it: ${report.records} record(s) in ${report.streams} stream(s)\n`);
        return EXIT.failure;
      }
      io.stdout(`audit chain verified: ${report.records} record(s) in ${report.streams} stream(s)\n`);
      return EXIT.ok;
    } finally {
      await prisma.onModuleDestroy().catch(() => undefined);
      await database.close();
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.error({ err: error }, 'audit verify failed');
    io.stderr(`mcp-gateway: audit verify failed: ${message}\n`);
    return EXIT.failure;
  }
}

/** Why a read of the audit trail failed, in one line. */
function readFailure(error: unknown, database: DatabaseConfig): string {
  const reason = databaseFailureReason(error);
  return database.kind === 'postgres' && isDatabaseTimeout(error)
    ? `the database did not answer in time (DATABASE_QUERY_TIMEOUT_MS is ${database.queryTimeoutMs} ms): ${reason}`
    : reason;
}
