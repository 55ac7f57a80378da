// A distributed-batch worker process for the tests, on the library API (runWorker from dist/). argv: Redis URL,
// queue name, role; env DELAY (ms per chunk), MAX_STALLS (default 5). Prints "chunk RUN INDEX" as it takes each chunk. Roles:
//   normal       predict every chunk (after a pause of DELAY ms per chunk: the tests need a run that lasts)
//   hold-first   say "hold INDEX" on its first chunk and wait there (the test kills it mid-chunk)
//   die-on=N     SIGKILL itself whenever it takes chunk N (a chunk that keeps killing workers)
const path = require('node:path');
const { runWorker } = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));
const [url, queueName, role] = process.argv.slice(2);
const delay = Number(process.env.DELAY || 0);
let first = true;
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
runWorker({
  queue: url, queueName, workers: 1, lockDuration: 1000, stalledInterval: 300, maxStalledCount: Number(process.env.MAX_STALLS || 5), signal: controller.signal,
  log: (s) => process.stderr.write(s + '\n'),
  onChunk: async ({ run, index }) => {
    process.stdout.write(`chunk ${run} ${index}\n`);
    if (role === 'hold-first' && first) {
      first = false;
      process.stdout.write(`hold ${index}\n`);
      await new Promise((r) => setTimeout(r, 60000));
    }
    if (role.startsWith('die-on=') && index === Number(role.slice(7))) process.kill(process.pid, 'SIGKILL');
    if (delay) await new Promise((r) => setTimeout(r, delay));
  },
}).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`worker failed: ${e.message}\n`);
    process.exit(1);
  },
);
