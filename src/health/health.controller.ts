import { Controller, Get, HttpCode, HttpStatus, Res } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { HealthService, type Readiness } from './health.service';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('live')
  @HttpCode(HttpStatus.OK)
  @ApiOkResponse({ description: 'The process serves HTTP; no dependency is consulted.' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOkResponse({ description: 'The database (and Redis, when configured) answer, and MCP requests are served.' })
  @ApiServiceUnavailableResponse({
    description:
      'A dependency does not answer, the audit spool is full (MCP requests are refused), or the process is draining.',
  })
  async ready(@Res({ passthrough: true }) res: Response): Promise<Readiness> {
    const readiness = await this.health.readiness();
    res.status(statusCodeOf(readiness));
    return readiness;
  }

  @Get()
  @ApiOkResponse({ description: 'Liveness and readiness together; 503 when not ready.' })
  @ApiServiceUnavailableResponse({ description: 'Not ready.' })
  async summary(@Res({ passthrough: true }) res: Response): Promise<Readiness & { live: true }> {
    const readiness = await this.health.readiness();
    res.status(statusCodeOf(readiness));
    return { live: true, ...readiness };
  }
}

function statusCodeOf(readiness: Readiness): number {
  return readiness.status === 'ready' ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE;
}
