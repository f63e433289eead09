import { Controller, Get, HttpCode, HttpStatus, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import {
  type CapabilitiesView,
  CapabilitiesViewDto,
  ResourceSearchPageDto,
  type ResourceHit,
  type SearchPage,
  SearchQueryDto,
  type ToolHit,
  ToolSearchPageDto,
} from './discovery.dto';
import { DiscoveryService } from './discovery.service';

const SERVER_ID = { name: 'id', description: 'The server id', format: 'uuid' } as const;
const PROBLEM = 'application/problem+json';

@ApiTags('discovery')
@Controller()
export class DiscoveryController {
  constructor(private readonly discovery: DiscoveryService) {}

  @Get('servers/:id/capabilities')
  @ApiOperation({ summary: 'What the server offers, as last synced, with recent changes' })
  @ApiParam(SERVER_ID)
  @ApiOkResponse({ type: CapabilitiesViewDto })
  @ApiNotFoundResponse({ description: `No such server (${PROBLEM}, \`not_found\`)` })
  capabilities(@Param('id') id: string): Promise<CapabilitiesView> {
    return this.discovery.capabilities(id);
  }

  @Post('servers/:id/refresh')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Sync the server now and answer its capabilities' })
  @ApiParam(SERVER_ID)
  @ApiOkResponse({ type: CapabilitiesViewDto })
  @ApiNotFoundResponse({ description: `No such server (${PROBLEM}, \`not_found\`)` })
  @ApiConflictResponse({ description: `The server is disabled (${PROBLEM}, \`conflict\`)` })
  @ApiBadGatewayResponse({
    description: `The upstream failed; \`detail\` names the reason (${PROBLEM}, \`upstream_error\`). Items of the last good sync are kept.`,
  })
  refresh(@Param('id') id: string): Promise<CapabilitiesView> {
    return this.discovery.refresh(id);
  }

  @Get('discovery/tools')
  @ApiOperation({ summary: 'Search tools across servers that are not disabled' })
  @ApiOkResponse({ type: ToolSearchPageDto })
  @ApiBadRequestResponse({ description: `Invalid query (${PROBLEM}, \`validation_error\`)` })
  tools(@Query() query: SearchQueryDto): Promise<SearchPage<ToolHit>> {
    return this.discovery.searchTools(query);
  }

  @Get('discovery/prompts')
  @ApiOperation({ summary: 'Search prompts across servers that are not disabled' })
  @ApiOkResponse({ type: ToolSearchPageDto })
  @ApiBadRequestResponse({ description: `Invalid query (${PROBLEM}, \`validation_error\`)` })
  prompts(@Query() query: SearchQueryDto): Promise<SearchPage<ToolHit>> {
    return this.discovery.searchPrompts(query);
  }

  @Get('discovery/resources')
  @ApiOperation({ summary: 'Search resources and resource templates across servers that are not disabled' })
  @ApiOkResponse({ type: ResourceSearchPageDto })
  @ApiBadRequestResponse({ description: `Invalid query (${PROBLEM}, \`validation_error\`)` })
  resources(@Query() query: SearchQueryDto): Promise<SearchPage<ResourceHit>> {
    return this.discovery.searchResources(query);
  }
}
