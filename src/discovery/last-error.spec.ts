import { formatLastError, parseLastError } from './last-error';

describe('last error text', () => {
  it('round-trips kind and message', () => {
    const text = formatLastError({ kind: 'connection_refused', message: 'connection refused: again' });
    expect(text).toBe('connection_refused: connection refused: again');
    expect(parseLastError(text)).toEqual({ kind: 'connection_refused', message: 'connection refused: again' });
  });

  it('reads text without a known kind as other', () => {
    expect(parseLastError('widget: broke')).toEqual({ kind: 'other', message: 'widget: broke' });
    expect(parseLastError('plain')).toEqual({ kind: 'other', message: 'plain' });
  });
});
