const REQUEST_TIMEOUT_MS = 30_000;

/** The problem+json of a refused request, as far as the CLI shows it. */
export interface Problem {
  status: number;
  code?: string;
  detail?: string;
  errors?: { field: string; message: string }[];
}

/** The gateway answered with an error. */
export class GatewayApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? `the gateway answered ${problem.status}`);
    this.name = 'GatewayApiError';
  }
}

/** The gateway could not be reached at all. */
export class GatewayUnreachableError extends Error {
  constructor(baseUrl: string, cause: unknown) {
    super(`cannot reach the gateway at ${baseUrl}: ${reasonOf(cause)}`);
    this.name = 'GatewayUnreachableError';
  }
}

/** A small JSON client of the admin API (`API_PREFIX`, `/api/v1` by default) of a running gateway. */
export class GatewayClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly apiPrefix: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  /** A request whose answer is a JSON body. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const { text, status } = await this.send(method, path, body);
    const json = parseJson(text);
    if (json === undefined) {
      throw new GatewayApiError({ status, detail: 'the gateway answered something other than JSON' });
    }
    return json as T;
  }

  /** A request whose answer has no body worth reading (204). */
  async perform(method: string, path: string): Promise<void> {
    await this.send(method, path);
  }

  private async send(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${this.apiPrefix}${path}`, {
        method,
        headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      throw new GatewayUnreachableError(this.baseUrl, error);
    }
    const text = await response.text();
    if (!response.ok) {
      const json = parseJson(text);
      const problem = typeof json === 'object' && json !== null ? (json as Partial<Problem>) : {};
      throw new GatewayApiError({ ...problem, status: response.status });
    }
    return { status: response.status, text };
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** fetch says "fetch failed"; the reason (ECONNREFUSED, a DNS failure, a timeout) is in its cause. */
function reasonOf(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'no answer in time';
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.message : String(error);
}
