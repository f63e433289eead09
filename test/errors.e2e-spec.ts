import { Body, Controller, Get, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { INestApplication } from '@nestjs/common';
import { createZodDto } from '../src/common/zod-dto';
import request from 'supertest';
import { z } from 'zod';
import { AppModule } from '../src/app.module';
import { configureApp, NEST_OPTIONS } from '../src/bootstrap';
import { GatewayExpressAdapter } from '../src/common/express-adapter';
import { DomainError } from '../src/common/domain-error';
import { loadConfig } from '../src/config/config';
import { type DatabaseConnection, openDatabase } from '../src/database/database';
import { PrismaService } from '../src/database/prisma.service';
import { createLogger } from '../src/logging/logger';
import { MemoryStore } from '../src/redis/memory-store';
import { LogCapture } from './support/gateway';
import { POSTGRES_URL } from './support/services';

class ProbeDto extends createZodDto(
  z.object({
    name: z.string().min(3),
    count: z.number().int().positive(),
  }),
) {}

/** Routes that fail in each of the ways a real handler can, mounted on the production pipeline. */
@Controller('probe')
class FailingController {
  constructor(private readonly prisma: PrismaService) {}

  @Get('crash')
  crash(): never {
    throw new Error('database password is hunter2');
  }

  @Get('domain')
  domain(): never {
    throw new DomainError('conflict', 'a server named com.example/x already exists', [
      { field: 'name', message: 'taken' },
    ]);
  }

  @Post('validate')
  validate(@Body() body: ProbeDto): ProbeDto {
    return body;
  }

  @Get('prisma-missing')
  async prismaMissing(): Promise<unknown> {
    return this.prisma.server.update({ where: { id: '00000000-0000-0000-0000-000000000000' }, data: { title: 'x' } });
  }
}

describe('problem+json from the production pipeline', () => {
  let app: INestApplication;
  let database: DatabaseConnection;
  const logs = new LogCapture();

  beforeAll(async () => {
    const config = loadConfig({ DATABASE_URL: POSTGRES_URL, PORT: '0' });
    const logger = createLogger({ logLevel: 'info' }, logs.stream);
    database = await openDatabase(config.database, logger);
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule.forRoot({ config, logger, database, store: new MemoryStore() })],
      controllers: [FailingController],
    }).compile();
    app = moduleRef.createNestApplication(new GatewayExpressAdapter(), NEST_OPTIONS);
    configureApp(app, logger);
    await app.init();
  });

  afterAll(async () => {
    await app.close();
    await database.close();
  });

  it('answers an unexpected error with 500, an error id that is logged, and nothing else', async () => {
    const res = await request(app.getHttpServer()).get('/probe/crash').expect(500);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toEqual({
      type: 'urn:mcp-gateway:problem:server_error',
      title: 'Internal server error',
      status: 500,
      detail: 'an internal error occurred',
      code: 'server_error',
      instance: '/probe/crash',
      errorId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(res.text).not.toContain('hunter2');
    const logged = logs.lines.find((line) => line.errorId === res.body.errorId);
    expect(logged).toMatchObject({ level: 50, err: { message: 'database password is hunter2' } });
  });

  it('answers a domain error with its code, status and field errors', async () => {
    const res = await request(app.getHttpServer()).get('/probe/domain').expect(409);
    expect(res.body).toMatchObject({
      status: 409,
      code: 'conflict',
      detail: 'a server named com.example/x already exists',
      errors: [{ field: 'name', message: 'taken' }],
    });
  });

  it('answers invalid input with 400 and one field error per problem', async () => {
    const res = await request(app.getHttpServer()).post('/probe/validate').send({ name: 'ab', count: -1 }).expect(400);
    expect(res.body).toMatchObject({ status: 400, code: 'validation_error' });
    expect(res.body.errors.map((error: { field: string }) => error.field).sort()).toEqual(['count', 'name']);
  });

  it('answers a missing body with 400, not a crash', async () => {
    const res = await request(app.getHttpServer()).post('/probe/validate').expect(400);
    expect(res.body.code).toBe('validation_error');
  });

  it('accepts valid input', async () => {
    const res = await request(app.getHttpServer()).post('/probe/validate').send({ name: 'abc', count: 2 }).expect(201);
    expect(res.body).toEqual({ name: 'abc', count: 2 });
  });

  it('maps a Prisma "record not found" to 404', async () => {
    const res = await request(app.getHttpServer()).get('/probe/prisma-missing').expect(404);
    expect(res.body).toMatchObject({ code: 'not_found', detail: 'the record does not exist' });
  });
});
