import Redis, { ReplyError, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { OutageLog } from '../common/outage-log';
import type { KeyValueStore, MessageHandler } from './key-value-store';

const CONNECT_TIMEOUT_MS = 5_000;
const PING_TIMEOUT_MS = 2_000;

// INCRBY and the first expiry in one round trip, so a counter never lives forever.
const INCR_WITH_TTL = `
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value`;

/** One `subscribe` call: its handler, and what it is told when messages may have been missed. */
interface Subscription {
  message: MessageHandler;
  missed?: () => void;
}

/** A channel the subscriber holds, for its subscriptions, once Redis has answered its SUBSCRIBE (`subscribed`). */
interface Channel {
  subscriptions: Set<Subscription>;
  subscribed: Promise<void>;
}

/** The one ioredis client of the process, plus a subscriber connection made on first use. */
export class RedisStore implements KeyValueStore {
  readonly kind = 'redis';
  private subscriber?: Promise<Redis>;
  private readonly channels = new Map<string, Channel>();
  private heartbeat?: NodeJS.Timeout;
  private resubscribeRetry?: NodeJS.Timeout;
  /** The subscriber's SUBSCRIBE of its channels on a new connection, retried on the next until Redis takes it. */
  private readonly resubscribes: OutageLog;
  private closing = false;

  private constructor(
    readonly client: Redis,
    private readonly logger: Logger,
    private readonly url: string,
    private readonly authRefused: (refusal: AuthRefusal) => void,
    private readonly commandTimeoutMs: number | undefined,
  ) {
    this.resubscribes = new OutageLog(logger, "Redis subscriber's channels subscribed again");
    client.on('close', () => this.checkSubscriber());
  }

  /**
   * Connects, failing with a clear message (and no retry loop left behind) if Redis does not answer or refuses.
   * `commandTimeoutMs` (REDIS_COMMAND_TIMEOUT_MS) bounds every command of the client and of its subscriber: one
   * unanswered that long fails as a lost connection would, instead of waiting for as long as Redis stays silent.
   *
   * A command that timed out stays in ioredis's queue until Redis answers it or the connection closes: under load, a
   * Redis that keeps the connection open and stays silent (paused, a black-holed path) had the queue grow by every
   * command sent (some 1.5 KB each, 3 MB a second at 2,000 commands a second), all answered at once when it came
   * back. A connection with commands waiting and nothing received for SILENT_CONNECTION_FACTOR times as long is
   * closed instead (`socketTimeout`): what it held fails, and it reconnects as after any loss, its subscriptions with
   * it; a Redis answering slowly, but answering, keeps it.
   */
  static async connect(url: string, logger: Logger, options: { commandTimeoutMs?: number } = {}): Promise<RedisStore> {
    const warned = new Set<AuthRefusal>();
    const authRefused = (refusal: AuthRefusal): void => {
      if (warned.has(refusal)) return;
      warned.add(refusal);
      logger.warn({ redis: redactUrl(url) }, AUTH_REFUSALS[refusal].warning);
    };
    const client = createConnection(
      (connection) =>
        new Redis(url, {
          ...CLIENT_OPTIONS,
          commandTimeout: options.commandTimeoutMs,
          socketTimeout:
            options.commandTimeoutMs === undefined ? undefined : options.commandTimeoutMs * SILENT_CONNECTION_FACTOR,
          ...connection,
        }),
      'client',
      logger,
      authRefused,
    );
    await open(client, url);
    return new RedisStore(client, logger, url, authRefused, options.commandTimeoutMs);
  }

  get(key: string): Promise<string | null> {
    return this.client.get(key);
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs) await this.client.set(key, value, 'PX', ttlMs);
    else await this.client.set(key, value);
  }

  async del(key: string): Promise<void> {
    await this.client.del(key);
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    return (await this.client.pexpire(key, ttlMs)) === 1;
  }

  async incrBy(key: string, by: number, ttlMs?: number): Promise<number> {
    const result = await this.client.eval(INCR_WITH_TTL, 1, key, by, ttlMs ?? 0);
    return Number(result);
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.client.publish(channel, message);
  }

  async subscribe(channel: string, handler: MessageHandler, missed?: () => void): Promise<() => Promise<void>> {
    this.subscriber ??= this.startSubscriber().catch((error: unknown) => {
      this.subscriber = undefined;
      throw error;
    });
    const subscriber = await this.subscriber;
    const held = this.channels.get(channel) ?? this.subscribeChannel(subscriber, channel);
    // Held before Redis answers: a message may come in the same read as the answer, before this call goes on.
    const subscription: Subscription = { message: handler, missed };
    held.subscriptions.add(subscription);
    try {
      await held.subscribed;
    } catch (error) {
      held.subscriptions.delete(subscription);
      throw error;
    }
    return async () => {
      held.subscriptions.delete(subscription);
      if (held.subscriptions.size === 0 && this.channels.get(channel) === held) {
        this.channels.delete(channel);
        // Without a connection there is nobody to tell, and a shutdown during an outage must not fail on it: the
        // connection, should it come back, subscribes only the channels still held. ioredis may still say `ready` of a
        // connection that takes no more writes ("Stream isn't writeable"); one that fails so, or never answers, only
        // brings messages that find no subscription.
        if (subscriber.status === 'ready') await subscriber.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.client.ping(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.resubscribeRetry);
    this.channels.clear();
    const subscriber = await this.subscriber?.catch(() => undefined);
    await Promise.all([quit(this.client), subscriber ? quit(subscriber) : undefined]);
  }

  /**
   * The client's connection closed: the subscriber's, to the same Redis, may be as silent, and it sends nothing of its
   * own that would tell (a black-holed path leaves it open, waiting for messages that never come). It is asked a PING
   * at once rather than at its next heartbeat: unanswered as long as the client's would be, its connection is closed
   * too (socketTimeout), made again, and its channels subscribed again (`resubscribe`).
   */
  private checkSubscriber(): void {
    if (this.closing || !this.subscriber) return;
    void this.subscriber
      .then((subscriber) => (subscriber.status === 'ready' ? subscriber.ping() : undefined))
      .catch(() => undefined);
  }

  private async startSubscriber(): Promise<Redis> {
    // A connection in subscriber mode can run no other command, hence its own: the client's
    // options (the URL's db and credentials among them), its own retries.
    const subscriber = createConnection(
      (options) => this.client.duplicate({ ...SUBSCRIBER_OPTIONS, ...options }),
      'subscriber',
      this.logger,
      this.authRefused,
    );
    subscriber.on('message', (channel: string, message: string) => {
      for (const subscription of this.channels.get(channel)?.subscriptions ?? []) subscription.message(message);
    });
    await open(subscriber, this.url);
    // Every later ready is a new connection, which holds no subscription yet.
    subscriber.on('ready', () => this.resubscribe(subscriber));
    this.startHeartbeat(subscriber);
    return subscriber;
  }

  /**
   * Sends SUBSCRIBE once for everyone subscribing to the channel meanwhile, who all wait for its answer. Should Redis
   * refuse it or not answer, the channel is let go of, so that the next `subscribe` sends SUBSCRIBE again instead of
   * finding it held and taking no messages.
   */
  private subscribeChannel(subscriber: Redis, name: string): Channel {
    const channel: Channel = { subscriptions: new Set(), subscribed: Promise.resolve() };
    channel.subscribed = subscriber.subscribe(name).then(
      () => undefined,
      (error: unknown) => {
        if (this.channels.get(name) === channel) this.channels.delete(name);
        throw error;
      },
    );
    this.channels.set(name, channel);
    return channel;
  }

  /**
   * The subscriber connected again: its channels are subscribed again, and each subscription is then told that the
   * messages published while it was away never reached it (Redis keeps none for a subscriber), so that it can catch
   * up on what they would have said. Should Redis refuse the SUBSCRIBE or not answer it, it is sent again after
   * RESUBSCRIBE_RETRY_MS on the same connection (a silent one is replaced meanwhile, and a new one starts over).
   */
  private resubscribe(subscriber: Redis): void {
    clearTimeout(this.resubscribeRetry);
    const names = [...this.channels.keys()];
    if (this.closing || names.length === 0) return;
    subscriber
      .subscribe(...names)
      .then(
        () => {
          this.resubscribes.succeeded();
          for (const name of names) {
            for (const subscription of this.channels.get(name)?.subscriptions ?? []) subscription.missed?.();
          }
        },
        (error: unknown) => {
          if (this.closing) return;
          this.resubscribes.failed(error, 'Redis subscriber could not subscribe its channels again; retrying');
          if (subscriber.status !== 'ready') return;
          this.resubscribeRetry = setTimeout(() => this.resubscribe(subscriber), RESUBSCRIBE_RETRY_MS);
          this.resubscribeRetry.unref();
        },
      )
      .catch((error: unknown) =>
        this.logger.error({ err: error }, 'a subscription could not catch up on missed messages'),
      );
  }

  /**
   * A subscriber sends nothing of its own, so a path that goes silent for it alone (a NAT or firewall dropping the
   * idle connection, a proxy that lost its other side) would leave it waiting for messages that never come, while
   * the client's connection, and so readiness, go on. It is asked a PING every command timeout, unless a command is
   * waiting already: unanswered, its connection is closed as the client's would be (socketTimeout, after
   * SILENT_CONNECTION_FACTOR command timeouts), made again, and its channels subscribed again. A silent subscriber is
   * so replaced within (1 + SILENT_CONNECTION_FACTOR) command timeouts (12 s by default), for one PING a command
   * timeout. (TCP keepalive would take minutes at Linux's defaults, and miss a proxy that keeps our side open.)
   * Without a command timeout nothing would bound the PING's wait either, and none is sent.
   */
  private startHeartbeat(subscriber: Redis): void {
    if (this.commandTimeoutMs === undefined) return;
    this.heartbeat = setInterval(() => {
      if (subscriber.status !== 'ready' || subscriber.commandQueue.length > 0) return;
      subscriber.ping().catch(() => undefined);
    }, this.commandTimeoutMs);
    this.heartbeat.unref();
  }
}

/**
 * Whether a command failed because Redis could not be reached (no connection: ioredis fails a command at once while
 * disconnected, or when the connection closes under it; or no answer within the command timeout) rather than because
 * Redis answered with an error (a `ReplyError`: NOPERM, WRONGTYPE, ...), which says something about the command or
 * the configuration instead.
 */
export function isRedisUnreachable(error: unknown): boolean {
  return error instanceof Error && !(error instanceof ReplyError);
}

/** Whether a command failed because Redis did not answer it within the client's command timeout. */
export function isRedisCommandTimeout(error: unknown): boolean {
  return error instanceof Error && !(error instanceof ReplyError) && error.message === COMMAND_TIMED_OUT;
}

/**
 * How many command timeouts a connection with commands waiting may receive nothing before it is closed. Not one: the
 * socket's timer runs before the socket is read, so an event loop held as long (a start on a loaded machine, a long
 * collection) would close a connection whose answers were already there, failing what it held; at one, a start on a
 * loaded CI machine lost its Redis connection so (2 s). Five times the default is 10 s of commands held at most.
 */
const SILENT_CONNECTION_FACTOR = 5;

/** How long a subscriber whose channels Redis did not take on a new connection waits to send their SUBSCRIBE again. */
const RESUBSCRIBE_RETRY_MS = 2_000;

/** ioredis's message for a command unanswered within its `commandTimeout`. */
const COMMAND_TIMED_OUT = 'Command timed out';

const CLIENT_OPTIONS: RedisOptions = {
  lazyConnect: true,
  connectTimeout: CONNECT_TIMEOUT_MS,
  // Commands fail at once while disconnected instead of queueing: health
  // checks and rate limits need an answer, not a wait.
  enableOfflineQueue: false,
  // A command sent when the connection is lost fails then, and is never sent again: Redis may have run it, its
  // answer lost on the way, and a rate-limit charge or INCRBY run twice counts twice. (ioredis would otherwise send
  // it again on the next connection; `autoResendUnfulfilledCommands: false` alone leaves it unanswered for ever.)
  maxRetriesPerRequest: 0,
};

/**
 * The subscriber's commands (SUBSCRIBE, UNSUBSCRIBE, PING) do no harm run twice: one lost with the connection is sent
 * again on the next. Its channels are subscribed again on a new connection by `resubscribe`, not by ioredis
 * (`autoResubscribe`), which tells nobody when Redis has taken them, nor when it refused.
 */
const SUBSCRIBER_OPTIONS: RedisOptions = { maxRetriesPerRequest: 1, autoResubscribe: false };

/**
 * A connection that reconnects forever once it has been ready; before that, `open` decides. Once ready, trouble is
 * logged once per outage rather than once per retry (errors before the first ready are `open`'s).
 *
 * ioredis selects the URL's database on every connection, and when that SELECT fails (a Redis restarted with
 * fewer `databases`) goes on, ready, on db 0, among another deployment's keys. Such a connection is closed at the
 * failed SELECT instead, before it is ready, and retried like a lost one: meanwhile commands fail at once and
 * Redis counts as down (readiness, rate limits), and the reason is logged once, as an error, until it is ready.
 */
function createConnection(
  create: (options: RedisOptions) => Redis,
  /** Which of the store's connections this is, for the log. */
  connectionName: 'client' | 'subscriber',
  logger: Logger,
  authRefused: (refusal: AuthRefusal) => void,
): Redis {
  let readyOnce = false;
  let down = false;
  let selectRefused = false;
  const connection = create({
    retryStrategy: (attempt) => (readyOnce ? Math.min(attempt * 200, 2_000) : null),
    reconnectOnError: isRefusedSelect,
  });
  answerAuthRefusals(connection, authRefused);
  connection.on('close', () => dropSocketTimeout(connection));
  connection.on('error', (error: Error) => {
    if (!readyOnce) return;
    if (isRefusedSelect(error)) {
      if (selectRefused) return;
      selectRefused = true;
      down = true;
      logger.error(
        { err: error, db: connection.options.db, connection: connectionName },
        "Redis refused the URL's database: not using the connection (it would be on db 0); retrying",
      );
      return;
    }
    if (down) return;
    down = true;
    logger.warn({ err: error, connection: connectionName }, 'Redis connection lost; retrying');
  });
  connection.on('ready', () => {
    readyOnce = true;
    selectRefused = false;
    if (!down) return;
    down = false;
    logger.info({ connection: connectionName }, 'Redis connection restored');
  });
  return connection;
}

/**
 * ioredis arms its `socketTimeout` timer when a command is sent and clears it at the next data on that connection
 * only: a connection lost with commands waiting left it armed, and when it fired it closed whichever connection was
 * current then, the healthy one that replaced the lost one among them; and, never unref'd, it kept a closed store's
 * process alive for as long (CI's Jest worker, after a suite whose timeout was 50 minutes, was force-exited).
 */
function dropSocketTimeout(connection: Redis): void {
  const armed = connection as unknown as { socketTimeoutTimer?: NodeJS.Timeout };
  clearTimeout(armed.socketTimeoutTimer);
  armed.socketTimeoutTimer = undefined;
}

/**
 * Refusals of AUTH after which ioredis goes on without authenticating, and what the log says of each: Redis requires
 * no password (before Redis 6, and since), or REDIS_URL names a user and Redis, 5 or older, has none (its AUTH takes
 * a password alone: it refuses two arguments).
 */
const AUTH_REFUSALS = {
  needless_password: {
    reply: /no password is set|without any password configured/,
    warning:
      'REDIS_URL carries a password, but Redis requires none: it refused the password, and the gateway is ' +
      'connected without one',
  },
  user_unknown: {
    reply: /wrong number of arguments for 'auth'/,
    warning:
      'REDIS_URL names a user, but Redis (5 or older, without users) refused AUTH with a user name: the gateway ' +
      'goes on without authenticating; should this Redis require a password, give REDIS_URL the password alone ' +
      '(redis://:password@host)',
  },
} as const;
type AuthRefusal = keyof typeof AUTH_REFUSALS;

/**
 * ioredis sends REDIS_URL's credentials with AUTH at every connect; after one of AUTH_REFUSALS it goes on without
 * them, writing `[WARN] … a password was supplied` or `[ERROR] … wrong number of arguments for 'auth'` to the
 * console, a line outside the JSON log. The connection's AUTH is wrapped so that ioredis sees such a refusal as a
 * success (it goes on just the same) and `refused` says it in the log instead. Any other failure of AUTH reaches
 * ioredis as it was.
 */
function answerAuthRefusals(connection: Redis, refused: (refusal: AuthRefusal) => void): void {
  type Callback = (error?: Error | null, result?: unknown) => void;
  const auth = connection.auth.bind(connection) as (...args: unknown[]) => Promise<unknown>;
  const answered = (...args: unknown[]): Promise<unknown> => {
    const callback = args.at(-1);
    if (typeof callback !== 'function') return auth(...args);
    return auth(...args.slice(0, -1), (error?: Error | null, result?: unknown) => {
      const refusal = error ? authRefusalOf(error) : undefined;
      if (!refusal) return (callback as Callback)(error, result);
      refused(refusal);
      (callback as Callback)(null, 'OK');
    });
  };
  connection.auth = answered as unknown as Redis['auth'];
}

function authRefusalOf(error: Error): AuthRefusal | undefined {
  return (Object.keys(AUTH_REFUSALS) as AuthRefusal[]).find((refusal) =>
    AUTH_REFUSALS[refusal].reply.test(error.message),
  );
}

/** The error of the SELECT ioredis sends on connecting, with the URL's database number: `ERR DB index is out of range`. */
function isRefusedSelect(error: Error): boolean {
  return error instanceof ReplyError && (error as Error & { command?: { name?: string } }).command?.name === 'select';
}

/**
 * Connects and pings. ioredis reports a failed AUTH, SELECT or TLS handshake only as an `error`
 * event (a SELECT that fails would even leave the connection ready, on db 0), and its connect() then
 * rejects with "Connection is closed." at best: the first error seen fails the start, by its message
 * alone (the command's arguments may hold the password), and the connection is closed for good.
 */
async function open(connection: Redis, url: string): Promise<void> {
  let failure: Error | undefined;
  const keep = (error: Error): void => {
    failure ??= error;
  };
  connection.on('error', keep);
  try {
    await connection.connect();
    await connection.ping();
  } catch (error) {
    failure ??= error instanceof Error ? error : new Error(String(error));
  } finally {
    connection.off('error', keep);
  }
  if (!failure) return;
  connection.disconnect();
  const what = failure instanceof ReplyError ? 'refused the connection' : 'did not answer';
  throw new Error(`Redis at ${redactUrl(url)} ${what}: ${failure.message}`);
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

function redactUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}`;
}
