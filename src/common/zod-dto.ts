import { createZodDto as createNestZodDto, type ZodDto } from 'nestjs-zod';
import { z } from 'zod';

type UnknownSchema = Parameters<typeof createNestZodDto>[0];
type JsonSchema = Record<string, unknown>;

/**
 * A DTO class over a zod schema, as nestjs-zod's `createZodDto` makes it (its `Output` too), whose OpenAPI
 * description spells a nullable field as OpenAPI 3.0 does and keeps the defaults its properties are given.
 *
 * Since zod 4.5, `toJSONSchema` writes a bare nullable field (`z.string().nullable()`) with the JSON Schema
 * shorthand `type: ["string", "null"]`. nestjs-zod 5.5 hands that to @nestjs/swagger unchanged, which reads an
 * array-valued `type` as "an array of the first type": `/docs-json` described such a field as
 * `{ type: "array", items: { type: "string" } }` (and dropped `number` from `["string", "number", "null"]`). The
 * description is corrected before swagger reads it, since afterwards the field cannot be told from a real array.
 *
 * nestjs-zod describes a DTO as its input, and zod leaves `default` out of the input description of a schema that
 * transforms, a default being a value of its output. A query parameter is text read into what it holds (a page
 * size is `z.string()` piped into a number), so each of them lost its default: `limit` of the registry read API
 * showed none, though its `.meta()` gives 30. A property keeps the default given by its `.default(value)` or
 * `.meta({ default })` (the parameter's own, or that of an optional or nullable it wraps).
 */
export function createZodDto<TSchema extends UnknownSchema, TCodec extends boolean = false>(
  schema: TSchema,
  options?: { codec: TCodec },
): ZodDto<TSchema, TCodec> {
  const dto = createNestZodDto(schema, options);
  withOpenApi30Description(dto);
  const output = Object.getOwnPropertyDescriptor(dto, 'Output');
  if (output?.get) {
    Object.defineProperty(dto, 'Output', {
      configurable: true,
      get(this: unknown) {
        return withOpenApi30Description(output.get?.call(this) as ZodDto);
      },
    });
  }
  return dto;
}

function withOpenApi30Description<T extends ZodDto>(dto: T): T {
  const describe = Object.getOwnPropertyDescriptor(dto, '_OPENAPI_METADATA_FACTORY')?.value as
    ((this: unknown) => unknown) | undefined;
  if (!describe) return dto;
  const shape = dto.schema instanceof z.ZodObject ? (dto.schema.shape as Record<string, z.ZodType>) : {};
  Object.defineProperty(dto, '_OPENAPI_METADATA_FACTORY', {
    configurable: true,
    writable: true,
    value(this: unknown) {
      const properties = describe.call(this) as Record<string, JsonSchema>;
      for (const [name, property] of Object.entries(properties)) {
        withoutTypeArrays(property);
        // As nestjs-zod leaves a property without a single type, for its cleanupOpenApiDoc to remove.
        property.type ??= '';
        const given = shape[name] && defaultOf(shape[name]);
        if (given && !('default' in property)) property.default = given.value;
      }
      return properties;
    },
  });
  return dto;
}

const referenced = new WeakMap<object, z.ZodType>();

/**
 * `dto`'s schema, for another DTO's schema to hold (the items of a list), which /docs-json then describes as a
 * `$ref` to `dto`'s own component instead of repeating it inline.
 *
 * A zod schema with an `id` is written once under that id and referenced wherever it is held. The id cannot be on
 * `dto`'s own schema: since zod 4.5 a root schema with an id is described as a `$ref` into its own `$defs`, which
 * nestjs-zod 5.5 registers as a second component of the same name and refuses (nestjs-zod #475). So the id, the
 * class's name (nestjs-zod adds `_Output` to both in an `Output`), is on a copy, made once per class. The copy
 * and the class are described alike, as nestjs-zod checks: it refuses two different schemas under one name.
 */
export function refTo<TSchema extends z.ZodType>(dto: { name: string; schema: TSchema }): TSchema {
  let schema = referenced.get(dto) as TSchema | undefined;
  if (!schema) {
    schema = dto.schema.meta({ id: dto.name });
    referenced.set(dto, schema);
  }
  return schema;
}

/** The default `schema` is given, by `.meta({ default })` or `.default(value)`, through optional and nullable. */
function defaultOf(schema: z.ZodType): { value: unknown } | undefined {
  for (let at: z.ZodType | undefined = schema; at;) {
    const meta = z.globalRegistry.get(at);
    if (meta && 'default' in meta) return { value: meta.default };
    if (at instanceof z.ZodDefault) return { value: at.def.defaultValue };
    at = at instanceof z.ZodOptional || at instanceof z.ZodNullable ? (at.unwrap() as z.ZodType) : undefined;
  }
  return undefined;
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
