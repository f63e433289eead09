import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblemResponses } from '../common/api-problem';
import { type Ratelimits, RatelimitsDto, RatelimitsQueryDto } from './ratelimits.dto';
import { RatelimitsService } from './ratelimits.service';

@ApiTags('ratelimits')
@Controller('ratelimits')
export class RatelimitsController {
  constructor(private readonly ratelimits: RatelimitsService) {}

  @Get()
  @ApiOperation({ summary: "A caller's rate-limit buckets: what it has spent of each budget and what remains" })
  @ApiOkResponse({ type: RatelimitsDto.Output })
  @ApiProblemResponses(400, 503)
  buckets(@Query() query: RatelimitsQueryDto): Promise<Ratelimits> {
    return this.ratelimits.bucketsOf(query.principal);
  }
}
