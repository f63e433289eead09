import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { isProcessAlive } from '../common/process-alive';

/** How often the owner touches its lock, so that one in another container or on another machine is seen alive. */
const HEARTBEAT_MS = 10_000;
/** A lock of a process whose pid cannot be checked from here counts as abandoned once untouched this long. */
export const STALE_AFTER_MS = 60_000;

/** Who holds a lock: enough to tell whether its pid can be checked from another process. */
export interface LockOwner {
  pid: number;
  host: string;
  /** The kernel's boot (`/proc/sys/kernel/random/boot_id`): pids of another boot say nothing about this one. */
  bootId?: string;
  /** `readlink /proc/self/ns/pid`: pids are only comparable within one pid namespace (one container). */
  pidNamespace?: string;
  /** The process's start time in clock ticks after boot (`/proc/<pid>/stat`): tells a reused pid apart. */
  startTime?: string;
  /** This lock, as opposed to another the same pid took: the owner releases only its own. */
  nonce: string;
  startedAt: string;
}

/** Nonces of the locks this process holds now. */
const heldHere = new Set<string>();

/**
 * PGlite has no lock of its own: two processes opening one directory would corrupt it. `<directory>.lock` names
 * its owner (`LockOwner`); a second process is refused while the owner may be alive:
 *
 * - in the same pid namespace of the same boot (one machine or one container), the pid tells: a dead pid, a pid
 *   reused by another process (its start time differs), or our own pid (the writer is gone) is a stale lock;
 * - from another pid namespace or machine (containers sharing a volume: each gateway is PID 1 of its own), the pid
 *   cannot be checked, so the owner touches the file every 10 s and the lock is taken over only once untouched for
 *   60 s: a container restarted after a crash starts within a minute (its restart policy retries), and one still
 *   running is never joined;
 * - the bare pid of an older gateway is checked as before, except that our own pid refuses (in a container the
 *   writer was PID 1 of another one, or of a crashed one: it cannot be told), as does a file it cannot read.
 *
 * Refusals name the lock file and when deleting it is safe. Returns the release, which deletes the file only
 * while it is still this lock. `onLost` is called with the new owner when another process has taken the lock over: it
 * must stop this process without touching the directory again.
 */
export function lockDirectory(directory: string, logger: Logger, onLost: (owner: string) => void): () => void {
  const lockPath = path.join(directory, '..', `${path.basename(directory)}.lock`);
  const me = ownIdentity();
  const text = JSON.stringify(me);
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createWith(lockPath, text, me.nonce)) return holdLock(lockPath, text, me.nonce, logger, onLost);
    let found: string;
    let touchedMs: number;
    try {
      found = fs.readFileSync(lockPath, 'utf8');
      touchedMs = fs.statSync(lockPath).mtimeMs;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw error;
    }
    const refusal = judge(found, touchedMs, me, directory, lockPath);
    if (refusal) throw new Error(refusal);
    // Moved aside before deleting, so that of two processes taking over one stale lock, the second cannot
    // delete the first's fresh one.
    const aside = `${lockPath}.stale-${me.nonce}`;
    try {
      fs.renameSync(lockPath, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const moved = fs.readFileSync(aside, 'utf8');
    if (moved !== found) {
      // Another process took it over between our read and our move: put its lock back (or leave it, if it
      // already made a new one) and judge again.
      try {
        fs.linkSync(aside, lockPath);
      } catch {
        // a newer lock is there
      }
      fs.rmSync(aside, { force: true });
      continue;
    }
    fs.rmSync(aside, { force: true });
    logger.warn({ lock: lockPath, previous: found.trim() }, 'took over the stale lock of the embedded database');
  }
  throw new Error(`could not lock the embedded database in ${directory} (${lockPath})`);
}

/** Creates the lock file with its content in one step (a crash cannot leave it empty); false if it exists. */
function createWith(lockPath: string, text: string, nonce: string): boolean {
  const draft = `${lockPath}.${nonce}`;
  fs.writeFileSync(draft, text, { flag: 'wx' });
  try {
    fs.linkSync(draft, lockPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    fs.rmSync(draft, { force: true });
  }
}

/**
 * Touches the lock every 10 s while it is this process's. Once another process has taken it over (it judged the
 * lock stale: this process was frozen, or its heartbeat could not reach the file for a minute), that process has
 * the directory open, and this one writing to it too would corrupt it: the loss is logged as fatal, naming the
 * new owner, and `onLost` must stop the process at once. A lock file deleted under the owner is made again, so
 * that a second process is still refused.
 */
function holdLock(
  lockPath: string,
  text: string,
  nonce: string,
  logger: Logger,
  onLost: (owner: string) => void,
): () => void {
  heldHere.add(nonce);
  const heartbeat = setInterval(() => {
    let found: string;
    try {
      found = fs.readFileSync(lockPath, 'utf8');
      if (nonceOf(found) === nonce) {
        const now = new Date();
        fs.utimesSync(lockPath, now, now);
        return;
      }
    } catch (error) {
      let failure = error;
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        try {
          // When another process made one first, the next beat finds it.
          if (createWith(lockPath, text, nonce)) {
            logger.warn({ lock: lockPath }, 'the lock of the embedded database was deleted: made again');
          }
          return;
        } catch (creating) {
          failure = creating;
        }
      }
      logger.warn({ err: failure, lock: lockPath }, 'could not refresh the lock of the embedded database');
      return;
    }
    clearInterval(heartbeat);
    heldHere.delete(nonce);
    const owner = describeOwner(found);
    logger.fatal(
      { lock: lockPath, owner },
      'the lock of the embedded database was taken over by another process: stopping at once, without touching ' +
        'the database again',
    );
    onLost(owner);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  return () => {
    clearInterval(heartbeat);
    heldHere.delete(nonce);
    try {
      if (nonceOf(fs.readFileSync(lockPath, 'utf8')) === nonce) fs.rmSync(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  };
}

/** Who holds a lock, for a log line: pid and host (and start), or the file's text when it names no owner. */
function describeOwner(found: string): string {
  const text = found.trim();
  const owner = parseOwner(text);
  if (!owner) return /^\d+$/.test(text) ? `pid ${text}` : `an unreadable lock: ${JSON.stringify(text.slice(0, 200))}`;
  return `pid ${owner.pid} on host ${owner.host}${owner.startedAt ? `, started ${owner.startedAt}` : ''}`;
}

/** Why the lock in `found` must be respected, or undefined when it is stale. */
function judge(
  found: string,
  touchedMs: number,
  me: LockOwner,
  directory: string,
  lockPath: string,
): string | undefined {
  const inUse = `the embedded database in ${directory} is in use by another process`;
  const removal = `If no process uses ${directory}, delete ${lockPath}`;
  const text = found.trim();
  if (/^\d+$/.test(text)) {
    // An older gateway's lock: its pid alone.
    const pid = Number(text);
    if (pid === process.pid) {
      return `${inUse} (pid ${pid}, this process's own pid: a process of another container, or one that crashed). ${removal}`;
    }
    return isProcessAlive(pid) ? `${inUse} (pid ${pid})` : undefined;
  }
  const owner = parseOwner(text);
  if (!owner) return `the embedded database in ${directory} has a lock file this gateway cannot read. ${removal}`;
  if (heldHere.has(owner.nonce)) return `${inUse} (pid ${owner.pid}: this one, which has it open)`;
  if (sameProcessSpace(owner, me)) {
    if (owner.pid === process.pid || !isProcessAlive(owner.pid)) return undefined;
    const startTime = startTimeOf(owner.pid);
    if (owner.startTime !== undefined && startTime !== undefined && startTime !== owner.startTime) return undefined;
    return `${inUse} (pid ${owner.pid})`;
  }
  const ageMs = Math.max(0, Date.now() - touchedMs);
  if (ageMs > STALE_AFTER_MS) return undefined;
  return (
    `${inUse} (pid ${owner.pid} on host ${owner.host}, in another container or on another machine; its lock was ` +
    `refreshed ${Math.round(ageMs / 1000)} s ago, and is taken over once not refreshed for ` +
    `${STALE_AFTER_MS / 1000} s). ${removal}`
  );
}

/** Whether the owner's pid means the same process here: one kernel boot and one pid namespace. */
function sameProcessSpace(owner: LockOwner, me: LockOwner): boolean {
  if (me.bootId === undefined || me.pidNamespace === undefined) {
    // No /proc (macOS): a host name is all there is.
    return owner.bootId === undefined && owner.pidNamespace === undefined && owner.host === me.host;
  }
  return owner.bootId === me.bootId && owner.pidNamespace === me.pidNamespace;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (!Number.isInteger(value.pid) || typeof value.nonce !== 'string' || typeof value.host !== 'string') {
      return undefined;
    }
    return value as LockOwner;
  } catch {
    return undefined;
  }
}

function nonceOf(text: string): string | undefined {
  return parseOwner(text.trim())?.nonce;
}

function ownIdentity(): LockOwner {
  return {
    pid: process.pid,
    host: os.hostname(),
    bootId: readProc(() => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
    pidNamespace: readProc(() => fs.readlinkSync('/proc/self/ns/pid')),
    startTime: startTimeOf(process.pid),
    nonce: randomUUID(),
    startedAt: new Date().toISOString(),
  };
}

/** Field 22 of `/proc/<pid>/stat`, counted after the command name (which may hold spaces and parentheses). */
function startTimeOf(pid: number): string | undefined {
  const stat = readProc(() => fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

function readProc(read: () => string): string | undefined {
  try {
    return read().trim() || undefined;
  } catch {
    return undefined;
  }
}
