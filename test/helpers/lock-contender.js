// A process that tries to take a lock (argv: lockfile module, lock file, go file): it says 'ready', spins until the
// go file exists, tries, prints 'won' or 'lost <code>', and, when it won, holds the lock until it is killed (the test
// kills it with SIGKILL: a crash that leaves a stale lock for the next round).
const fs = require('node:fs');
const { acquireLock } = require(process.argv[2]);
const [file, go] = process.argv.slice(3);
process.stdout.write('ready\n');
// Spinning (rather than sleeping) keeps every contender running when the go comes, so their system calls interleave
// and the scheduler preempts them at arbitrary points.
while (!fs.existsSync(go));
(async () => {
  try {
    await acquireLock(file, 'the output is being written');
    process.stdout.write('won\n');
    setInterval(() => undefined, 1000);
  } catch (e) {
    process.stdout.write(`lost ${e.code}\n`);
  }
})();
