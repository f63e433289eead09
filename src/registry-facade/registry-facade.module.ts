import { Module } from '@nestjs/common';

/** The official MCP Registry read API (v0.1) over this gateway's registry, for VS Code and Copilot. */
@Module({})
export class RegistryFacadeModule {}
