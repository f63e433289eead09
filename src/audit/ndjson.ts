import { once } from 'node:events';
import type { Response } from 'express';

export const NDJSON_CONTENT_TYPE = 'application/x-ndjson';

/**
 * Streams pages of items as NDJSON, one line per item, honouring the
 * socket's back-pressure. The first page is read before the status is sent,
 * so a failure that early is still an ordinary error response; a failure
 * later cuts the stream (no final newline), which the client can tell.
 */
export async function sendNdjson<T>(res: Response, pages: AsyncGenerator<T[]>): Promise<void> {
  let page = await pages.next();
  res.status(200).type(NDJSON_CONTENT_TYPE).setHeader('cache-control', 'no-store');
  try {
    while (!page.done) {
      const chunk = page.value.map((item) => `${JSON.stringify(item)}\n`).join('');
      if (chunk.length > 0 && !res.write(chunk)) await drainedOrClosed(res);
      if (res.destroyed) return;
      page = await pages.next();
    }
    res.end();
  } finally {
    await pages.return(undefined);
  }
}

async function drainedOrClosed(res: Response): Promise<void> {
  const controller = new AbortController();
  try {
    await Promise.race([
      once(res, 'drain', { signal: controller.signal }),
      once(res, 'close', { signal: controller.signal }),
    ]);
  } finally {
    controller.abort();
  }
}
