import { Module } from '@nestjs/common';

/** Entra ID token validation and role-based access for MCP_PREFIX (filled in by the auth issue). */
@Module({})
export class AuthModule {}
