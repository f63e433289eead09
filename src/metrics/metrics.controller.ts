import { Controller, Get, Header, Res, ServiceUnavailableException } from '@nestjs/common';
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
    description:
      'Every metric of this gateway in the Prometheus text exposition format (version 0.0.4); under ' +
      "`serve --workers N`, every worker's, summed.",
    schema: { type: 'string' },
  })
  async scrape(@Res({ passthrough: true }) res: Response): Promise<string> {
    let scraped: { contentType: string; body: string };
    try {
      scraped = await this.metrics.scrape();
    } catch (error) {
      // Under `--workers`: a worker that did not report, or a primary that did not answer. No partial answer: its
      // counters would look reset.
      throw new ServiceUnavailableException(
        `metrics unavailable: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    res.setHeader('content-type', scraped.contentType);
    return scraped.body;
  }
}
