import { Controller, Get, Param, Query, UseFilters } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { ServerList, ServerResponse } from './official-registry.types';
import { RegistryFacadeErrorFilter } from './registry-facade-error.filter';
import { ListServersQueryDto, VersionsQueryDto } from './registry-facade.query';
import { RegistryFacadeService } from './registry-facade.service';

/** Where the facade lives below API_PREFIX. */
export const FACADE_PATH = 'registry/v0.1';

const SERVER_NAME_PARAM = {
  name: 'serverName',
  description: 'URL-encoded server name, one path segment (e.g. `com.example%2Fmy-server`)',
};

@ApiTags('registry (MCP Registry API v0.1)')
@Controller(`${FACADE_PATH}/servers`)
@UseFilters(RegistryFacadeErrorFilter)
export class RegistryFacadeController {
  constructor(private readonly facade: RegistryFacadeService) {}

  @Get()
  @ApiOkResponse({ description: '`ServerList`: one entry per version, ordered by name and version' })
  @ApiBadRequestResponse({ description: 'A malformed cursor, limit or updated_since: `{ error }`' })
  list(@Query() query: ListServersQueryDto): Promise<ServerList> {
    return this.facade.list(query);
  }

  @Get(':serverName/versions')
  @ApiParam(SERVER_NAME_PARAM)
  @ApiOkResponse({ description: '`ServerList`: every version of the server, newest publication first' })
  @ApiNotFoundResponse({ description: 'No such server: `{ error: "Server not found" }`' })
  versions(@Param('serverName') serverName: string, @Query() query: VersionsQueryDto): Promise<ServerList> {
    return this.facade.versions(serverName, query);
  }

  @Get(':serverName/versions/:version')
  @ApiParam(SERVER_NAME_PARAM)
  @ApiParam({ name: 'version', description: 'URL-encoded exact version, or `latest`' })
  @ApiOkResponse({ description: '`ServerResponse`' })
  @ApiNotFoundResponse({ description: 'No such server or version: `{ error }`' })
  version(
    @Param('serverName') serverName: string,
    @Param('version') version: string,
    @Query() query: VersionsQueryDto,
  ): Promise<ServerResponse> {
    return this.facade.version(serverName, version, query);
  }
}
