// An exclusive lock file beside an output, so two runs never write the same file, and a crashed run's lock is taken
// over by exactly one of the runs started after it.
//
// Taking a free lock is one exclusive create (link of a private file, which fails if the name exists). Taking over a
// stale lock is a judge-then-replace, so it runs under a second, short-lived lock (`<lock>.takeover`, also an
// exclusive create): its holder reads the lock again, and only if that owner is dead renames its own file over it.
// Nothing else ever removes or replaces a lock but its live owner, so two runs started together after a crash cannot
// both win: every other contender either fails the exclusive create or, holding the takeover lock later, finds a
// live owner.
//
// "Dead" is judged on this host only: the lock records host name, boot id, pid and the process's start time (Linux
// /proc), so a pid reused by another process after a reboot or a wrap-around is not mistaken for the owner. A lock
// written on another host is never taken over: the error says which host and pid hold it.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';

interface Owner {
  pid: number;
  host: string;
  boot?: string;
  start?: string;
}

/** Thrown when another live process holds the lock (err.code 'ERR_RNNKIT_LOCKED'). */
export interface LockedError extends Error {
  code: 'ERR_RNNKIT_LOCKED';
  owner: Owner;
}

function readProc(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

const bootId = (): string | undefined => readProc('/proc/sys/kernel/random/boot_id')?.trim();

/** A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), when the system has /proc. */
function startTime(pid: number): string | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

function me(): Owner {
  return { pid: process.pid, host: os.hostname(), boot: bootId(), start: startTime(process.pid) };
}

/** The owner a lock file names: our JSON record, or a bare pid (older lock files), taken as this host's. */
function parseOwner(text: string): Owner | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { pid: Number(t), host: os.hostname() };
  try {
    const o = JSON.parse(t) as Partial<Owner>;
    if (Number.isInteger(o.pid) && (o.pid as number) > 0 && typeof o.host === 'string') return o as Owner;
  } catch {
    // fall through
  }
  return undefined;
}

/** 'alive', 'dead', or 'unknown' (another host: never taken over). */
function ownerState(o: Owner): 'alive' | 'dead' | 'unknown' {
  if (o.host !== os.hostname()) return 'unknown';
  const boot = bootId();
  if (o.boot && boot && o.boot !== boot) return 'dead';
  try {
    process.kill(o.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return 'dead';
  }
  if (o.start) {
    const now = startTime(o.pid);
    if (now !== undefined && now !== o.start) return 'dead'; // the pid now belongs to another process
  }
  return 'alive';
}

function lockedError(file: string, what: string, owner: Owner): LockedError {
  const host = owner.host === os.hostname() ? '' : ` on host ${owner.host}`;
  const e = new Error(`${what} (pid ${owner.pid}${host}; lock ${file})` +
    (host ? `; if that run is gone, delete the lock file` : '')) as LockedError;
  e.code = 'ERR_RNNKIT_LOCKED';
  e.owner = owner;
  return e;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The lock's owner and inode, or undefined when there is no lock file. An unreadable record counts as a dead owner. */
function inspect(file: string): { owner: Owner | undefined; ino: number } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const ino = fs.fstatSync(fd).ino;
    const buf = Buffer.alloc(4096);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return { owner: parseOwner(buf.subarray(0, n).toString('utf8')), ino };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Take the lock `file` for this process. Resolves to a release function. Rejects with ERR_RNNKIT_LOCKED when a live
 * process holds it; `held` starts that error's message (the owner's pid and the lock file follow).
 */
export async function acquireLock(file: string, held = `${file} is held by another process`): Promise<() => void> {
  const record = JSON.stringify(me()) + '\n';
  const mine = `${file}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
  fs.writeFileSync(mine, record, { flag: 'wx' });
  const release = (): void => {
    // Only ever removes our own lock: nobody replaces a live owner's.
    const now = inspect(file);
    if (now && now.owner?.pid === process.pid && now.owner.start === me().start) fs.rmSync(file, { force: true });
  };
  try {
    for (let attempt = 0; attempt < 500; attempt++) {
      try {
        fs.linkSync(mine, file); // exclusive: EEXIST when someone holds (or held) the lock
        return release;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const seen = inspect(file);
      if (!seen) continue; // released in between: try again
      if (seen.owner) {
        const state = ownerState(seen.owner);
        if (state !== 'dead') throw lockedError(file, held, seen.owner);
      }
      // Stale: take it over under the takeover lock.
      const gate = await acquireGate(`${file}.takeover`);
      if (!gate) {
        await sleep(5 + Math.random() * 10);
        continue;
      }
      try {
        const again = inspect(file);
        if (!again) continue; // gone: the exclusive create decides
        if (again.owner && ownerState(again.owner) !== 'dead') throw lockedError(file, held, again.owner);
        fs.renameSync(mine, file);
        return release;
      } finally {
        gate();
      }
    }
    throw new Error(`cannot take the lock ${file}: too much contention`);
  } finally {
    fs.rmSync(mine, { force: true });
  }
}

/**
 * The takeover lock: an exclusive create, held for a few system calls. Undefined when another live process holds it
 * (the caller retries). A holder that died within those calls leaves it behind: it is moved aside to a private name,
 * and put back if what was moved turns out to be another, live holder's.
 */
async function acquireGate(gate: string): Promise<(() => void) | undefined> {
  try {
    fs.writeFileSync(gate, JSON.stringify(me()) + '\n', { flag: 'wx' });
    return () => fs.rmSync(gate, { force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const seen = inspect(gate);
  if (!seen || !seen.owner || ownerState(seen.owner) !== 'dead') {
    // Held (or being written this instant: an empty record). Give a record that stays unreadable a moment, then
    // treat it as left by a crash.
    if (seen && !seen.owner) {
      const age = Date.now() - (fs.statSync(gate, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age < 2000) return undefined;
    } else return undefined;
  }
  const aside = `${gate}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.stale`;
  try {
    fs.renameSync(gate, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if (fs.statSync(aside).ino !== seen.ino) {
    try {
      fs.linkSync(aside, gate); // a live holder's: put it back
    } catch {
      // the name was taken in between; the live holder finishes within a few system calls either way
    }
  }
  fs.rmSync(aside, { force: true });
  return undefined;
}
