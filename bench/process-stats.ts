import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat on Linux. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU time (user + system) a process has used so far, read from outside it (no change to the gateway needed);
 * undefined where /proc is not there. Resolution is one clock tick (10 ms): read it over seconds, not calls.
 */
export function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the command (which may hold spaces, inside parentheses): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU time so far of each process whose command (`/proc/<pid>/comm`) is `command`, by pid: a local PostgreSQL's
 * backends and helpers. Undefined where /proc is not there. Two readings give the time spent between them with
 * `cpuMsBetween`.
 */
export function cpuMsOfCommand(command: string): Map<number, number> | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return undefined;
  }
  const times = new Map<number, number>();
  for (const pid of pids) {
    let name: string;
    try {
      name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    const ms = name === command ? cpuMsOf(Number(pid)) : undefined;
    if (ms !== undefined) times.set(Number(pid), ms);
  }
  return times;
}

/**
 * The CPU time the processes of two `cpuMsOfCommand` readings spent between them: a process started since counts
 * from zero; one that exited meanwhile took its time with it and counts for nothing (its earlier time is not
 * subtracted from the others').
 */
export function cpuMsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

/** Resident set size of a process in MB (VmRSS), or undefined. */
export function rssMbOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The highest RSS of a process while sampling runs (every `everyMs`); `stop()` returns it. */
export function samplePeakRss(pid: number | undefined, everyMs = 100): { stop: () => number | undefined } {
  let peak: number | undefined;
  const sample = (): void => {
    const rss = rssMbOf(pid);
    if (rss !== undefined && (peak === undefined || rss > peak)) peak = rss;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}
