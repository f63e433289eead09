import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { GatewayMetrics } from './gateway-metrics';

/** `GET /metrics`: open like /health, outside API_PREFIX, for Prometheus to scrape. */
@ApiTags('metrics')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: GatewayMetrics) {}

  @Get()
  @Header('cache-control', 'no-store')
  @ApiProduces('text/plain')
  @ApiOkResponse({
    description: 'Every metric of this gateway process in the Prometheus text exposition format (version 0.0.4).',
    schema: { type: 'string' },
  })
  async scrape(@Res({ passthrough: true }) res: Response): Promise<string> {
    const { contentType, body } = await this.metrics.scrape();
    res.setHeader('content-type', contentType);
    return body;
  }
}
