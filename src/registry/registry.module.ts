import { Module } from '@nestjs/common';

/** Upstream MCP servers: registration, discovery and health (filled in by the registry issue). */
@Module({})
export class RegistryModule {}
