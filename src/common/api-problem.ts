import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { createZodDto } from './zod-dto';
import { z } from 'zod';
import { ERROR_CODES } from './domain-error';
import { PROBLEM_CONTENT_TYPE } from './problem-details.filter';

const problemDetailsSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string().describe(`Stable code: ${ERROR_CODES.join(', ')}`),
  instance: z.string().optional(),
  errors: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .optional()
    .describe('One entry per invalid field (validation_error)'),
  errorId: z.string().optional().describe('Only on 5xx: the id of the logged error'),
});
/** RFC 9457 problem details, as every `/api/v1` error is answered. */
export class ProblemDetailsDto extends createZodDto(problemDetailsSchema) {}

export const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input (`validation_error`, with `errors[]`)',
  404: 'No such resource (`not_found`)',
  409: 'A unique field is taken, or the stored server cannot be read, `errors[]` naming its fields (`conflict`)',
  412: 'If-Match does not match the current ETag (`precondition_failed`)',
  413: 'The body is larger than MAX_BODY_BYTES (1 MiB)',
  415: 'The body is not `application/json` in UTF-8 (`validation_error`); a PATCH answers `Accept-Patch`',
  429: 'A rate limit is met (`rate_limited`); `Retry-After` says when to try again',
  502: 'The upstream failed or refused (`upstream_error`)',
  503: 'Not available now (`service_unavailable`): a store it needs does not answer, or is full; try again later',
  504: 'The upstream did not answer within its request timeout (`upstream_timeout`)',
};

/** Documents the problem+json answers a route can give. */
export function ApiProblemResponses(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiExtraModels(ProblemDetailsDto),
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: DESCRIPTIONS[status] ?? 'Error',
        content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: getSchemaPath(ProblemDetailsDto) } } },
      }),
    ),
  );
}
