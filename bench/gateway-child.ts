import * as http from 'node:http';

/** What the benches share about a gateway they run as a child process. */

/** Polls `/health/ready` every `pollMs` until it answers 200; fails once the child exits or `timeoutMs` passes. */
export async function waitUntilReady(
  url: string,
  exited: Promise<number | null>,
  { timeoutMs, pollMs }: { timeoutMs: number; pollMs: number },
): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) throw new Error('the gateway exited before it was ready (its output is above)');
    const status = await new Promise<number>((resolve) => {
      http
        .get(`${url}/health/ready`, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', () => resolve(0));
    });
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  throw new Error(`the gateway was not ready within ${timeoutMs} ms`);
}
