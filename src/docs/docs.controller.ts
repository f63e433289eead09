import * as path from 'node:path';
import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';

const REDOC_BUNDLE = path.join(path.dirname(require.resolve('redoc/package.json')), 'bundles', 'redoc.standalone.js');

const REDOC_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mcp-gateway API</title>
</head>
<body>
<redoc spec-url="/docs-json"></redoc>
<script src="/redoc/redoc.standalone.js"></script>
</body>
</html>
`;

/** ReDoc over the same OpenAPI document as Swagger UI, served from the npm package (no CDN). */
@ApiExcludeController()
@Controller('redoc')
export class DocsController {
  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  page(): string {
    return REDOC_PAGE;
  }

  @Get('redoc.standalone.js')
  bundle(@Res() res: Response): void {
    res.type('application/javascript').sendFile(REDOC_BUNDLE, { maxAge: '1d' });
  }
}
