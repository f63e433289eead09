import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblemResponses } from '../common/api-problem';
import { ExplainQueryDto, ExplanationDto, type Explanation } from './authz-explain.dto';
import { AuthzExplainService } from './authz-explain.service';

@ApiTags('authz')
@Controller('authz')
export class AuthzController {
  constructor(private readonly explainer: AuthzExplainService) {}

  @Get('explain')
  @ApiOperation({ summary: 'Whether a caller with these roles and scopes may see a server and call a tool, and why' })
  @ApiOkResponse({ type: ExplanationDto.Output })
  @ApiProblemResponses(400, 404)
  explain(@Query() query: ExplainQueryDto): Promise<Explanation> {
    return this.explainer.explain(query);
  }
}
