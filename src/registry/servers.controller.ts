import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Inject,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Res,
} from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiNotModifiedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiProblemResponses } from '../common/api-problem';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { etagOf, ifNoneMatchHits } from './etag';
import { RegistryService } from './registry.service';
import { SERVER_REF_PARAM } from './server-ref';
import {
  ListServersQueryDto,
  ServerDto,
  ServerInputDto,
  ServerListDto,
  ServerPatchDto,
  type ServerView,
} from './server.dto';

const IF_MATCH = {
  name: 'If-Match',
  required: false,
  description: 'Write only if the server is still at this ETag (`*` matches any); 412 otherwise',
};
const ETAG_HEADER = { ETag: { description: 'Strong ETag of this revision', schema: { type: 'string' } } };

/** Registering, reading, changing and removing upstream servers. */
@ApiTags('registry')
@Controller('servers')
export class ServersController {
  constructor(
    private readonly registry: RegistryService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Register a server' })
  @ApiCreatedResponse({
    type: ServerDto.Output,
    headers: { Location: { description: 'URL of the new server', schema: { type: 'string' } }, ...ETAG_HEADER },
  })
  @ApiProblemResponses(400, 409, 413, 415)
  async create(@Body() body: ServerInputDto, @Res({ passthrough: true }) res: Response): Promise<ServerView> {
    const server = await this.registry.create(body);
    res.location(`${this.config.apiPrefix}/servers/${server.id}`).setHeader('ETag', etagOf(server.id, server.revision));
    return server;
  }

  @Get()
  @ApiOperation({ summary: 'List servers, oldest first, a page at a time' })
  @ApiOkResponse({ type: ServerListDto.Output })
  @ApiProblemResponses(400)
  list(@Query() query: ListServersQueryDto): Promise<ServerListDto> {
    return this.registry.list(query);
  }

  @Get(':ref')
  @ApiOperation({ summary: 'Read one server' })
  @ApiParam(SERVER_REF_PARAM)
  @ApiHeader({ name: 'If-None-Match', required: false, description: '304 when the server is still at this ETag' })
  @ApiOkResponse({ type: ServerDto.Output, headers: ETAG_HEADER })
  @ApiNotModifiedResponse({ description: 'The server is still at the ETag sent in If-None-Match' })
  @ApiProblemResponses(400, 404, 409)
  async get(
    @Param('ref') ref: string,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const server = await this.registry.get(ref);
    const etag = etagOf(server.id, server.revision);
    res.setHeader('ETag', etag);
    if (ifNoneMatchHits(ifNoneMatch, etag)) res.status(304).end();
    else res.json(server);
  }

  @Put(':ref')
  @ApiOperation({ summary: 'Replace every writable field (an omitted slug stays)' })
  @ApiParam(SERVER_REF_PARAM)
  @ApiHeader(IF_MATCH)
  @ApiOkResponse({ type: ServerDto.Output, headers: ETAG_HEADER })
  @ApiProblemResponses(400, 404, 409, 412, 413, 415)
  async replace(
    @Param('ref') ref: string,
    @Body() body: ServerInputDto,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<ServerView> {
    return withEtag(res, await this.registry.replace(ref, body, ifMatch));
  }

  @Patch(':ref')
  @ApiOperation({ summary: 'Change some fields (null clears title, description, statusMessage)' })
  @ApiParam(SERVER_REF_PARAM)
  @ApiHeader(IF_MATCH)
  @ApiOkResponse({ type: ServerDto.Output, headers: ETAG_HEADER })
  @ApiProblemResponses(400, 404, 409, 412, 413, 415)
  async patch(
    @Param('ref') ref: string,
    @Body() body: ServerPatchDto,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<ServerView> {
    return withEtag(res, await this.registry.patch(ref, body, ifMatch));
  }

  @Delete(':ref')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a server (its version history stays, marked deleted)' })
  @ApiParam(SERVER_REF_PARAM)
  @ApiHeader(IF_MATCH)
  @ApiNoContentResponse({ description: 'Removed' })
  @ApiProblemResponses(400, 404, 412)
  async remove(@Param('ref') ref: string, @Headers('if-match') ifMatch: string | undefined): Promise<void> {
    await this.registry.remove(ref, ifMatch);
  }
}

function withEtag(res: Response, server: ServerView): ServerView {
  res.setHeader('ETag', etagOf(server.id, server.revision));
  return server;
}
