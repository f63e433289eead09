import { createZodDto as createNestZodDto, type ZodDto } from 'nestjs-zod';

type UnknownSchema = Parameters<typeof createNestZodDto>[0];
type JsonSchema = Record<string, unknown>;

/**
 * A DTO class over a zod schema, as nestjs-zod's `createZodDto` makes it (its `Output` too), whose OpenAPI
 * description spells a nullable field as OpenAPI 3.0 does.
 *
 * Since zod 4.5, `toJSONSchema` writes a bare nullable field (`z.string().nullable()`) with the JSON Schema
 * shorthand `type: ["string", "null"]`. nestjs-zod 5.5 hands that to @nestjs/swagger unchanged, which reads an
 * array-valued `type` as "an array of the first type": `/docs-json` described such a field as
 * `{ type: "array", items: { type: "string" } }` (and dropped `number` from `["string", "number", "null"]`). The
 * description is corrected before swagger reads it, since afterwards the field cannot be told from a real array.
 */
export function createZodDto<TSchema extends UnknownSchema, TCodec extends boolean = false>(
  schema: TSchema,
  options?: { codec: TCodec },
): ZodDto<TSchema, TCodec> {
  const dto = createNestZodDto(schema, options);
  withOpenApi30Nullables(dto);
  const output = Object.getOwnPropertyDescriptor(dto, 'Output');
  if (output?.get) {
    Object.defineProperty(dto, 'Output', {
      configurable: true,
      get(this: unknown) {
        return withOpenApi30Nullables(output.get?.call(this) as ZodDto);
      },
    });
  }
  return dto;
}

function withOpenApi30Nullables<T extends ZodDto>(dto: T): T {
  const describe = Object.getOwnPropertyDescriptor(dto, '_OPENAPI_METADATA_FACTORY')?.value as
    ((this: unknown) => unknown) | undefined;
  if (!describe) return dto;
  Object.defineProperty(dto, '_OPENAPI_METADATA_FACTORY', {
    configurable: true,
    writable: true,
    value(this: unknown) {
      const properties = describe.call(this) as Record<string, JsonSchema>;
      for (const property of Object.values(properties)) {
        withoutTypeArrays(property);
        // As nestjs-zod leaves a property without a single type, for its cleanupOpenApiDoc to remove.
        property.type ??= '';
      }
      return properties;
    },
  });
  return dto;
}

/** Keywords whose value is one schema, a list of schemas, or a map of schemas. */
const ONE_SCHEMA = ['items', 'additionalProperties', 'not'];
const SCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems', 'items'];
const SCHEMA_MAPS = ['properties', '$defs'];

/**
 * Rewrites, in place and all the way down, each `type: [...]` into OpenAPI 3.0: one type, with `nullable: true`
 * when null is among them, or `anyOf` over the types, each nullable so (3.0 ignores `nullable` beside no `type`).
 */
export function withoutTypeArrays(schema: JsonSchema): void {
  const types = Array.isArray(schema.type)
    ? schema.type.filter((type): type is string => typeof type === 'string')
    : [];
  const nonNull = types.filter((type) => type !== 'null');
  if (nonNull.length > 0) {
    const nullable = nonNull.length < types.length ? { nullable: true } : {};
    delete schema.type;
    if (nonNull.length === 1) Object.assign(schema, { type: nonNull[0] }, nullable);
    else schema.anyOf = nonNull.map((type) => ({ type, ...nullable }));
  }
  for (const [key, value] of Object.entries(schema)) {
    if (typeof value !== 'object' || value === null) continue;
    if (SCHEMA_LISTS.includes(key) && Array.isArray(value)) {
      for (const item of value) if (isSchema(item)) withoutTypeArrays(item);
    } else if (ONE_SCHEMA.includes(key) && isSchema(value)) {
      withoutTypeArrays(value);
    } else if (SCHEMA_MAPS.includes(key) || key.endsWith('-$defs')) {
      // nestjs-zod carries a schema's `$defs` under a key of its own (`x-nestjs_zod-$defs`) to each property.
      for (const item of Object.values(value as JsonSchema)) if (isSchema(item)) withoutTypeArrays(item);
    }
  }
}

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
