import { CallSignal, timeoutError } from './call-signal';

describe('CallSignal', () => {
  afterEach(() => jest.useRealTimers());

  it('aborts once, with the first reason, and throws it', () => {
    const signal = new CallSignal();
    const heard = jest.fn();
    signal.on('abort', heard);
    expect(() => signal.throwIfAborted()).not.toThrow();
    const first = new Error('the client closed the connection');
    signal.abort(first);
    signal.abort(new Error('later'));
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(first);
    expect(heard).toHaveBeenCalledTimes(1);
    expect(() => signal.throwIfAborted()).toThrow(first);
  });

  it('aborts with a TimeoutError when its time runs out', () => {
    jest.useFakeTimers();
    const signal = new CallSignal(undefined, 1_000);
    jest.advanceTimersByTime(999);
    expect(signal.aborted).toBe(false);
    jest.advanceTimersByTime(1);
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).name).toBe('TimeoutError');
    expect(timeoutError().name).toBe('TimeoutError');
  });

  it.each([
    ['a CallSignal', () => new CallSignal()],
    ['an AbortSignal', () => new AbortController()],
  ])('follows %s as parent, and one aborted already', (_name, makeParent) => {
    const parent = makeParent();
    const child = new CallSignal(parent instanceof CallSignal ? parent : parent.signal);
    const reason = new Error('cancelled by the client');
    parent.abort(reason);
    expect(child.aborted).toBe(true);
    expect(child.reason).toBe(reason);
    const late = new CallSignal(parent instanceof CallSignal ? parent : parent.signal);
    expect(late.aborted).toBe(true);
    expect(late.reason).toBe(reason);
  });

  it('disposed with nothing listening, lets go of its timer and its parent at once', () => {
    jest.useFakeTimers();
    const parent = new CallSignal();
    const signal = new CallSignal(parent, 1_000);
    expect(parent.listenerCount('abort')).toBe(1);
    signal.dispose();
    expect(parent.listenerCount('abort')).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    parent.abort(new Error('gone'));
    jest.advanceTimersByTime(2_000);
    expect(signal.aborted).toBe(false);
  });

  it('disposed while something still listens, stays bounded until that lets go, then releases both', () => {
    jest.useFakeTimers();
    const parent = new CallSignal();
    const signal = new CallSignal(parent, 1_000);
    // Undici reading the rest of an answered stream.
    const reader = jest.fn();
    signal.once('abort', reader);
    signal.dispose();
    expect(parent.listenerCount('abort')).toBe(1);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(1_000);
    expect(reader).toHaveBeenCalledTimes(1);
    expect(parent.listenerCount('abort')).toBe(0);

    const other = new CallSignal(parent, 1_000);
    const listener = jest.fn();
    other.on('abort', listener);
    other.dispose();
    other.off('abort', listener);
    expect(parent.listenerCount('abort')).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(2_000);
    expect(listener).not.toHaveBeenCalled();
    expect(other.aborted).toBe(false);
  });
});
