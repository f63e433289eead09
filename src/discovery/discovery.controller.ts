import { Controller, Get, HttpCode, HttpStatus, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import { ApiProblemResponses } from '../common/api-problem';
import { SERVER_REF_PARAM } from '../registry/server-ref';
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

const PROBLEM = 'application/problem+json';

@ApiTags('discovery')
@Controller()
export class DiscoveryController {
  constructor(private readonly discovery: DiscoveryService) {}

  @Get('servers/:ref/capabilities')
  @ApiOperation({ summary: 'What the server offers, as last synced, with recent changes' })
  @ApiParam(SERVER_REF_PARAM)
  @ApiOkResponse({ type: CapabilitiesViewDto })
  @ApiProblemResponses(400, 404)
  @ApiConflictResponse({
    description: `The server is stored with fields the gateway cannot read, named in \`errors\` (${PROBLEM}, \`conflict\`)`,
  })
  capabilities(@Param('ref') ref: string): Promise<CapabilitiesView> {
    return this.discovery.capabilities(ref);
  }

  @Post('servers/:ref/refresh')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Sync the server now and answer its capabilities' })
  @ApiParam(SERVER_REF_PARAM)
  @ApiOkResponse({ type: CapabilitiesViewDto })
  @ApiProblemResponses(400, 404)
  @ApiConflictResponse({
    description: `The server is disabled, or stored with fields the gateway cannot read, named in \`errors\` (${PROBLEM}, \`conflict\`)`,
  })
  @ApiBadGatewayResponse({
    description: `The upstream failed; \`detail\` names the reason (${PROBLEM}, \`upstream_error\`). Items of the last good sync are kept.`,
  })
  refresh(@Param('ref') ref: string): Promise<CapabilitiesView> {
    return this.discovery.refresh(ref);
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
