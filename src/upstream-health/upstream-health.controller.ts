import { Controller, Get, HttpCode, HttpStatus, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import {
  HealthListQueryDto,
  type ServerHealthDetail,
  ServerHealthDetailDto,
  type ServerHealthList,
  ServerHealthListDto,
  ServerIdParamsDto,
} from './upstream-health.dto';
import { UpstreamHealthService } from './upstream-health.service';

const BAD_REQUEST = 'A malformed id or filter (problem+json, code validation_error).';
const NOT_FOUND = 'No server with this id (problem+json, code not_found).';

/** The prober's view of the upstreams. Not to be confused with /health, which is about the gateway itself. */
@ApiTags('upstream health')
@Controller('health/servers')
export class UpstreamHealthController {
  constructor(private readonly health: UpstreamHealthService) {}

  @Get()
  @ApiOperation({ summary: "Every server's health, in registration order, and the prober's settings and counters" })
  @ApiOkResponse({ type: ServerHealthListDto })
  @ApiBadRequestResponse({ description: BAD_REQUEST })
  list(@Query() query: HealthListQueryDto): Promise<ServerHealthList> {
    return this.health.list(query.status);
  }

  @Get(':id')
  @ApiOperation({ summary: "One server's health and its recent status changes" })
  @ApiOkResponse({ type: ServerHealthDetailDto })
  @ApiBadRequestResponse({ description: BAD_REQUEST })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  get(@Param() params: ServerIdParamsDto): Promise<ServerHealthDetail> {
    return this.health.get(params.id);
  }

  @Post(':id/probe')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Probe one server now (even a disabled one) and answer its updated health' })
  @ApiOkResponse({ type: ServerHealthDetailDto })
  @ApiBadRequestResponse({ description: BAD_REQUEST })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  @ApiServiceUnavailableResponse({ description: 'The gateway is stopping.' })
  probe(@Param() params: ServerIdParamsDto): Promise<ServerHealthDetail> {
    return this.health.probeNow(params.id);
  }
}
