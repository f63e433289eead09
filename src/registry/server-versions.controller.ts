import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiProblemResponses } from '../common/api-problem';
import { RegistryService } from './registry.service';
import { ServerVersionDto, ServerVersionListDto } from './server-version.dto';

const REF_PARAM = {
  name: 'ref',
  description: 'Server id (uuid), slug, or URL-encoded name; id and name also reach a deleted server',
};

/** The version history of a server's record, which outlives the server. */
@ApiTags('registry')
@Controller('servers/:ref/versions')
export class ServerVersionsController {
  constructor(private readonly registry: RegistryService) {}

  @Get()
  @ApiOperation({ summary: "List a server's versions, the latest first" })
  @ApiParam(REF_PARAM)
  @ApiOkResponse({ type: ServerVersionListDto.Output })
  @ApiProblemResponses(400, 404)
  list(@Param('ref') ref: string): Promise<ServerVersionListDto> {
    return this.registry.versions(ref);
  }

  @Get(':version')
  @ApiOperation({ summary: 'Read one version of a server, with its record' })
  @ApiParam(REF_PARAM)
  @ApiParam({ name: 'version', description: 'A version such as 1.0.2' })
  @ApiOkResponse({ type: ServerVersionDto.Output })
  @ApiProblemResponses(400, 404, 409)
  get(@Param('ref') ref: string, @Param('version') version: string): Promise<ServerVersionDto> {
    return this.registry.version(ref, version);
  }
}
