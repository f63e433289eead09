import { Module } from '@nestjs/common';
import { AuditController } from './audit.controller';
import { AuditQueryService } from './audit-query.service';
import { AuditRetention } from './audit-retention';
import { AuditTrail } from './audit-trail';
import { AuditRepository } from './audit.repository';

/**
 * The audit trail: records every MCP exchange McpTraffic reports, keeps the
 * chain and its retention, and serves `/api/v1/audit`.
 */
@Module({
  controllers: [AuditController],
  providers: [AuditRepository, AuditTrail, AuditRetention, AuditQueryService],
  exports: [AuditTrail],
})
export class AuditModule {}
