import { Controller, Get, HttpCode, Options, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { WELL_KNOWN_PRM, type ProtectedResourceDocument } from './protected-resource';
import { ResourceMetadataService } from './resource-metadata.service';

/**
 * `/.well-known/oauth-protected-resource[MCP_PREFIX[/{slug}]]` (RFC 9728), open
 * to any origin: browser-based MCP clients read it before they have a token.
 */
@ApiExcludeController()
@Controller(WELL_KNOWN_PRM.slice(1))
export class ProtectedResourceController {
  constructor(private readonly metadata: ResourceMetadataService) {}

  @Get(['', '*rest'])
  document(@Req() req: Request, @Res({ passthrough: true }) res: Response): ProtectedResourceDocument {
    openCors(res);
    res.setHeader('cache-control', 'public, max-age=300');
    return this.metadata.documentFor(req.path.slice(WELL_KNOWN_PRM.length));
  }

  @Options(['', '*rest'])
  @HttpCode(204)
  preflight(@Req() req: Request, @Res({ passthrough: true }) res: Response): void {
    openCors(res);
    res
      .setHeader('access-control-allow-methods', 'GET, OPTIONS')
      .setHeader('access-control-allow-headers', req.headers['access-control-request-headers'] ?? 'authorization')
      .setHeader('access-control-max-age', '86400');
  }
}

function openCors(res: Response): void {
  res.setHeader('access-control-allow-origin', '*');
}
