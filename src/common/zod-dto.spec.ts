import { z } from 'zod';
import { createZodDto, refTo } from './zod-dto';

/** The properties nestjs-zod gives @nestjs/swagger for `dto`. */
function describedProperties(dto: object): Record<string, Record<string, unknown>> {
  const describe = (dto as { _OPENAPI_METADATA_FACTORY(): unknown })._OPENAPI_METADATA_FACTORY;
  return describe.call(dto) as Record<string, Record<string, unknown>>;
}

describe('createZodDto', () => {
  it('keeps the default of a query parameter read from text, which zod leaves out of an input description', () => {
    const fromText = z.string().transform(Number);
    class QueryDto extends createZodDto(
      z.object({
        limit: fromText.optional().meta({ type: 'integer', default: 30 }),
        page: fromText.default(1),
        deleted: z
          .string()
          .transform((text) => text === 'true')
          .meta({ type: 'boolean', default: false })
          .optional(),
        plain: z.int().default(7),
        none: fromText.optional(),
      }),
    ) {}

    const { limit, page, deleted, plain, none } = describedProperties(QueryDto);
    expect(limit).toMatchObject({ type: 'integer', default: 30 });
    expect(page).toMatchObject({ default: 1 });
    expect(deleted).toMatchObject({ type: 'boolean', default: false });
    expect(plain).toMatchObject({ type: 'integer', default: 7 });
    expect(none).not.toHaveProperty('default');
  });

  it('keeps the default of a body field that transforms', () => {
    const auth = z.object({ type: z.enum(['none', 'bearer']) }).transform((given) => ({ ...given, checked: true }));
    class BodyDto extends createZodDto(z.object({ auth: auth.default({ type: 'none', checked: true }) })) {}
    expect(describedProperties(BodyDto).auth).toMatchObject({
      type: 'object',
      default: { type: 'none', checked: true },
    });
  });

  it("refers a list's items to their DTO's component, under the class's name, Output included", () => {
    class ItemDto extends createZodDto(z.object({ name: z.string() })) {}
    class PageDto extends createZodDto(z.object({ items: z.array(refTo(ItemDto)) })) {}
    class OtherPageDto extends createZodDto(z.object({ items: z.array(refTo(ItemDto)) })) {}

    expect(refTo(ItemDto)).toBe(refTo(ItemDto));
    expect(describedProperties(PageDto).items).toMatchObject({
      type: 'array',
      items: { $ref: '#/$defs/ItemDto' },
      'x-nestjs_zod-$defs': { ItemDto: { type: 'object', properties: { name: { type: 'string' } } } },
    });
    expect(describedProperties(OtherPageDto.Output).items).toMatchObject({ items: { $ref: '#/$defs/ItemDto_Output' } });
    // The item's own description stays inline: it is the component the references name.
    expect(describedProperties(ItemDto)).toMatchObject({ name: { type: 'string' } });
  });
});
