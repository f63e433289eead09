import * as vm from 'node:vm';
import { collectStartupGarbage } from './gc-tuning';

describe('collectStartupGarbage', () => {
  it('collects, and leaves `gc` exposed to no context made afterwards', () => {
    expect(vm.runInNewContext('typeof gc')).toBe('undefined');
    expect(collectStartupGarbage()).toBeGreaterThanOrEqual(0);
    expect(vm.runInNewContext('typeof gc')).toBe('undefined');
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
  });
});
