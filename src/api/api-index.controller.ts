import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { GATEWAY_VERSION } from '../version';

@ApiTags('api')
@Controller()
export class ApiIndexController {
  @Get()
  @ApiOkResponse({ description: 'What this API is and where its description lives.' })
  index(): { name: string; version: string; docs: string; openapi: string } {
    return { name: 'mcp-gateway', version: GATEWAY_VERSION, docs: '/docs', openapi: '/docs-json' };
  }
}
