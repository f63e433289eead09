import { Global, Module } from '@nestjs/common';

/** Reaching upstream MCP servers: URL policy and SDK client sessions. */
@Global()
@Module({})
export class UpstreamModule {}
