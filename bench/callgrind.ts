import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

/** Instructions a gateway executed per call: on its main (JavaScript) thread, and on all its threads together. */
export interface InstructionsPerCall {
  mainThread: number;
  allThreads: number;
}

/**
 * The gateway under valgrind's callgrind (`npm run bench -- --callgrind`), which counts the instructions it executes
 * instead of timing them. On this project's VMs CPU time per call varies by 10–20% from one run to the next, more
 * than most single changes to the hot path move it; the main thread's instruction count of the same code repeated
 * within about 1% (626k and 618k per call, 543k and 547k). The count over all threads varies more (up to ~15%):
 * the others are V8's optimizing compiler, whose work depends on when functions get hot, its garbage-collection
 * helpers and libuv's pool. Instructions are not time (a cache miss costs no more than an add) and valgrind runs
 * everything ~50 times slower, so the JIT must be warmed up first: counting is off until `instrument(true)`, and
 * the figures are those between `zero()` and `counts()`.
 *
 * valgrind is a Debian package (`apt-get install valgrind`); `callgrind_control` comes with it.
 */
export class Callgrind {
  constructor(
    /** Where callgrind writes its profile (read with `callgrind_annotate`) and its control pipes. */
    readonly directory: string,
    /**
     * callgrind_control finds a process by its pipes, whose names include the user and host names valgrind read from
     * the gateway's environment: it runs with the same ones.
     */
    private readonly gatewayEnv: Record<string, string>,
  ) {}

  /** The command line that runs the gateway's `node` under callgrind, counting nothing yet. */
  wrapper(): string[] {
    return [
      'valgrind',
      '--tool=callgrind',
      '--instr-atstart=no',
      `--vgdb-prefix=${path.join(this.directory, 'vgdb')}`,
      `--callgrind-out-file=${path.join(this.directory, 'callgrind.%p.out')}`,
    ];
  }

  instrument(pid: number, on: boolean): void {
    this.control(pid, `--instr=${on ? 'on' : 'off'}`);
  }

  zero(pid: number): void {
    this.control(pid, '--zero');
  }

  /** Instructions counted since `zero()`, per thread (callgrind_control prints `Th <n>  <count>` lines). */
  counts(pid: number): { main: number; all: number } {
    const threads = [...this.control(pid, '-e').matchAll(/^\s*Th\s+(\d+)\s+([\d,]+)/gm)].map((match) => ({
      thread: Number(match[1]),
      count: Number(match[2]!.replaceAll(',', '')),
    }));
    if (threads.length === 0) throw new Error('callgrind_control reported no counts');
    return {
      main: threads.find((entry) => entry.thread === 1)?.count ?? 0,
      all: threads.reduce((sum, entry) => sum + entry.count, 0),
    };
  }

  private control(pid: number, ...args: string[]): string {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
    for (const name of ['LOGNAME', 'USER', 'HOST', 'HOSTNAME']) {
      const value = this.gatewayEnv[name];
      if (value !== undefined) env[name] = value;
    }
    return execFileSync(
      'callgrind_control',
      [`--vgdb-prefix=${path.join(this.directory, 'vgdb')}`, ...args, String(pid)],
      { env, encoding: 'utf8' },
    );
  }
}
