import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import request from 'supertest';

interface OpenApiOperation {
  parameters?: { name: string; in: string; schema?: Record<string, unknown> }[];
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}
export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, object> };
}

const DOC_ID = 'https://mcp-gateway.invalid/docs-json';

/**
 * A gateway's `/docs-json`, to check real answers against. Ajv 8 knows OpenAPI 3.0's `nullable`; the formats
 * (`uuid`, `date-time`, `uri`) are checked too; other keywords (`example`) are annotations.
 */
export class DocumentedResponses {
  private readonly ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });

  private constructor(readonly doc: OpenApiDocument) {
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: DOC_ID, components: doc.components });
  }

  static async of(url: string): Promise<DocumentedResponses> {
    const res = await request(url).get('/docs-json').expect(200);
    return new DocumentedResponses(res.body as OpenApiDocument);
  }

  operation(method: string, path: string): OpenApiOperation {
    const operation = this.doc.paths[path]?.[method];
    if (!operation) throw new Error(`/docs-json has no ${method.toUpperCase()} ${path}`);
    return operation;
  }

  /**
   * Throws, naming the route and Ajv's explanation, unless `res` (its status, media type and body) is what the
   * document says `method path` answers.
   */
  check(method: string, path: string, res: request.Response): void {
    const mediaType = String(res.headers['content-type']).split(';')[0]?.trim() ?? '';
    const response = this.operation(method, path).responses[String(res.status)];
    const schema = response?.content?.[mediaType]?.schema;
    if (!schema) {
      throw new Error(`/docs-json describes no ${res.status} ${mediaType} answer of ${method.toUpperCase()} ${path}`);
    }
    const validate: ValidateFunction = this.ajv.compile(withRefsInto(schema));
    if (!validate(res.body)) {
      throw new Error(
        `${method.toUpperCase()} ${path} answered ${JSON.stringify(res.body)}, which /docs-json does not describe: ` +
          this.ajv.errorsText(validate.errors),
      );
    }
  }
}

/** The schema with its local `$ref`s pointing into the document added to Ajv. */
function withRefsInto(schema: object): object {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', `"${DOC_ID}#/components/`)) as object;
}
