// The lock beside a batch output (lib/io/lockfile.ts): a free lock is taken by one process; a stale lock (its owner
// killed) is taken over by exactly one of several processes that try at the same instant; a live owner's lock, in
// another process or in this one, is never taken; a lock from another host is refused with its host named.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { acquireLock } from '../lib/io/lockfile';

const compiled = path.join(__dirname, '..', 'dist', 'io', 'lockfile.js');
const skip = fs.existsSync(compiled) ? false : 'dist/io/lockfile.js is missing: run `npx tsc -p .` first';
const contender = path.join(__dirname, 'helpers', 'lock-contender.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-lock-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('a live owner keeps its lock; released, it can be taken again', async (t) => {
  const file = path.join(dir, 'a.lock');
  const release = await acquireLock(file, 'out is busy');
  const e = await acquireLock(file, 'out is busy').then(() => null, (err: NodeJS.ErrnoException) => err);
  t.equal(e?.code, 'ERR_RNNKIT_LOCKED', 'a second take in the same process is refused');
  t.match(e?.message, new RegExp(`^out is busy \\(pid ${process.pid}; lock `));
  release();
  t.notOk(fs.existsSync(file), 'released: the file is gone');
  const again = await acquireLock(file);
  again();
  t.same(fs.readdirSync(dir), [], 'no temporary file left');
});

t.test('a lock from another host or an old bare-pid lock of a live process is refused; a dead pid is taken over', async (t) => {
  const file = path.join(dir, 'b.lock');
  fs.writeFileSync(file, JSON.stringify({ pid: 1, host: 'elsewhere.example' }));
  const e = await acquireLock(file, 'busy').then(() => null, (err: Error) => err);
  t.match(e?.message, /pid 1 on host elsewhere\.example.*delete the lock file/);
  fs.writeFileSync(file, String(process.pid));
  t.rejects(acquireLock(file, 'busy'), { code: 'ERR_RNNKIT_LOCKED' });
  fs.writeFileSync(file, '999999999');
  const release = await acquireLock(file, 'busy');
  t.match(fs.readFileSync(file, 'utf8'), new RegExp(`"pid":${process.pid}`), 'taken over');
  release();
  // A record of this pid with another start time: the pid was reused, the owner is gone.
  fs.writeFileSync(file, JSON.stringify({ pid: process.pid, host: os.hostname(), start: '1' }));
  const r2 = await acquireLock(file, 'busy');
  r2();
});

t.test('a stale lock is taken over by exactly one of eight processes started at the same instant (5 rounds)', { skip }, async (t) => {
  const file = path.join(dir, 'c.lock');
  let crashed: ReturnType<typeof spawn> | undefined;
  // Plain node: without tap's loaders (NODE_OPTIONS) a contender starts in tens of milliseconds.
  const env = { ...process.env, NODE_OPTIONS: '' };
  for (let round = 0; round < 5; round++) {
    const go = path.join(dir, `go.${round}`);
    const kids = Array.from({ length: 8 }, () => spawn(process.execPath, [contender, compiled, file, go], { stdio: ['ignore', 'pipe', 'inherit'], env }));
    const lines = kids.map((k) => {
      let out = '';
      const said: string[] = [];
      const waiters: (() => void)[] = [];
      k.stdout?.on('data', (c) => {
        out += c;
        for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
          said.push(out.slice(0, i));
          out = out.slice(i + 1);
          waiters.splice(0).forEach((w) => w());
        }
      });
      k.once('exit', () => waiters.splice(0).forEach((w) => w()));
      return async (n: number): Promise<string> => {
        while (said.length < n && k.exitCode === null && k.signalCode === null) await new Promise<void>((r) => waiters.push(r));
        return said[n - 1] ?? `exited ${k.exitCode ?? k.signalCode}`;
      };
    });
    await Promise.all(lines.map((l) => l(1))); // all ready and spinning
    fs.writeFileSync(go, '');
    const said = await Promise.all(lines.map((l) => l(2)));
    // The previous winner was killed before this round: its lock was stale.
    const winners = kids.filter((_, i) => said[i] === 'won');
    t.equal(winners.length, 1, `round ${round}: one winner (${said.join(', ')})`);
    t.ok(said.every((s) => s === 'won' || s === 'lost ERR_RNNKIT_LOCKED'), `round ${round}: the others are refused with ERR_RNNKIT_LOCKED`);
    for (const w of winners) {
      const gone = new Promise((r) => w.once('exit', r));
      w.kill('SIGKILL');
      await gone;
    }
    crashed = winners[0];
  }
  t.ok(crashed, 'rounds ran');
  t.same(fs.readdirSync(dir).filter((f) => f.startsWith('c.lock.')), [], 'no takeover or temporary file left behind');
});
