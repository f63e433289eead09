import { Controller, Get, Param, Query } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { ServerList, ServerResponse } from './official-registry.types';
import * as documented from './registry-facade.dto';
import { ListServersQueryDto, VersionsQueryDto } from './registry-facade.query';
import { RegistryFacadeService } from './registry-facade.service';

/** Where the facade lives below API_PREFIX. */
export const FACADE_PATH = 'registry/v0.1';

const SERVER_NAME_PARAM = {
  name: 'serverName',
  description: 'URL-encoded server name, one path segment (e.g. `com.example%2Fmy-server`)',
};

/** An error answer of these routes: `{ error }` (application/json), as the spec gives it (sendRegistryError). */
function ApiRegistryError(status: number, description: string): MethodDecorator {
  return ApiResponse({ status, description, type: documented.RegistryError });
}

const INTERNAL_ERROR = 'An internal error: `{ error }` with the `errorId` of the logged error, nothing else';

@ApiTags('registry (MCP Registry API v0.1)')
@ApiExtraModels(documented.ServerList, documented.ServerResponse, documented.RegistryError)
@Controller(`${FACADE_PATH}/servers`)
export class RegistryFacadeController {
  constructor(private readonly facade: RegistryFacadeService) {}

  @Get()
  @ApiOperation({ summary: 'List MCP servers: one entry per version, ordered by name and version' })
  @ApiOkResponse({ description: '`ServerList`', schema: { $ref: getSchemaPath(documented.ServerList) } })
  @ApiRegistryError(400, 'A malformed cursor, limit, search, updated_since, version or include_deleted')
  @ApiRegistryError(500, INTERNAL_ERROR)
  list(@Query() query: ListServersQueryDto): Promise<ServerList> {
    return this.facade.list(query);
  }

  @Get(':serverName/versions')
  @ApiOperation({ summary: 'List every version of an MCP server, newest publication first' })
  @ApiParam(SERVER_NAME_PARAM)
  @ApiOkResponse({ description: '`ServerList`', schema: { $ref: getSchemaPath(documented.ServerList) } })
  @ApiRegistryError(400, 'A malformed include_deleted, or a server name that is not valid percent-encoding')
  @ApiRegistryError(404, 'No such server: `{ error: "Server not found" }`')
  @ApiRegistryError(500, INTERNAL_ERROR)
  versions(@Param('serverName') serverName: string, @Query() query: VersionsQueryDto): Promise<ServerList> {
    return this.facade.versions(serverName, query);
  }

  @Get(':serverName/versions/:version')
  @ApiOperation({ summary: 'One version of an MCP server; `latest` for its latest' })
  @ApiParam(SERVER_NAME_PARAM)
  @ApiParam({ name: 'version', description: 'URL-encoded exact version, or `latest`' })
  @ApiOkResponse({ description: '`ServerResponse`', schema: { $ref: getSchemaPath(documented.ServerResponse) } })
  @ApiRegistryError(400, 'A malformed include_deleted, or a name or version that is not valid percent-encoding')
  @ApiRegistryError(404, 'No such server or version: `{ error }`')
  @ApiRegistryError(409, 'The version is stored with fields the registry cannot read, named in `error`')
  @ApiRegistryError(500, INTERNAL_ERROR)
  version(
    @Param('serverName') serverName: string,
    @Param('version') version: string,
    @Query() query: VersionsQueryDto,
  ): Promise<ServerResponse> {
    return this.facade.version(serverName, version, query);
  }
}
