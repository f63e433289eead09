import { Controller, Get, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiProblemResponses } from '../common/api-problem';
import { AuditQueryService } from './audit-query.service';
import { type AuditList, AuditListDto, AuditListQueryDto, AuditExportQueryDto, AuditRecordDto } from './audit.dto';
import { NDJSON_CONTENT_TYPE, sendNdjson } from './ndjson';

/** The audit trail of MCP requests: read a page at a time, or export it whole. */
@ApiTags('audit')
@Controller('audit')
export class AuditController {
  constructor(private readonly audit: AuditQueryService) {}

  @Get()
  @ApiOperation({ summary: 'Audit records, newest first, a page at a time, filtered' })
  @ApiOkResponse({ type: AuditListDto.Output })
  @ApiProblemResponses(400)
  list(@Query() query: AuditListQueryDto): Promise<AuditList> {
    return this.audit.list(query);
  }

  @Get('export')
  @ApiOperation({
    summary: 'Every matching audit record, newest first, as NDJSON (one record per line), streamed',
    description:
      'The same filters as the list, without paging. A stream that ends without its final newline was cut by a failure.',
  })
  @ApiProduces(NDJSON_CONTENT_TYPE)
  @ApiOkResponse({ description: 'One AuditRecord (see the list) per line', type: AuditRecordDto.Output })
  @ApiProblemResponses(400)
  export(@Query() query: AuditExportQueryDto, @Res() res: Response): Promise<void> {
    return sendNdjson(res, this.audit.export(query));
  }
}
