import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiBody, ApiExtraModels, ApiOkResponse, ApiOperation, ApiTags, getSchemaPath } from '@nestjs/swagger';
import { ApiProblemResponses } from '../common/api-problem';
import { ImportReportDto, ServerExportDto } from './server-transfer.dto';
import { ServerTransferService } from './server-transfer.service';
import { ServerJsonDto } from './server-json';

const SERVER_JSON = { $ref: getSchemaPath(ServerJsonDto) };

/**
 * server.json in and out. Registered before ServersController so that
 * `/servers/export` is not read as a server ref (the slugs `import` and `export` are reserved too).
 */
@ApiTags('registry')
@ApiExtraModels(ServerJsonDto)
@Controller('servers')
export class ServerTransferController {
  constructor(private readonly transfer: ServerTransferService) {}

  @Post('import')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Import server.json documents: create by name, or update (a new version keeps the old in history)',
  })
  @ApiBody({
    description: 'One server.json document, an array of them, or `{ "servers": [...] }`',
    schema: {
      oneOf: [
        SERVER_JSON,
        { type: 'array', items: SERVER_JSON, minItems: 1 },
        { type: 'object', properties: { servers: { type: 'array', items: SERVER_JSON } }, required: ['servers'] },
      ],
    },
  })
  @ApiOkResponse({ type: ImportReportDto.Output, description: 'One result per document; failed ones wrote nothing' })
  @ApiProblemResponses(400, 413, 415)
  import(@Body() body: unknown): Promise<ImportReportDto> {
    return this.transfer.import(body);
  }

  @Get('export')
  @ApiOperation({ summary: 'Every server as server.json, gateway settings under _meta["io.mcp-gateway/server"]' })
  @ApiOkResponse({ type: ServerExportDto.Output })
  export(): Promise<ServerExportDto> {
    return this.transfer.export();
  }
}
