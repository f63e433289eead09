import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

/**
 * msal-node's HTTP through `fetch`, bounded in time and never following a
 * redirect. It reaches the endpoints named in the authority metadata the
 * gateway gives msal, whatever their scheme (tests use a local http issuer).
 */
export class FetchNetworkClient implements INetworkModule {
  constructor(private readonly timeoutMs = 10_000) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options);
  }

  private async send<T>(
    method: 'GET' | 'POST',
    url: string,
    options: NetworkRequestOptions | undefined,
    timeout?: number,
  ): Promise<NetworkResponse<T>> {
    const response = await fetch(url, {
      method,
      headers: options?.headers,
      body: method === 'POST' ? options?.body : undefined,
      redirect: 'error',
      signal: AbortSignal.timeout(timeout ?? this.timeoutMs),
    });
    const text = await response.text();
    let body: unknown = {};
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      // msal reads `error` / `error_description` from the body; a non-JSON answer becomes an empty one.
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => (headers[name.toLowerCase()] = value));
    return { headers, body: body as T, status: response.status };
  }
}
