import { UpstreamAnswer } from './upstream-answer';

/** An answer whose headers are in (HTTP 200, SSE), and how often undici was asked to resume its socket. */
function answered(): { answer: UpstreamAnswer; resumes: () => number } {
  const answer = new UpstreamAnswer(undefined);
  let resumes = 0;
  answer.onHeaders(200, [Buffer.from('content-type'), Buffer.from('text/event-stream')], () => resumes++);
  return { answer, resumes: () => resumes };
}

/** For reader callbacks that must not be called. */
function unexpected(): never {
  throw new Error('not expected here');
}

describe('UpstreamAnswer', () => {
  it('keeps the socket read for a short body that arrives before its reader, and hands it over in order', () => {
    const { answer } = answered();
    expect(answer.onData(Buffer.from('data: 1\n\n'))).toBe(true);
    expect(answer.onData(Buffer.from('data: 2\n\n'))).toBe(true);
    answer.onComplete();
    const seen: string[] = [];
    let ended = false;
    answer.read({ data: (chunk) => seen.push(chunk.toString()), end: () => (ended = true), error: unexpected });
    expect(seen).toEqual(['data: 1\n\n', 'data: 2\n\n']);
    expect(ended).toBe(true);
  });

  it('holds the socket once more than 64 KB wait for the reader, and lets it go on once all is handed over', () => {
    const { answer, resumes } = answered();
    expect(answer.onData(Buffer.alloc(40 * 1024, 'a'))).toBe(true);
    expect(answer.onData(Buffer.alloc(40 * 1024, 'b'))).toBe(false);
    let bytes = 0;
    answer.read({ data: (chunk) => (bytes += chunk.length), end: unexpected, error: unexpected });
    expect(bytes).toBe(80 * 1024);
    expect(resumes()).toBe(1);
  });

  it('holds the socket while its reader pauses', () => {
    const { answer, resumes } = answered();
    const seen: string[] = [];
    answer.read({ data: (chunk) => seen.push(chunk.toString()), end: unexpected, error: unexpected });
    answer.pause();
    expect(answer.onData(Buffer.from('held'))).toBe(false);
    expect(seen).toEqual([]);
    answer.resume();
    expect(seen).toEqual(['held']);
    expect(resumes()).toBeGreaterThan(0);
  });
});
