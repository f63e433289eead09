import { Module } from '@nestjs/common';

/** The MCP endpoints under MCP_PREFIX (filled in by the MCP endpoint issue). */
@Module({})
export class McpModule {}
