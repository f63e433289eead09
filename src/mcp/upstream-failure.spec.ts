import { UpstreamError } from '../upstream/upstream-error';
import { upstreamFailureOf } from './upstream-failure';

/** A logger that keeps what it was given, by level. */
function recordingLogger(): { logger: Parameters<typeof upstreamFailureOf>[0]; lines: [string, object, string][] } {
  const lines: [string, object, string][] = [];
  return {
    lines,
    logger: {
      error: (fields, message) => lines.push(['error', fields, message]),
      warn: (fields, message) => lines.push(['warn', fields, message]),
    },
  };
}

describe('upstreamFailureOf', () => {
  it('says what the upstream did when the failure is classified, in one warning', () => {
    const { logger, lines } = recordingLogger();
    const failure = upstreamFailureOf(
      logger,
      'greet',
      new UpstreamError('http_status', 'the upstream answered HTTP 503', 503),
      'req-1',
    );
    expect(failure).toEqual({
      kind: 'http_status',
      message: 'Upstream greet failed: the upstream answered HTTP 503',
      reason: 'the upstream answered HTTP 503',
      data: { server: 'greet', kind: 'http_status' },
    });
    expect(lines).toEqual([
      [
        'warn',
        { server: 'greet', kind: 'http_status', reason: 'the upstream answered HTTP 503' },
        'upstream request failed',
      ],
    ]);
  });

  it("answers an unclassified failure with an error id only, logged once with the error and the request's id", () => {
    const { logger, lines } = recordingLogger();
    const error = new TypeError("Cannot read properties of undefined (reading 'upstreamSessions')");
    const failure = upstreamFailureOf(logger, 'greet', error, 'req-2');
    const errorId = failure.data.errorId;
    expect(errorId).toMatch(/^[0-9a-f-]{36}$/);
    expect(failure).toEqual({
      kind: 'other',
      message: 'Internal error',
      reason: 'internal error',
      data: { server: 'greet', kind: 'other', errorId },
    });
    expect(lines).toEqual([
      ['error', { server: 'greet', err: error, errorId, reqId: 'req-2' }, 'relaying to an upstream failed'],
    ]);
  });
});
