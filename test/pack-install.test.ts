// The published package, as a user gets it: `npm pack` the project (with the linux-x64 prebuild in prebuilds/),
// install the tarball into an empty project with install scripts blocked (no compiler runs), then in that project:
// require() it from CommonJS, import it from an ES module, train a small network and predict with both and inside a
// worker thread, type-check a TypeScript consumer of each form, and check the clear error (ERR_RNNKIT_NO_BINARY)
// raised where no binary fits.
//
// Needs dist/ (`npx tsc -p .`) and runs only on linux-x64 with glibc, the prebuild this machine can make. When
// prebuilds/linux-x64/rnnkit.glibc.node is missing, it is built first with .ci/prebuild-linux.sh x64 (about a
// minute; .ci/run builds it before the tests). The dependencies (node-gyp-build, node-addon-api) come from npm's
// cache, or from the registry when they are not cached.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';

const root = path.join(__dirname, '..');
const prebuild = path.join(root, 'prebuilds', 'linux-x64', 'rnnkit.glibc.node');

function isMusl(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return !report?.header?.glibcVersionRuntime;
}

let skip: string | false = false;
if (process.platform !== 'linux' || process.arch !== 'x64' || isMusl()) {
  skip = `the prebuild made here is linux-x64 glibc; this is ${process.platform}-${process.arch}`;
} else if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) {
  skip = 'dist/index.js is missing: run `npx tsc -p .` first';
}

// The environment of the child processes: without tap's loaders, and without anything that would point
// node-gyp-build at another binary.
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const key of ['NODE_OPTIONS', 'RNNKIT_PREBUILD', 'PREBUILDS_ONLY', 'TS_NODE_PROJECT']) delete env[key];
  return env;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

// Plain Node: tap's process tracking puts its loaders back into NODE_OPTIONS of every child it sees spawned, so the
// variable is removed by env(1) instead, right before node starts.
function node(args: string[], cwd: string): Run {
  return run('env', ['-u', 'NODE_OPTIONS', process.execPath, ...args], { cwd });
}

function run(cmd: string, args: string[], options: SpawnSyncOptions = {}): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, env: childEnv(), ...options });
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

// npm itself: the one running this test when there is one (npm test), else the npm on the PATH.
function npm(args: string[], cwd: string): Run {
  const cli = process.env.npm_execpath;
  if (cli && /npm-cli\.js$/.test(cli)) return run(process.execPath, [cli, ...args], { cwd });
  return run('npm', args, { cwd });
}

function lastJson(t: Test, r: Run, label: string): Record<string, unknown> {
  t.equal(r.status, 0, `${label} exits with 0${r.status ? `\n${r.stdout}\n${r.stderr}` : ''}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    t.fail(`${label} printed no JSON line:\n${r.stdout}\n${r.stderr}`);
    return {};
  }
}

// The consumer's files.
const trainJs = `'use strict';
// Trains a small LSTM a few steps to predict the next symbol of a cycle, then predicts; says which binary it used.
const fs = require('node:fs');
module.exports = async function train(rnnkit) {
  const V = 4, T = 8, B = 2;
  const tokens = new Int32Array(T * B);
  const targets = new Int32Array(T * B);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      tokens[t * B + b] = (t + b) % V;
      targets[t * B + b] = (t + b + 1) % V;
    }
  }
  const net = new rnnkit.RecurrentNetwork({ cell: 'lstm', vocabSize: V, hiddenSize: 16, headSize: V, seed: 7 });
  net.setOptimizer({ type: 'adam', lr: 0.05 });
  const losses = [];
  for (let step = 0; step < 30; step++) {
    const input = { tokens: { data: tokens, shape: [T, B] } };
    const r = step % 2 ? await net.trainStep(input, { classes: targets }, { clipNorm: 5 })
                       : net.trainStepSync(input, { classes: targets }, { clipNorm: 5 });
    losses.push(r.loss);
  }
  const { output } = await net.forward({ tokens: { data: tokens, shape: [T, B] } });
  let correct = 0;
  for (let i = 0; i < T * B; i++) {
    const logits = Array.from(output.data.subarray(i * V, (i + 1) * V));
    if (logits.indexOf(Math.max(...logits)) === targets[i]) correct++;
  }
  net.dispose();
  const binary = (fs.readFileSync('/proc/self/maps', 'utf8').match(/\\S*rnnkit\\S*\\.node/) || [null])[0];
  return { losses, correct, total: T * B, binary, gemm: rnnkit.backendInfo().gemm };
};
`;

const cjsJs = `'use strict';
const rnnkit = require('rnnkit');
const train = require('./train.cjs');
train(rnnkit).then((r) => console.log(JSON.stringify({
  ...r,
  resolved: require.resolve('rnnkit'),
  nodeOptions: process.env.NODE_OPTIONS || '',
  hooked: Object.keys(require.extensions),
})));
`;

const esmMjs = `import rnnkit, { RecurrentNetwork, backendInfo, isRnnkitError } from 'rnnkit';
import * as namespace from 'rnnkit';
import { createRequire } from 'node:module';
import train from './train.cjs';
const require = createRequire(import.meta.url);
const cjs = require('rnnkit');
const r = await train({ RecurrentNetwork, backendInfo });
console.log(JSON.stringify({
  ...r,
  resolved: import.meta.resolve ? import.meta.resolve('rnnkit') : null,
  sameInstance: rnnkit === cjs && RecurrentNetwork === cjs.RecurrentNetwork && isRnnkitError === cjs.isRnnkitError,
  missingNames: Object.keys(cjs).filter((k) => !(k in namespace)),
}));
`;

const workerMjs = `import { Worker } from 'node:worker_threads';
import rnnkit from 'rnnkit';
import train from './train.cjs';
const main = await train(rnnkit);
const inWorker = await new Promise((resolve, reject) => {
  const w = new Worker(new URL('./worker-job.cjs', import.meta.url));
  w.once('message', resolve);
  w.once('error', reject);
});
console.log(JSON.stringify({ main, inWorker }));
`;

const workerJobCjs = `'use strict';
const { parentPort } = require('node:worker_threads');
const rnnkit = require('rnnkit');
require('./train.cjs')(rnnkit).then((r) => parentPort.postMessage(r));
`;

const checkMts = `import rnnkit, { RecurrentNetwork, sequential, layers, type BackendInfo, type RnnkitErrorCode } from 'rnnkit';
const net: RecurrentNetwork = new rnnkit.RecurrentNetwork({ cell: 'gru', inputSize: 2, hiddenSize: 3 });
const same: typeof RecurrentNetwork = rnnkit.RecurrentNetwork;
const info: BackendInfo = rnnkit.backendInfo();
const code: RnnkitErrorCode = 'ERR_RNNKIT_NO_BINARY';
const model = sequential({ inputSize: 2, layers: [layers.dense({ units: 2 })] });
// @ts-expect-error the cell type is checked
new RecurrentNetwork({ cell: 'transformer', inputSize: 2, hiddenSize: 3 });
export { net, same, info, code, model };
`;

const checkCts = `import rnnkit = require('rnnkit');
const net = new rnnkit.RecurrentNetwork({ cell: 'lstm', vocabSize: 4, hiddenSize: 3 });
const info: rnnkit.BackendInfo = rnnkit.backendInfo();
// @ts-expect-error the cell type is checked
new rnnkit.RecurrentNetwork({ cell: 'transformer', inputSize: 2, hiddenSize: 3 });
export = { net, info };
`;

t.test('the packed package installs with scripts blocked and works from CommonJS, ESM and workers', { skip }, async (t) => {
  if (!fs.existsSync(prebuild)) {
    t.comment(`${path.relative(root, prebuild)} is missing: building it (bash .ci/prebuild-linux.sh x64)`);
    const r = run('bash', [path.join(root, '.ci', 'prebuild-linux.sh'), 'x64'], { cwd: root });
    if (r.status !== 0 || !fs.existsSync(prebuild)) {
      t.fail(`the linux-x64 prebuild failed (exit status ${r.status}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
      return;
    }
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-pack-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

  // 1. npm pack: the tarball has what users need and nothing else.
  const packed = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], root);
  t.equal(packed.status, 0, `npm pack${packed.status ? `\n${packed.stderr}` : ''}`);
  const info = (JSON.parse(packed.stdout) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[])[0];
  const tarball = path.join(tmp, path.basename(info.filename));
  const files = info.files.map((f) => f.path);
  t.comment(`${info.filename}: ${info.size} bytes packed, ${info.unpackedSize} unpacked, ${files.length} files`);
  for (const needed of [
    'package.json', 'README.md', 'binding.gyp', 'dist/index.js', 'dist/index.d.ts', 'esm/index.mjs', 'esm/index.d.mts',
    'prebuilds/linux-x64/rnnkit.glibc.node', 'native/addon/module.cc', 'dist/cli/speed-check.js',
  ]) {
    t.ok(files.includes(needed), `the tarball has ${needed}`);
  }
  const unwanted = files.filter((f) =>
    /^(test|build|build-[^/]*|examples|docs\/api|node_modules|bench|\.ci|\.github|\.tap)\//.test(f) ||
    /^(dist|lib)\/conformance\//.test(f) ||
    // `rnnkit bench` (the CLI's short speed check, dist/cli/bench.js) is a user's command; the harness is not.
    (/bench/i.test(path.basename(f)) && !/^(dist|lib)\/cli\/bench\.(js|ts)(\.map)?$/.test(f)));
  t.same(unwanted, [], 'no tests, builds, examples, generated docs, benchmark harness or conformance runner');
  t.ok(files.includes('dist/cli/main.js') && files.includes('dist/cli/train.js'), 'the CLI entry and its commands are there');
  t.notOk(files.some((f) => /^dist\/cli\/.*\.d\.ts$/.test(f)), 'no type declarations for the CLI (it is no API)');
  t.ok(info.size < 4 * 1024 * 1024, `the tarball is small (${info.size} bytes)`);

  // 2. Install it into an empty project with scripts blocked: nothing is compiled.
  const app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'rnnkit-consumer', version: '1.0.0', private: true }));
  const installed = npm(
    ['install', tarball, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], app);
  t.equal(installed.status, 0, `npm install --ignore-scripts${installed.status ? `\n${installed.stdout}\n${installed.stderr}` : ''}`);
  const pkgDir = path.join(app, 'node_modules', 'rnnkit');
  t.notOk(fs.existsSync(path.join(pkgDir, 'build')), 'nothing was compiled (no build/ in the installed package)');
  t.ok(fs.existsSync(path.join(pkgDir, 'prebuilds', 'linux-x64', 'rnnkit.glibc.node')), 'the prebuild is installed');
  // The `rnnkit` command, through the link npm made for the package's bin.
  const help = run('env', ['-u', 'NODE_OPTIONS', path.join(app, 'node_modules', '.bin', 'rnnkit'), '--help'], { cwd: app });
  t.equal(help.status, 0, `rnnkit --help exits with 0${help.status ? `\n${help.stderr}` : ''}`);
  t.match(help.stdout, /usage: rnnkit <command>[\s\S]*train[\s\S]*predict/, 'rnnkit --help lists the commands');
  const trainHelp = run('env', ['-u', 'NODE_OPTIONS', path.join(app, 'node_modules', '.bin', 'rnnkit'), 'train', '--help'], { cwd: app });
  t.match(trainHelp.stdout, /usage: rnnkit train/, 'rnnkit train --help prints the command\'s help');

  const files_: Record<string, string> = {
    'train.cjs': trainJs, 'cjs.js': cjsJs, 'esm.mjs': esmMjs, 'worker.mjs': workerMjs, 'worker-job.cjs': workerJobCjs,
    'check.mts': checkMts, 'check.cts': checkCts,
  };
  for (const [name, text] of Object.entries(files_)) fs.writeFileSync(path.join(app, name), text);

  const expectPrebuild = (t: Test, r: Record<string, unknown>, label: string): void => {
    t.match(String(r.binary), /node_modules\/rnnkit\/prebuilds\/linux-x64\/rnnkit\.glibc\.node$/, `${label}: the prebuild is loaded`);
    const losses = r.losses as number[];
    t.equal(losses.length, 30, `${label}: 30 training steps`);
    t.ok(losses[29] < losses[0] / 2, `${label}: training lowers the loss (${losses[0].toFixed(3)} -> ${losses[29].toFixed(3)})`);
    t.ok((r.correct as number) >= 12, `${label}: predicts the next symbol (${r.correct}/${r.total})`);
  };

  // 3. CommonJS.
  const cjs = lastJson(t, node(['cjs.js'], app), 'require (CommonJS)');
  t.match(String(cjs.resolved), /node_modules\/rnnkit\/dist\/index\.js$/, 'require resolves to dist/index.js');
  t.same([cjs.nodeOptions, cjs.hooked], ['', ['.js', '.json', '.node']], 'plain Node: no NODE_OPTIONS, no loader hooks');
  expectPrebuild(t, cjs, 'CommonJS');

  // 4. ES module: the "import" condition, the same instance as require(), every name exported.
  const esm = lastJson(t, node(['esm.mjs'], app), 'import (ESM)');
  if (esm.resolved !== null) {
    t.match(String(esm.resolved), /node_modules\/rnnkit\/esm\/index\.mjs$/, 'import resolves to esm/index.mjs');
  }
  t.equal(esm.sameInstance, true, 'import and require give the same module instance');
  t.same(esm.missingNames, [], 'every CommonJS export is a named ESM export');
  expectPrebuild(t, esm, 'ESM');
  t.same(esm.losses, cjs.losses, 'ESM and CommonJS compute the same losses');

  // 5. A worker thread loads its own instance of the addon and computes the same.
  const worker = lastJson(t, node(['worker.mjs'], app), 'worker_threads');
  const inWorker = (worker.inWorker ?? {}) as Record<string, unknown>;
  expectPrebuild(t, inWorker, 'worker');
  t.same(inWorker.losses, cjs.losses, 'the worker computes the same losses');
  t.same((worker.main as Record<string, unknown> | undefined)?.losses, cjs.losses, 'and so does its main thread');

  // 6. Types: a TypeScript consumer of each form (module node16), resolved through the exports map.
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'node16', moduleResolution: 'node16', target: 'es2022', strict: true, noEmit: true,
      types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')], skipLibCheck: false,
    },
    files: ['check.mts', 'check.cts'],
  }));
  const typed = node([tsc, '-p', 'tsconfig.json', '--explainFiles'], app);
  const typeErrors = typed.stdout.split('\n').filter((l) => /error/.test(l)).join('\n');
  t.equal(typed.status, 0, `tsc type-checks an ESM and a CommonJS consumer${typed.status ? `\n${typeErrors}` : ''}`);
  t.match(typed.stdout, /node_modules\/rnnkit\/esm\/index\.d\.mts/, 'import takes its types from esm/index.d.mts');
  t.match(typed.stdout, /node_modules\/rnnkit\/dist\/index\.d\.ts/, 'require takes its types from dist/index.d.ts');

  // 7. Where no binary fits: a clear error with a code, saying how to build from source.
  const noBinary = (t: Test, label: string, prepare: (dir: string) => void, message: RegExp): void => {
    const dir = fs.mkdtempSync(path.join(tmp, 'nobinary-'));
    fs.cpSync(path.join(app, 'node_modules'), path.join(dir, 'node_modules'), { recursive: true });
    const copy = path.join(dir, 'node_modules', 'rnnkit');
    fs.rmSync(path.join(copy, 'prebuilds'), { recursive: true, force: true });
    prepare(copy);
    const probe = `
      const report = (e) => console.log(JSON.stringify({ code: e.code, message: e.message }));
      let loaded = false;
      try { require('rnnkit'); loaded = true; } catch (e) { report(e); }
      if (loaded) console.log(JSON.stringify({ loaded }));`;
    const cjsErr = lastJson(t, node(['-e', probe], dir), `${label}: require`);
    t.equal(cjsErr.code, 'ERR_RNNKIT_NO_BINARY', `${label}: require throws ERR_RNNKIT_NO_BINARY`);
    t.match(String(cjsErr.message), message, `${label}: the message says what is missing`);
    t.match(String(cjsErr.message), /npm rebuild rnnkit/, `${label}: the message says how to build from source`);
    t.match(String(cjsErr.message), /C\+\+17 compiler/, `${label}: and what that needs`);
    const esmProbe = `import('rnnkit').then(
      () => console.log('{"loaded":true}'),
      (e) => console.log(JSON.stringify({ code: e.code })));`;
    const esmErr = lastJson(t, node(['--input-type=module', '-e', esmProbe], dir), `${label}: import`);
    t.equal(esmErr.code, 'ERR_RNNKIT_NO_BINARY', `${label}: import rejects with ERR_RNNKIT_NO_BINARY`);
  };
  noBinary(t, 'no prebuilds, no build', () => undefined,
    new RegExp('no native binary for this system \\(linux-x64, Node [0-9.]+\\): no prebuilt binary fits it ' +
      '\\(this package ships none\\) and no build from source exists'));
  noBinary(t, 'prebuilds for other platforms only', (copy) => {
    for (const tuple of ['darwin-arm64', 'win32-x64']) {
      fs.mkdirSync(path.join(copy, 'prebuilds', tuple), { recursive: true });
      fs.writeFileSync(path.join(copy, 'prebuilds', tuple, 'rnnkit.node'), '');
    }
    fs.mkdirSync(path.join(copy, 'prebuilds', 'linux-x64'), { recursive: true });
    fs.writeFileSync(path.join(copy, 'prebuilds', 'linux-x64', 'rnnkit.musl.node'), '');
  }, /this package ships darwin-arm64, linux-x64 \(musl\), win32-x64\)/);
  noBinary(t, 'a prebuild that does not load', (copy) => {
    fs.mkdirSync(path.join(copy, 'prebuilds', 'linux-x64'), { recursive: true });
    fs.writeFileSync(path.join(copy, 'prebuilds', 'linux-x64', 'rnnkit.glibc.node'), 'not an ELF file');
  }, /native binary \S+prebuilds\/linux-x64\/rnnkit\.glibc\.node cannot be loaded on this system \(linux-x64, Node [0-9.]+\): /);
});

// Electron (21 and later) forbids ArrayBuffers over memory that V8 did not allocate: results must be copied into
// V8-owned typed arrays (native/addon/js_convert.cc), never handed out as external buffers.
t.test('no external ArrayBuffer or Buffer in the native sources (Electron memory cage)', async (t) => {
  const sources: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (/\.(cc|cpp|cu|h|hpp)$/.test(entry.name)) sources.push(p);
    }
  };
  walk(path.join(root, 'native'));
  t.ok(sources.length > 10, `${sources.length} native sources`);
  const external = [
    /napi_create_external_(array)?buffer/, // the C API
    /ArrayBuffer::New\s*\(\s*[^,()]+,\s*[^,()]+,/, // Napi::ArrayBuffer::New(env, data, length[, finalizer])
    /Buffer<[^>]*>::New\s*\(\s*[^,()]+,\s*[^,()]+,/, // Napi::Buffer<T>::New(env, data, length[, finalizer])
  ];
  const found: string[] = [];
  for (const file of sources) {
    fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (external.some((re) => re.test(line))) found.push(`${path.relative(root, file)}:${i + 1}: ${line.trim()}`);
    });
  }
  t.same(found, [], 'results are copied into V8-owned arrays');
});
