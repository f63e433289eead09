import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { type Bindings, type DestinationStream, type Logger } from 'pino';
import type { Options as PinoHttpOptions } from 'pino-http';
import { isoTime } from '../common/iso-time';
import { queryParameterName, urlParameters } from '../common/query-parameter';
import type { AppConfig } from '../config/config';

export const REQUEST_ID_HEADER = 'x-request-id';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Credential headers, censored wherever a request (`req`) or response (`res`) is logged: by the serializers of
 * both keys, the root logger's and pino-http's. pino's `redact` option did the same, but cloned and parsed its
 * paths again for every line that has either key, the access log line of every relayed call included (about 3
 * KB allocated per call, `npm run bench`).
 */
const CREDENTIAL_REQUEST_HEADERS = ['authorization', 'proxy-authorization', 'cookie'];
const CREDENTIAL_RESPONSE_HEADERS = ['set-cookie'];

/**
 * Further request headers that carry a credential by their name, which the gateway never reads but clients and the
 * proxies in front of it send: `x-api-key`, `api-key`, Azure API Management's `ocp-apim-subscription-key`, App
 * Service authentication's `x-ms-token-aad-access-token` and `x-ms-token-aad-id-token`, `x-auth-token`,
 * `x-client-secret`. (Node gives header names in lower case.)
 */
const CREDENTIAL_HEADER_NAME = /token|secret|passw(or)?d|credential|api[-_]?key|(^|[-_])key$/;

/**
 * Fields censored one level down in anything logged (`{ upstream: { token } }`), as pino's `*.token` redaction
 * paths would. Done here instead: pino runs every wildcard path over every object-valued key of every line,
 * which made redaction about half the cost of the access log line written for each request (`npm run bench`).
 */
const SECRET_FIELDS = [
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'password',
  'secret',
  'clientSecret',
  'client_secret',
];
const CENSOR = '[redacted]';

/**
 * `object` with its secret-named fields one level down censored, and the credential query parameters of a `url`
 * field (an upstream's, which may carry an API key in its query); the same object when there are none.
 */
export function censorSecrets(object: Record<string, unknown>): Record<string, unknown> {
  let censored: Record<string, unknown> | undefined;
  for (const key in object) {
    if (!Object.prototype.hasOwnProperty.call(object, key)) continue;
    const value = object[key];
    if (key === 'url' && typeof value === 'string') {
      const safe = censorUrl(value);
      if (safe !== value) (censored ??= { ...object })[key] = safe;
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    const safe = withoutFields(value, SECRET_FIELDS);
    if (safe !== value) (censored ??= { ...object })[key] = safe;
  }
  return censored ?? object;
}

/** `value` with the named fields censored; the same object when it has none of them. */
function withoutFields(value: object, fields: readonly string[]): object {
  let copy: Record<string, unknown> | undefined;
  for (const field of fields) {
    if (!(field in value) || (value as Record<string, unknown>)[field] === undefined) continue;
    // An error keeps its prototype, message and stack for pino's error serializer; the censored field shadows it.
    copy ??= value instanceof Error ? (Object.create(value) as Record<string, unknown>) : { ...value };
    // Defined, not assigned: a getter or read-only field on the original must not get in the way.
    Object.defineProperty(copy, field, { value: CENSOR, enumerable: true, writable: true, configurable: true });
  }
  return copy ?? value;
}

/**
 * `message` (a logged request or response) with the named headers, and those `pattern` matches, censored; the same
 * object when it has none.
 */
function withoutCredentialHeaders<T>(message: T, names: readonly string[], pattern?: RegExp): T {
  const headers = (message as { headers?: unknown } | null | undefined)?.headers;
  if (headers === null || typeof headers !== 'object') return message;
  let fields = names;
  if (pattern) {
    for (const name in headers) {
      if (pattern.test(name) && !names.includes(name)) fields = [...fields, name];
    }
  }
  const censored = withoutFields(headers, fields);
  return censored === headers ? message : { ...message, headers: censored };
}

/**
 * Query parameters whose value is a credential: RFC 6750's `access_token` (which some clients send although the
 * gateway refuses it there), OAuth's codes, tokens, assertions and client secrets, the usual API-key names, and the
 * signatures and credentials of signed URLs, each of which grants the access it signs to whoever holds the URL:
 * Azure SAS (`sig`; its `se`, `sp`, `sv`, `sr`, `st` are expiry, permissions and version, no secret), AWS SigV4
 * (`X-Amz-Signature`, `X-Amz-Credential`, the session's `X-Amz-Security-Token`) and SigV2 (`AWSAccessKeyId`,
 * `Signature`), Google Cloud Storage V4 (`X-Goog-Signature`, `X-Goog-Credential`) and V2 (`GoogleAccessId`,
 * `Signature`), CloudFront (`Signature`; its `Key-Pair-Id` names a public key and `Policy` is readable, no secret).
 * Compared as a server would read them (`queryParameterName`): percent-decoded, in any case, without a `[...]` suffix.
 */
const CREDENTIAL_QUERY_PARAMETERS = new Set([
  'access_token',
  'id_token',
  'refresh_token',
  'token',
  'code',
  'client_secret',
  'client_assertion',
  'assertion',
  'password',
  'api_key',
  'apikey',
  'sig',
  'signature',
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-security-token',
  'awsaccesskeyid',
  'x-goog-signature',
  'x-goog-credential',
  'googleaccessid',
]);

/**
 * `url` (a request target as logged) with the values of credential parameters censored, in its path, its query and
 * its fragment (`urlParameters`: Node passes a `#` in a request line through); the same string when it has none. Both
 * writers of access log lines (pino-http's serializer and `accessLogWriter`) go through here, and so do the targets
 * of audit records (src/audit/exchange-row.ts).
 */
export function censorUrl(url: string): string {
  let censored = '';
  let copied = 0;
  for (const { text, at } of urlParameters(url)) {
    const equals = text.indexOf('=');
    const name = equals === -1 ? text : text.slice(0, equals);
    if (!CREDENTIAL_QUERY_PARAMETERS.has(queryParameterName(name))) continue;
    censored += `${url.slice(copied, at)}${name}=${CENSOR}`;
    copied = at + text.length;
  }
  return copied === 0 ? url : censored + url.slice(copied);
}

/**
 * An error as pino serializes it, without the arguments of the command it carries: ioredis attaches the failed
 * command (`command: { name, args }`), and `AUTH`'s arguments are the Redis password. (A cause is serialized into
 * the message and stack only, its fields left out.)
 */
export function censorError(error: unknown): unknown {
  const serialized = pino.stdSerializers.err(error as Error) as unknown;
  const command = (serialized as { command?: unknown } | null)?.command;
  if (command === null || typeof command !== 'object' || !('args' in command)) return serialized;
  return { ...(serialized as object), command: { ...command, args: CENSOR } };
}

const censorRequest = <T>(req: T): T =>
  withoutCredentialHeaders(req, CREDENTIAL_REQUEST_HEADERS, CREDENTIAL_HEADER_NAME);
const censorResponse = <T>(res: T): T => withoutCredentialHeaders(res, CREDENTIAL_RESPONSE_HEADERS);

export function createLogger(config: Pick<AppConfig, 'logLevel'>, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level: config.logLevel,
      serializers: { req: censorRequest, res: censorResponse, err: censorError },
      formatters: { log: censorSecrets, bindings: censorSecrets },
      base: { pid: process.pid },
      // pino's `stdTimeFunctions.isoTime`, formatted faster.
      timestamp: () => `,"time":"${isoTime(Date.now())}"`,
    },
    destination ?? bufferedStdout(),
  );
  // pino gives child loggers no bindings formatter; every child inherits this method from the root instead.
  const child = Reflect.get(logger, 'child') as unknown as (
    this: Logger,
    bindings: Bindings,
    options?: unknown,
  ) => Logger;
  const censoredChild = function (this: Logger, bindings: Bindings, options?: unknown): Logger {
    return child.call(this, censorSecrets(bindings), options);
  };
  logger.child = censoredChild as unknown as Logger['child'];
  return logger;
}

/** How long a log line may wait in memory for others to share its write. */
const LOG_FLUSH_MS = 200;
/** Lines are written once this many bytes are waiting, or after LOG_FLUSH_MS. */
const LOG_BUFFER_BYTES = 8_192;

/**
 * What every buffered destination still holds, written when the process exits (a crash included). pino adds no
 * `exit` listener of its own for a synchronous destination: this one is the only one.
 */
const releaseOnExit = new Set<() => void>();
process.once('exit', () => {
  for (const release of releaseOnExit) release();
});

/**
 * Standard output, written in batches: lines wait here up to LOG_FLUSH_MS (or until 8 KiB are waiting) and go
 * out together, as one synchronous write (pino's default destination, which is synchronous). Writing each
 * access log line on its own cost a trip through libuv's thread pool and a wake-up of the event loop per
 * request (`npm run bench` at concurrency 1: one of the four wake-ups a relayed call cost). The batch is written
 * synchronously because an asynchronous write still in flight when the process exits is lost in part: pino's
 * exit handler writes what comes after it, not what the thread pool had not written yet (22 lines of a burst of
 * 2,000, once, in `test/log-output.e2e-spec.ts`). What is waiting is written when the process exits, a crash
 * included; a SIGKILL loses at most LOG_FLUSH_MS of lines. A reader of standard output that stops reading holds
 * the gateway up at its next batch, as with any synchronous logger.
 */
function bufferedStdout(): DestinationStream {
  const stdout = pino.destination({ sync: true });
  let waiting = '';
  let timer: NodeJS.Timeout | undefined;
  const release = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (waiting === '') return;
    const lines = waiting;
    waiting = '';
    stdout.write(lines);
  };
  releaseOnExit.add(release);
  return {
    write(line: string): void {
      waiting += line;
      if (waiting.length >= LOG_BUFFER_BYTES) release();
      else timer ??= setTimeout(release, LOG_FLUSH_MS).unref();
    },
    // pino's `logger.flush()`.
    flush: (callback?: (error?: Error) => void) => {
      release();
      stdout.flush(callback);
    },
  } as DestinationStream;
}

/** A request as its access log line tells it (the line pino-http writes, without the headers). */
export interface AccessEntry {
  id: string;
  method: string;
  url: string;
  statusCode: number;
  /** Milliseconds, whole. */
  responseTime: number;
  /** False when the connection closed before the response was all written. */
  completed: boolean;
}

/** The level of a request's access log line, by its response's status: for pino-http's lines and the POST lane's. */
function accessLevelOf(statusCode: number): 'info' | 'warn' | 'error' {
  return statusCode >= 500 ? 'error' : statusCode >= 400 ? 'warn' : 'info';
}

/**
 * Writes access log lines to `logger` (one `createLogger` made): each the very text of
 * `logger[level]({ req: { id, method, url }, res: { statusCode }, responseTime }, 'request completed')`, at the
 * level pino-http would choose (`accessLevelOf`), but put together here: about 0.25 µs a line, against 1.2–1.4 µs
 * through pino's generic path (its serializers and our censoring run over every key, each object serialized apart),
 * timed side by side on Node 20; in the gateway, where pino's property accesses are megamorphic, the line cost 6.5% of a
 * relayed call's instructions (`npm run bench -- --callgrind`). This line has nothing to censor. A destination that
 * wants pino's metadata (a multistream) gets the line through pino.
 */
export function accessLogWriter(logger: Logger): (entry: AccessEntry) => void {
  const internals = logger as unknown as Record<symbol, unknown>;
  const { streamSym, timeSym, chindingsSym, needsMetadataGsym } = pino.symbols;
  return (entry) => {
    const { statusCode, responseTime, completed } = entry;
    const level = accessLevelOf(statusCode);
    if (!logger.isLevelEnabled(level)) return;
    const message = completed ? 'request completed' : 'request aborted';
    const url = censorUrl(entry.url);
    const stream = internals[streamSym] as DestinationStream & Record<symbol, unknown>;
    if (stream[needsMetadataGsym] === true) {
      const req = { id: entry.id, method: entry.method, url };
      logger[level]({ req, res: { statusCode }, responseTime }, message);
      return;
    }
    const time = (internals[timeSym] as () => string)();
    stream.write(
      `{"level":${logger.levels.values[level]}${time}${internals[chindingsSym] as string}` +
        `,"req":{"id":${JSON.stringify(entry.id)},"method":${JSON.stringify(entry.method)},"url":${JSON.stringify(url)}}` +
        `,"res":{"statusCode":${statusCode}},"responseTime":${responseTime},"msg":"${message}"}\n`,
    );
  };
}

/** Takes a well-formed `x-request-id` from the caller, or makes one, and echoes it back. */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers[REQUEST_ID_HEADER];
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  res.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

/** The id a request was given (`requestId` above, through pino-http), or '' before it had one. */
export function requestIdOf(req: IncomingMessage, res?: ServerResponse): string {
  const id: unknown = req.id ?? res?.getHeader(REQUEST_ID_HEADER);
  return typeof id === 'string' || typeof id === 'number' ? String(id) : '';
}

export function httpLoggerOptions(logger: Logger): PinoHttpOptions {
  return {
    logger,
    genReqId: requestId,
    customLogLevel: (_req, res, error) => (error ? 'error' : accessLevelOf(res.statusCode)),
    // Probes hit these every few seconds; their lines would drown the rest.
    autoLogging: { ignore: (req) => req.url?.startsWith('/health') ?? false },
    // They replace the root logger's for pino-http's lines, so they censor too.
    serializers: {
      req: (req: { id: string; method: string; url: string; headers: Record<string, unknown> }) =>
        censorRequest({ id: req.id, method: req.method, url: censorUrl(req.url), headers: req.headers }),
      res: (res: { statusCode: number; headers: Record<string, unknown> }) =>
        censorResponse({ statusCode: res.statusCode, headers: res.headers }),
      err: censorError,
    },
  };
}
