import { Controller, Delete, Get, Param, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AggregateServer } from './aggregate-server';
import { SlugRelay } from './slug-relay';

/** Streamable HTTP endpoints under MCP_PREFIX. Documented by MCP itself, not by OpenAPI. */
@ApiExcludeController()
@Controller()
export class McpController {
  constructor(
    private readonly aggregate: AggregateServer,
    private readonly relay: SlugRelay,
  ) {}

  @Post()
  post(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.aggregate.post(req, res);
  }

  @Get()
  stream(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.aggregate.get(req, res);
  }

  @Delete()
  endSession(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.aggregate.delete(req, res);
  }

  @Post(':slug')
  postToServer(@Param('slug') slug: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    return this.relay.post(req, res, slug);
  }

  @Get(':slug')
  streamFromServer(@Param('slug') slug: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    return this.relay.get(req, res, slug);
  }

  @Delete(':slug')
  endServerSession(@Param('slug') slug: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    return this.relay.delete(req, res, slug);
  }
}
