import { createZodDto } from '../common/zod-dto';
import { z } from 'zod';
import { HEALTH_STATUSES, UPSTREAM_ERROR_KINDS } from './health-state';

const healthStatusSchema = z.enum(HEALTH_STATUSES);
const errorKindSchema = z.enum(UPSTREAM_ERROR_KINDS);
const timestamp = z.iso.datetime().nullable();
const wholeNumber = z.int().min(0);

export const healthListQuerySchema = z.object({
  status: healthStatusSchema.optional().describe('Only servers with this health status'),
});
export class HealthListQueryDto extends createZodDto(healthListQuerySchema) {}

export const serverHealthViewSchema = z.object({
  id: z.uuid(),
  slug: z.string(),
  name: z.string(),
  serverStatus: z
    .string()
    .describe('The registration status: active, deprecated (both probed) or disabled (not probed)'),
  status: healthStatusSchema.describe('unknown until the first probe'),
  consecutiveFailures: wholeNumber.describe('Failed probes in a row that count toward unreachable'),
  consecutiveSuccesses: wholeNumber,
  lastCheckedAt: timestamp,
  lastSuccessAt: timestamp,
  lastFailureAt: timestamp,
  lastError: z.string().nullable(),
  lastErrorKind: errorKindSchema.nullable(),
  latencyP50Ms: z.number().nullable().describe('Over the last 20 successful probes'),
  latencyP95Ms: z.number().nullable().describe('Over the last 20 successful probes'),
  changedAt: timestamp.describe('When the status last changed; null before the first probe'),
});
export type ServerHealthView = z.infer<typeof serverHealthViewSchema>;

export const healthTransitionViewSchema = z.object({
  from: healthStatusSchema,
  to: healthStatusSchema,
  reason: z.string(),
  at: z.iso.datetime(),
});

export const serverHealthDetailSchema = serverHealthViewSchema.extend({
  transitions: z.array(healthTransitionViewSchema).describe('The most recent status changes, newest first'),
});
export type ServerHealthDetail = z.infer<typeof serverHealthDetailSchema>;
export class ServerHealthDetailDto extends createZodDto(serverHealthDetailSchema) {}

export const proberViewSchema = z.object({
  enabled: z.boolean().describe('Whether periodic probing runs (HEALTH_PROBE_INTERVAL_MS > 0)'),
  intervalMs: wholeNumber,
  timeoutMs: wholeNumber,
  concurrency: wholeNumber,
  unreachableAfter: wholeNumber,
  healthyAfter: wholeNumber,
  degradedLatencyMs: wholeNumber,
  counters: z
    .object({
      rounds: wholeNumber,
      roundsSkipped: wholeNumber.describe('Ticks that came while the previous round was still listing servers'),
      probes: wholeNumber.describe('Probes recorded since start'),
      failedProbes: z.record(z.string(), wholeNumber).describe('Failed probes by error kind'),
      transitions: z.record(z.string(), wholeNumber).describe('Status changes by "from->to"'),
      abandoned: wholeNumber.describe('Probe results dropped: server deleted meanwhile, or the gateway stopping'),
    })
    .describe('Since this process started'),
});
export type ProberView = z.infer<typeof proberViewSchema>;

export const serverHealthListSchema = z.object({
  servers: z.array(serverHealthViewSchema),
  prober: proberViewSchema,
});
export type ServerHealthList = z.infer<typeof serverHealthListSchema>;
export class ServerHealthListDto extends createZodDto(serverHealthListSchema) {}
