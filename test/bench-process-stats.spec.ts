import { readFileSync } from 'node:fs';
import { cpuMsBetween, cpuMsOf, cpuMsOfCommand } from '../bench/process-stats';

describe("the bench's CPU readings from /proc", () => {
  it('reads every process of a command, this one among them', () => {
    const command = readFileSync('/proc/self/comm', 'utf8').trim();
    const before = cpuMsOf(process.pid)!;
    const times = cpuMsOfCommand(command);
    const after = cpuMsOf(process.pid)!;
    expect(times?.get(process.pid)).toBeGreaterThanOrEqual(before);
    expect(times?.get(process.pid)).toBeLessThanOrEqual(after);
    expect(cpuMsOfCommand('no-such-command-here')?.size).toBe(0);
  });

  it('counts what each process spent between two readings: a new one from zero, one that exited not at all', () => {
    const before = new Map([
      [10, 5_000],
      [11, 200],
      [12, 9_000],
    ]);
    // 10 spent 30 ms, 11 nothing, 12 exited (its 9 s are not taken from the others), 13 started and spent 40 ms.
    const after = new Map([
      [10, 5_030],
      [11, 200],
      [13, 40],
    ]);
    expect(cpuMsBetween(before, after)).toBe(70);
  });
});
