import { Controller, Get, HttpCode, HttpStatus, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { ApiProblemResponses } from '../common/api-problem';
import { SERVER_REF_PARAM } from '../registry/server-ref';
import {
  HealthListQueryDto,
  type ServerHealthDetail,
  ServerHealthDetailDto,
  type ServerHealthList,
  ServerHealthListDto,
} from './upstream-health.dto';
import { UpstreamHealthService } from './upstream-health.service';

const BAD_REQUEST = 'A malformed filter (problem+json, code validation_error).';

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

  @Get(':ref')
  @ApiOperation({ summary: "One server's health and its recent status changes" })
  @ApiParam(SERVER_REF_PARAM)
  @ApiOkResponse({ type: ServerHealthDetailDto })
  @ApiProblemResponses(400, 404)
  get(@Param('ref') ref: string): Promise<ServerHealthDetail> {
    return this.health.get(ref);
  }

  @Post(':ref/probe')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Probe one server now (even a disabled one) and answer its updated health' })
  @ApiParam(SERVER_REF_PARAM)
  @ApiOkResponse({ type: ServerHealthDetailDto })
  @ApiProblemResponses(400, 404, 409)
  @ApiServiceUnavailableResponse({ description: 'The gateway is stopping.' })
  probe(@Param('ref') ref: string): Promise<ServerHealthDetail> {
    return this.health.probeNow(ref);
  }
}
