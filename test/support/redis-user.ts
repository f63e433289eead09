import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { REDIS_URL } from './services';

/** A Redis user of its own on the test Redis, and the REDIS_URL that logs in as it. */
export interface RedisUser {
  url: string;
  remove(): Promise<void>;
}

/**
 * A user that may run every Redis command but `denied` (a Redis ACL), for a gateway whose Redis refuses one command
 * a real way: Redis answers it NOPERM.
 */
export async function redisUserWithout(denied: string): Promise<RedisUser> {
  const name = `denied-${denied}-${randomUUID()}`;
  const password = `pw-${randomUUID()}`;
  const admin = new Redis(REDIS_URL);
  await admin.call('ACL', 'SETUSER', name, 'on', `>${password}`, '~*', '&*', '+@all', `-${denied}`);
  const url = new URL(REDIS_URL);
  url.username = name;
  url.password = password;
  return {
    url: url.toString(),
    remove: async () => {
      await admin.call('ACL', 'DELUSER', name);
      await admin.quit();
    },
  };
}
