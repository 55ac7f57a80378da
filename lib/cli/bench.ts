// `rnnkit bench`: a short check of how fast this machine runs rnnkit (the figures come from speed-check.ts).
import { parseArgs } from 'node:util';

export const help = `usage: rnnkit bench [options]

A short check of how fast rnnkit runs on this machine: a training step, a batched inference call and one awaited
stream step of a character model (2-layer LSTM of 256 units, 65 symbols, dense head), a few seconds in all.
Threads: RNNKIT_THREADS (default: the machine's cores); GEMM: RNNKIT_BLAS (default: the built-in GEMM where its
AVX-512 or AVX2 kernels run, else a system BLAS when installed).
The comparison with other libraries (PyTorch, ONNX Runtime, TF.js) is the project's benchmark harness, run from a
clone of the repository with \`npm run bench\`.

options:
  --json               print one JSON object instead of the table
  --tiny               small shapes, a few calls each (a smoke run)
  --seconds S          time each figure for at least S seconds (default 1)
`;

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help);
    return 0;
  }
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, tiny: { type: 'boolean' }, seconds: { type: 'string' } },
    strict: true,
  });
  const tiny = values.tiny ?? false;
  const seconds = values.seconds !== undefined ? Number(values.seconds) : tiny ? 0 : 1;
  if (!(seconds >= 0 && seconds <= 600)) {
    process.stderr.write('rnnkit bench: --seconds must be a number in [0, 600]\n');
    return 2;
  }
  const { speedCheck, formatSpeedCheck } = await import('./speed-check');
  const r = await speedCheck({ tiny, seconds });
  process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : formatSpeedCheck(r));
  return 0;
}
