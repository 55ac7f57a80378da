#!/usr/bin/env node
// `npm run bench`: builds what the benchmark harness needs, then runs it with the arguments given.
//   1. the harness's TypeScript (bench/src -> bench/dist, bench/tsconfig.json), over the library built into dist/;
//   2. its native module (bench/native: the GEMM roofline and the read floor), with node-gyp, when missing or older
//      than its sources.
// Build output goes to stderr, so that `npm run bench -- --json` prints the report's JSON alone on stdout.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 2, 2], env: process.env });
  if (r.status !== 0) {
    process.stderr.write(`bench: ${path.basename(args[0] ?? cmd)} ${args.slice(1).join(' ')} failed (${r.error ? r.error.message : `exit status ${r.status}`})\n`);
    process.exit(1);
  }
}

function newestMtime(files) {
  return Math.max(...files.map((f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : Infinity)));
}

if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) run(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', 'tsconfig.json'], root);
run(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', path.join('bench', 'tsconfig.json')], root);

const nativeDir = path.join(root, 'bench', 'native');
const addon = path.join(nativeDir, 'build', 'Release', 'rnnkit_bench.node');
const gyp = JSON.parse(fs.readFileSync(path.join(nativeDir, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, ''));
const sources = gyp.targets[0].sources.map((s) => path.join(nativeDir, s));
const headers = ['read_bench.h', 'peak_bench.h', '../../native/cpu/gemm.h', '../../native/cpu/thread_pool.h', '../../native/cpu/simd_dispatch.h'].map((s) => path.join(nativeDir, s));
if (!fs.existsSync(addon) || fs.statSync(addon).mtimeMs < newestMtime([...sources, ...headers, path.join(nativeDir, 'binding.gyp')])) {
  process.stderr.write('bench: building the harness native module (bench/native) ...\n');
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  // Node's own headers when this Node installation has them (nothing downloaded), as the CI does for the addon.
  const nodedir = path.resolve(process.execPath, '..', '..');
  const nodedirArg = !process.env.npm_config_nodedir && fs.existsSync(path.join(nodedir, 'include', 'node', 'node_api.h')) ? [`--nodedir=${nodedir}`] : [];
  run(process.execPath, [nodeGyp, 'rebuild', ...nodedirArg], nativeDir);
}

require(path.join(root, 'bench', 'dist', 'harness.js'))
  .runBenchmarks(process.argv.slice(2))
  .then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(`bench: ${e.stack || e.message}\n`); process.exitCode = 1; });
