import { Body, Controller, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ApiProblemResponses } from '../common/api-problem';
import { RestBridge } from './rest-bridge';

/** The REST bridge under MCP_PREFIX: a server's tools as JSON over HTTP, for clients that do not speak MCP. */
@ApiTags('rest bridge')
@ApiBearerAuth()
@Controller(':slug')
export class RestBridgeController {
  constructor(private readonly bridge: RestBridge) {}

  @Get('tools')
  @ApiOperation({ summary: "The server's tools the caller may use, as the upstream describes them" })
  @ApiProblemResponses(401, 403, 404, 429)
  listTools(
    @Param('slug') slug: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<{ tools: Record<string, unknown>[] }> {
    return this.bridge.listTools(req, res, slug);
  }

  @Post('tools/:tool')
  @HttpCode(200)
  @ApiOperation({ summary: 'Calls a tool with the body as its arguments; answers the MCP CallToolResult' })
  @ApiProblemResponses(400, 401, 403, 404, 429, 502, 504)
  callTool(
    @Param('slug') slug: string,
    @Param('tool') tool: string,
    @Body() args: unknown,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<Record<string, unknown>> {
    return this.bridge.callTool(req, res, slug, tool, args);
  }

  @Get('openapi.json')
  @ApiOperation({ summary: "An OpenAPI document of the server's tools, generated from their schemas" })
  @ApiProblemResponses(401, 403, 404)
  openApi(@Param('slug') slug: string, @Req() req: Request): Promise<Record<string, unknown>> {
    return this.bridge.openApi(req, slug);
  }
}
