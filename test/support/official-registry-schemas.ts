import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { JsonSchemaType, JsonSchemaValidator } from '@modelcontextprotocol/sdk/validation';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';

/**
 * The official MCP Registry schemas kept as fixtures (test/fixtures/official-registry),
 * compiled with the Ajv 8 (and ajv-formats) the MCP SDK brings, so `uri` and
 * `date-time` are checked too.
 */
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'official-registry');

function load(file: string): JsonSchemaType & { $id: string } {
  return JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as JsonSchemaType & { $id: string };
}

const ajv = new AjvJsonSchemaValidator();
const serverSchema = load('server.schema.2025-12-11.json');
const components = load('openapi-v0.1.components.schema.json');
// Compiled (and so registered under their $id) before anything refers to them.
const serverJson = ajv.getValidator<unknown>(serverSchema);
ajv.getValidator<unknown>(components);

function component(name: 'ServerList' | 'ServerResponse' | 'NotFound'): JsonSchemaValidator<unknown> {
  return ajv.getValidator<unknown>({ $ref: `${components.$id}#/definitions/${name}` });
}

export const officialSchemas = {
  serverJson,
  serverList: component('ServerList'),
  serverResponse: component('ServerResponse'),
  /** The body the spec gives the 404s of the read API: `{ error: string }`. */
  errorBody: component('NotFound'),
};

/** Throws with Ajv's explanation when `value` does not satisfy the schema. */
export function assertValid(validator: JsonSchemaValidator<unknown>, value: unknown, what = 'body'): void {
  const result = validator(value);
  if (!result.valid) throw new Error(`${what} does not satisfy the official schema: ${result.errorMessage}`);
}
