import { Module } from '@nestjs/common';
import { AuthzExplainService } from './authz-explain.service';
import { AuthzController } from './authz.controller';

/** `API_PREFIX/authz`: explains access decisions to registry admins (AuthModule, global, supplies the policy). */
@Module({
  controllers: [AuthzController],
  providers: [AuthzExplainService],
})
export class AuthzModule {}
