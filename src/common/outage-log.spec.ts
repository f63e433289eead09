import { OutageLog } from './outage-log';

describe('OutageLog', () => {
  it('logs the first failure of a run and the success that ends it, once each', () => {
    const logger = { warn: jest.fn(), info: jest.fn() };
    const log = new OutageLog(logger, 'reads again');
    log.succeeded();
    expect(logger.info).not.toHaveBeenCalled();
    const error = new Error('away');
    for (let i = 0; i < 3; i++) log.failed(error, 'read failed', { attempt: i });
    expect(logger.warn.mock.calls).toEqual([[{ err: error, attempt: 0 }, 'read failed']]);
    log.succeeded({ behind: 2 });
    log.succeeded({ behind: 0 });
    expect(logger.info.mock.calls).toEqual([[{ behind: 2 }, 'reads again']]);
    log.failed(error, 'read failed');
    expect(logger.warn).toHaveBeenCalledTimes(2);
  });
});
