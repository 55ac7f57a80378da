// Files as a hostile or careless user hands them over: FIFOs and devices (refused before a byte is read, never a hang
// or an unbounded read), folders, missing files, files of another format, bytes after the last tensor; and saves
// that run at the same time or are killed in the middle. The command line reports such errors on one coded line.
// The CLI and the killed child load the compiled package from dist/ (run `npx tsc -p .` first).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as rk from '../lib/index';
import { fromTorch } from '../lib/io/interop/torch';
import { fromTfjs } from '../lib/io/interop/tfjs';
import { parseSafetensors, serializeSafetensors } from '../lib/io/safetensors';
import { checkError } from './helpers/expect-error';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const distBuilt = fs.existsSync(path.join(root, 'dist', 'io', 'files.js'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-files-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const tiny = (seed: number) =>
  rk.sequential({ vocabSize: 5, seed, layers: [rk.layers.gru({ units: 4, returnSequences: true }), rk.layers.dense({ units: 5, activation: 'softmax' })] });

/** The error of a Promise that must settle within `ms` (a read that blocks on a FIFO never does). */
async function settleError(p: Promise<unknown>, ms = 5000): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise((resolve) => {
    timer = setTimeout(() => resolve(new Error(`still pending after ${ms} ms (a blocked read)`)), ms);
  });
  try {
    return await Promise.race([p.then(() => new Error('resolved instead of failing'), (e) => e), hang]);
  } finally {
    clearTimeout(timer);
  }
}

const haveMkfifo = spawnSync('mkfifo', ['--version']).status === 0;

t.test('FIFOs and devices are refused before anything is read', { skip: haveMkfifo ? false : 'no mkfifo' }, async (t) => {
  const fifo = path.join(dir, 'pipe.safetensors');
  spawnSync('mkfifo', [fifo]);
  const spec = { cell: 'lstm' as const, rnnPrefix: 'rnn.' };
  for (const [label, call] of [
    ['load', () => rk.load(fifo)],
    ['fromTorch', () => fromTorch(fifo, spec)],
    ['fromTfjs', () => fromTfjs(fifo)],
  ] as const)
    checkError(t, await settleError(call()), 'ERR_RNNKIT_FILE', /is a FIFO .*expected a regular file/, `${label} on a FIFO`);

  // A model.json whose weight file is a FIFO.
  const tfDir = path.join(dir, 'tfjs');
  fs.mkdirSync(tfDir);
  fs.writeFileSync(path.join(tfDir, 'model.json'), JSON.stringify({
    modelTopology: { class_name: 'Sequential', config: { layers: [] } },
    weightsManifest: [{ paths: ['w.bin'], weights: [] }],
  }));
  spawnSync('mkfifo', [path.join(tfDir, 'w.bin')]);
  checkError(t, await settleError(fromTfjs(path.join(tfDir, 'model.json'))), 'ERR_RNNKIT_FILE', /weight file .*w\.bin is a FIFO/, 'a weight file that is a FIFO');
});

t.test('/dev/zero and other devices are refused at once, not read without end', { skip: fs.existsSync('/dev/zero') ? false : 'no /dev/zero' }, async (t) => {
  const before = process.memoryUsage().rss;
  checkError(t, await settleError(rk.load('/dev/zero')), 'ERR_RNNKIT_FILE', /\/dev\/zero is a character device/, 'load');
  checkError(t, await settleError(fromTorch('/dev/zero', { cell: 'gru', rnnPrefix: '' })), 'ERR_RNNKIT_FILE', /character device/, 'fromTorch');
  checkError(t, await settleError(fromTfjs('/dev/zero')), 'ERR_RNNKIT_FILE', /character device/, 'fromTfjs');
  t.ok(process.memoryUsage().rss - before < 256 * 2 ** 20, 'no large allocation');
});

t.test('a model folder loads as the CLI reads it; missing paths and other formats say what they are', async (t) => {
  const m = tiny(1);
  const folder = path.join(dir, 'model-folder');
  fs.mkdirSync(folder);
  await m.save(path.join(folder, 'model.safetensors'));
  const loaded = await rk.load(folder);
  t.same(loaded.getWeights(), m.getWeights(), 'load(folder) reads folder/model.safetensors');
  loaded.dispose();
  const byUrl = await rk.load(pathToFileURL(folder));
  t.same(byUrl.getWeights(), m.getWeights(), 'a file: URL of the folder');
  byUrl.dispose();
  m.dispose();

  const empty = path.join(dir, 'empty-folder');
  fs.mkdirSync(empty);
  checkError(t, await settleError(rk.load(empty)), 'ERR_RNNKIT_FILE', /empty-folder is a folder without a model\.safetensors/, 'a folder without a model');
  checkError(t, await settleError(rk.load(path.join(dir, 'nothere.safetensors'))), 'ERR_RNNKIT_FILE', /nothere\.safetensors does not exist/, 'a missing file');
  checkError(t, await settleError(rk.load(42 as never)), 'ERR_RNNKIT_TYPE', /expected a file path/, 'not a path');

  const json = path.join(dir, 'model.json');
  fs.writeFileSync(json, JSON.stringify({ modelTopology: { class_name: 'Sequential' }, weightsManifest: [] }));
  const err = await settleError(rk.load(json));
  checkError(t, err, 'ERR_RNNKIT_FORMAT', /not a safetensors file.*looks like JSON/, 'a JSON file');
  t.notMatch((err as Error).message, /e\+18/, 'no absurd header length in scientific notation');
  const zip = path.join(dir, 'model.pt');
  fs.writeFileSync(zip, Buffer.concat([Buffer.from([0x50, 0x4b, 3, 4]), Buffer.alloc(200, 7)]));
  checkError(t, await settleError(rk.load(zip)), 'ERR_RNNKIT_FORMAT', /not a safetensors file.*zip archive/, 'a PyTorch .pt (zip) file');
});

t.test('the reader refuses bytes after the last tensor and gaps between tensors', async (t) => {
  const m = tiny(2);
  const file = path.join(dir, 'trailing.safetensors');
  await m.save(file);
  const good = fs.readFileSync(file);
  fs.writeFileSync(file, Buffer.concat([good, Buffer.from('tail')]));
  checkError(t, await settleError(rk.load(file)), 'ERR_RNNKIT_FORMAT', /4 bytes after the last tensor's data/, 'trailing bytes');
  const gap = serializeSafetensors([{ name: 'a', shape: [1], data: new Float32Array([1]) }]);
  // Move 'a' four bytes on, leaving a hole at the start of the data section.
  const header = JSON.stringify({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const holed = Buffer.concat([len, Buffer.from(header), Buffer.alloc(8)]);
  t.throws(() => parseSafetensors(holed), { code: 'ERR_RNNKIT_FORMAT', message: /4 bytes that no tensor owns, before tensor 'a'/ });
  t.equal(parseSafetensors(gap).tensors.size, 1, 'the serializer writes no gap');
  m.dispose();
});

t.test('saves to one path at the same time: each completes, the file is one of them whole', async (t) => {
  const a = tiny(3);
  const b = rk.sequential({ vocabSize: 5, seed: 4, layers: [rk.layers.lstm({ units: 64, returnSequences: true }), rk.layers.dense({ units: 5 })] });
  const file = path.join(dir, 'race.safetensors');
  for (let round = 0; round < 20; round++) {
    const results = await Promise.allSettled([a.save(file), b.save(file), a.save(file), b.save(file)]);
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    if (failed.length) {
      t.fail(`round ${round}: ${failed.map((f) => String(f.reason)).join('; ')}`);
      break;
    }
    const back = await rk.load(file);
    const json = JSON.stringify(back.toJSON());
    t.ok(json === JSON.stringify(a.toJSON()) || json === JSON.stringify(b.toJSON()), `round ${round}: a whole model`);
    back.dispose();
  }
  t.same(fs.readdirSync(dir).filter((f) => f.includes('race') && f !== 'race.safetensors'), [], 'no temporary file left');
  a.dispose();
  b.dispose();
});

t.test('a process killed during a save leaves a temporary file that the next save removes', { skip: distBuilt ? false : 'dist/ is not built' }, async (t) => {
  const folder = path.join(dir, 'killed');
  fs.mkdirSync(folder);
  const file = path.join(folder, 'checkpoint.safetensors');
  const temps = () => fs.readdirSync(folder).filter((f) => f !== 'checkpoint.safetensors');
  // A child that saves a 16 MB model over and over; killed with SIGKILL as soon as one of its temporary files exists.
  const script = `
    const rk = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
    const m = rk.sequential({ inputSize: 512, seed: 1, layers: [rk.layers.lstm({ units: 1024, returnSequences: true })] });
    (async () => { for (;;) await m.save(${JSON.stringify(file)}); })();`;
  let caught: string[] = [];
  for (let attempt = 0; attempt < 5 && caught.length === 0; attempt++) {
    const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline && caught.length === 0) {
      await new Promise((r) => setTimeout(r, 1));
      caught = temps();
    }
    child.kill('SIGKILL');
    await exited;
    caught = temps();
  }
  if (caught.length === 0) {
    t.fail('the child was never caught with a temporary file');
    return;
  }
  t.match(caught[0], /^\.checkpoint\.safetensors\.\d+\.[0-9a-z]+-[0-9a-f]{8}\.rnnkit-tmp$/, 'a temporary file named after the target and its process');
  const other = path.join(folder, '.checkpoint.safetensors.notours.rnnkit-tmp');
  fs.writeFileSync(other, 'x');
  const m = tiny(5);
  await m.save(file);
  t.same(temps(), ['.checkpoint.safetensors.notours.rnnkit-tmp'], "the dead writer's temporary file is gone; a file not of our naming is left alone");
  const back = await rk.load(file);
  t.same(back.getWeights(), m.getWeights(), 'the new save is whole');
  back.dispose();
  m.dispose();
});

t.test('the CLI reports file errors on one coded line, without a stack trace', { skip: distBuilt ? false : 'dist/ is not built' }, async (t) => {
  for (const [label, args, message] of [
    ['sample nothere', ['sample', path.join(dir, 'nothere')], /^rnnkit: model file .*nothere does not exist \(ERR_RNNKIT_FILE\)\n$/],
    ['train --data nope.txt', ['train', '--data', path.join(dir, 'nope.txt'), '--out', path.join(dir, 'out'), '--quiet'], /^rnnkit: training text .*nope\.txt does not exist \(ERR_RNNKIT_FILE\)\n$/],
    ['train --data /dev/zero', ['train', '--data', '/dev/zero', '--out', path.join(dir, 'out'), '--quiet'], /^rnnkit: training text \/dev\/zero is a character device; expected a regular file \(ERR_RNNKIT_FILE\)\n$/],
    ['sample on a JSON file', ['sample', path.join(dir, 'model.json')], /^rnnkit: safetensors: not a safetensors file.*\(ERR_RNNKIT_FORMAT\)\n$/],
  ] as const) {
    if (label === 'sample on a JSON file') fs.writeFileSync(path.join(dir, 'model.json'), '{"a": 1}');
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60000 });
    t.equal(r.status, 1, `${label}: exit status 1`);
    t.match(r.stderr, message, `${label}: one line naming the file and the code`);
    t.notMatch(r.stderr, /\n\s+at /, `${label}: no stack trace`);
  }
});

/** A model file whose description is replaced by `model`, with the tensors of `source`'s file. */
function withDescription(source: Buffer, model: unknown): Buffer {
  const parsed = parseSafetensors(source);
  const tensors = [...parsed.tensors.values()];
  return serializeSafetensors(tensors, { ...parsed.metadata, model: JSON.stringify(model) });
}

t.test('a small file that describes a huge model is refused before anything is built', async (t) => {
  const m = rk.sequential({ inputSize: 1024, seed: 1, layers: [rk.layers.dense({ units: 16 })] });
  const file = path.join(dir, 'small.safetensors');
  await m.save(file);
  const small = fs.readFileSync(file);
  m.dispose();
  t.ok(small.length < 100_000, `a ${small.length}-byte file`);
  const huge = { inputSize: 1024, layers: Array.from({ length: 300 }, () => ({ kind: 'dense', units: 1024 })) };
  const before = process.memoryUsage().rss;
  checkError(t, await settleError(rk.load(withDescription(small, huge))), 'ERR_RNNKIT_FORMAT',
    /tensor 'dense_1\.weight' has shape \[16,1024\], the model description declares \[1024,1024\]/, '300 dense layers of 1024 units');
  const grown = process.memoryUsage().rss - before;
  t.ok(grown < 64 * 2 ** 20, `memory grew by ${(grown / 2 ** 20).toFixed(1)} MiB, not by the 1.2 GB the description asks for`);

  // The first layer matches the file; the rest does not exist.
  const firstMatches = { inputSize: 1024, layers: [{ kind: 'dense', units: 16 }, ...Array.from({ length: 300 }, () => ({ kind: 'dense', units: 1024 }))] };
  checkError(t, await settleError(rk.load(withDescription(small, firstMatches))), 'ERR_RNNKIT_FORMAT', /declares a tensor 'dense_2\.weight' \[1024,16\] that the file does not have/, 'only the first layer in the file');
  const wrongShape = { inputSize: 1024, layers: [{ kind: 'dense', units: 17 }] };
  checkError(t, await settleError(rk.load(withDescription(small, wrongShape))), 'ERR_RNNKIT_FORMAT', /'dense_1\.weight' has shape \[16,1024\], the model description declares \[17,1024\]/, 'a shape that differs');
  const extra = serializeSafetensors([...parseSafetensors(small).tensors.values(), { name: 'smuggled', shape: [2], data: new Float32Array(2) }], parseSafetensors(small).metadata);
  checkError(t, await settleError(rk.load(extra)), 'ERR_RNNKIT_FORMAT', /a tensor 'smuggled' that the model description does not declare/, 'a tensor the description does not declare');

  // Caps reached while the parameters are only counted.
  const manyLayers = { inputSize: 4, layers: Array.from({ length: 5000 }, () => ({ kind: 'dense', units: 4 })) };
  checkError(t, await settleError(rk.load(withDescription(small, manyLayers))), 'ERR_RNNKIT_FORMAT', /at most 4096 layers, got 5000/, '5000 layers');
  const tooMany = { inputSize: 1024, layers: Array.from({ length: 3 }, () => ({ kind: 'dense', units: 1 << 20 })).flatMap((l) => [l, { kind: 'dense', units: 1024 }]) };
  checkError(t, await settleError(rk.load(withDescription(small, tooMany))), 'ERR_RNNKIT_FORMAT', /more than 2147483648 parameters/, 'over 2^31 parameters');
});

t.test('writeFileAtomicSync (the training log): whole content, stale temporaries of dead writers removed', async (t) => {
  const { writeFileAtomicSync } = await import('../lib/io/files');
  const folder = path.join(dir, 'log');
  fs.mkdirSync(folder);
  const file = path.join(folder, 'log.json');
  // A pid above Linux's maximum (2^22) never runs. This process's own temporary files may be another thread's write
  // in progress: only a day-old one is removed.
  const dead = path.join(folder, '.log.json.999999999.1-deadbeef.rnnkit-tmp');
  const ownStale = path.join(folder, `.log.json.${process.pid}.zz-0badf00d.rnnkit-tmp`);
  const otherTarget = path.join(folder, '.other.json.999999999.1-deadbeef.rnnkit-tmp');
  const ownFresh = path.join(folder, `.log.json.${process.pid}.zy-0badf00e.rnnkit-tmp`);
  for (const f of [dead, ownStale, otherTarget, ownFresh]) fs.writeFileSync(f, '[{"step": 1, "lo');
  const twoDaysAgo = (Date.now() - 48 * 3600 * 1000) / 1000;
  fs.utimesSync(ownStale, twoDaysAgo, twoDaysAgo);
  writeFileAtomicSync(file, '[]\n');
  t.equal(fs.readFileSync(file, 'utf8'), '[]\n');
  t.same(fs.readdirSync(folder).sort(), ['.other.json.999999999.1-deadbeef.rnnkit-tmp', path.basename(ownFresh), 'log.json'].sort(),
    "the log's stale temporaries are gone; a fresh one of this process and another file's are not touched");
  t.throws(() => writeFileAtomicSync(path.join(dir, 'no-such-folder', 'log.json'), 'x'), { code: 'ERR_RNNKIT_FILE', message: /cannot write \S+log\.json: its folder does not exist/ });
  await t.rejects(rk.sequential({ inputSize: 3, layers: [rk.layers.dense({ units: 2 })] }).save(folder), { code: 'ERR_RNNKIT_FILE', message: /cannot write \S+log: it is a folder/ }, 'save over a folder');
});

t.test('worker threads of one process saving to one path never remove each other\'s temporary files', { skip: distBuilt ? false : 'dist/ is not built' }, async (t) => {
  const file = path.join(dir, 'threads.safetensors');
  const script = `
    const { parentPort, workerData } = require('node:worker_threads');
    const rk = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
    const m = rk.sequential({ inputSize: 64, seed: workerData, layers: [rk.layers.lstm({ units: 128, returnSequences: true })] });
    (async () => {
      const errors = [];
      for (let i = 0; i < 40; i++) await m.save(${JSON.stringify(file)}).catch((e) => errors.push(e.code + ': ' + e.message));
      parentPort.postMessage(errors);
    })();`;
  const results = await Promise.all([1, 2, 3].map((seed) => new Promise<string[]>((resolve, reject) => {
    const w = new Worker(script, { eval: true, workerData: seed });
    w.once('message', (errors: string[]) => { resolve(errors); void w.terminate(); });
    w.once('error', reject);
  })));
  t.same(results.flat(), [], 'every save of every thread completed');
  const back = await rk.load(file);
  t.ok(back, 'the file loads: a whole model');
  back.dispose();
  t.same(fs.readdirSync(dir).filter((f) => f.startsWith('.threads.')), [], 'no temporary file left');
});
