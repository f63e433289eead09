import { Global, Module } from '@nestjs/common';
import { McpTraffic } from './mcp-traffic';

/** The seam between the MCP endpoints and whatever limits, audits or counts their requests. */
@Global()
@Module({ providers: [McpTraffic], exports: [McpTraffic] })
export class TrafficModule {}
