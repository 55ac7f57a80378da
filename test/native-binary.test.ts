// Which native binary require('rnnkit') loads (lib/native.ts, chooseBinary): the default one, or the one
// RNNKIT_BINARY names (`cuda`: what `npm run build:cuda` writes; or a path), never a silent fall back to the CPU
// binary when another was asked for. The rule is tried with fake paths, then end to end in child processes with a
// copy of the CPU binary standing in for a CUDA build (no GPU or nvcc needed).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { chooseBinary, nativeBinary } from '../lib/native';

const root = path.join(__dirname, '..');
const distBuilt = fs.existsSync(path.join(root, 'dist', 'native.js'));

t.test('the rule, with fake paths', async (t) => {
  const pkg = path.resolve('/pkg');
  const files = new Set([path.join(pkg, 'build-cuda', 'Release', 'rnnkit.node'), path.resolve('/opt/gpu/rnnkit.node')]);
  const exists = (f: string) => files.has(f);
  const byDefault = () => path.join(pkg, 'build', 'Release', 'rnnkit.node');
  const choose = (value: string | undefined) => chooseBinary(pkg, { RNNKIT_BINARY: value }, exists, byDefault);
  t.equal(choose(undefined), byDefault(), 'unset: the default binary');
  t.equal(choose(''), byDefault(), 'empty: the default binary');
  t.equal(choose('  '), byDefault(), 'blank: the default binary');
  t.equal(choose('cuda'), path.join(pkg, 'build-cuda', 'Release', 'rnnkit.node'), "'cuda': the binary of npm run build:cuda");
  t.equal(choose('/opt/gpu/rnnkit.node'), path.resolve('/opt/gpu/rnnkit.node'), 'a path: that file');
  t.throws(() => choose('cmake'), { code: 'ERR_RNNKIT_NO_BINARY', message: /RNNKIT_BINARY=cmake asks for \S+build-cmake\/Release\/rnnkit\.node, which does not exist: build it with `npm run build:cmake`/ },
    'a named build that was not built: an error, not the CPU binary');
  t.throws(() => chooseBinary(path.resolve('/elsewhere'), { RNNKIT_BINARY: 'cuda' }, exists, byDefault),
    { code: 'ERR_RNNKIT_NO_BINARY', message: /build it with `npm run build:cuda`/ }, 'the CUDA build of another package folder');
  t.throws(() => choose('/nope/rnnkit.node'), { code: 'ERR_RNNKIT_NO_BINARY', message: /RNNKIT_BINARY names \S+nope\/rnnkit\.node, which is not a file: .*'cuda'/ });
  t.throws(() => choose('__proto__'), { code: 'ERR_RNNKIT_NO_BINARY' }, 'no inherited property is a named build');
  let searched = false;
  chooseBinary(pkg, { RNNKIT_BINARY: 'cuda' }, exists, () => {
    searched = true;
    return '';
  });
  t.notOk(searched, 'a named binary is not searched for the default way');
});

t.test('this process loaded the binary the rule gives', async (t) => {
  if (process.env.RNNKIT_BINARY?.trim()) t.equal(nativeBinary, chooseBinary(root, process.env, () => true, () => ''), 'the one RNNKIT_BINARY names');
  else t.match(nativeBinary, /(build[\\/]Release|prebuilds[\\/].*)[\\/][^\\/]*\.node$/);
});

/** In a child process: the binary rnnkit loaded (and, on Linux, that the process really mapped it), or its error. */
function loadIn(pkg: string, env: Record<string, string>): { binary?: string; mapped?: boolean; code?: string; message?: string } {
  const script = `
    try {
      const { nativeBinary } = require(${JSON.stringify(path.join(pkg, 'dist', 'native.js'))});
      require(${JSON.stringify(path.join(pkg, 'dist', 'index.js'))}).devices();
      const maps = require('fs').existsSync('/proc/self/maps') ? require('fs').readFileSync('/proc/self/maps', 'utf8') : null;
      console.log(JSON.stringify({ binary: nativeBinary, mapped: maps === null ? undefined : maps.includes(nativeBinary) }));
    } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60000 });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() as string);
  } catch {
    return { message: `no result: ${r.stdout} ${r.stderr}` };
  }
}

t.test('RNNKIT_BINARY end to end: a package folder with a build-cuda binary', { skip: distBuilt ? false : 'dist/ is not built' }, async (t) => {
  const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-binary-'));
  t.teardown(() => fs.rmSync(pkg, { recursive: true, force: true }));
  fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
  fs.cpSync(path.join(root, 'dist'), path.join(pkg, 'dist'), { recursive: true });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
  fs.mkdirSync(path.join(pkg, 'build', 'Release'), { recursive: true });
  fs.mkdirSync(path.join(pkg, 'build-cuda', 'Release'), { recursive: true });
  // The binary this process runs stands in for both builds: what matters is which file is loaded.
  fs.copyFileSync(nativeBinary, path.join(pkg, 'build', 'Release', 'rnnkit.node'));
  const cuda = path.join(pkg, 'build-cuda', 'Release', 'rnnkit.node');
  fs.copyFileSync(nativeBinary, cuda);
  const env = { RNNKIT_BINARY: '', PREBUILDS_ONLY: '' };

  const plain = loadIn(pkg, env);
  t.equal(plain.binary, path.join(pkg, 'build', 'Release', 'rnnkit.node'), `no variable: build/Release (${plain.message ?? ''})`);
  const named = loadIn(pkg, { ...env, RNNKIT_BINARY: 'cuda' });
  t.equal(named.binary, cuda, `RNNKIT_BINARY=cuda: build-cuda/Release/rnnkit.node, without copying it (${named.message ?? ''})`);
  if (named.mapped !== undefined) t.ok(named.mapped, 'the process mapped that file');
  const elsewhere = path.join(pkg, 'elsewhere.node');
  fs.copyFileSync(nativeBinary, elsewhere);
  const byPath = loadIn(pkg, { ...env, RNNKIT_BINARY: elsewhere });
  t.equal(byPath.binary, elsewhere, 'RNNKIT_BINARY=<path>: that file');

  fs.rmSync(cuda);
  const missing = loadIn(pkg, { ...env, RNNKIT_BINARY: 'cuda' });
  t.equal(missing.code, 'ERR_RNNKIT_NO_BINARY', 'the CUDA build asked for but missing: an error at require');
  t.match(missing.message, /RNNKIT_BINARY=cuda asks for \S+build-cuda\/Release\/rnnkit\.node, which does not exist: build it with `npm run build:cuda`/);
});

t.test("the checkout's own CUDA build, where there is one", { skip: fs.existsSync(path.join(root, 'build-cuda', 'Release', 'rnnkit.node')) && distBuilt ? false : 'no build-cuda/Release/rnnkit.node (npm run build:cuda)' }, async (t) => {
  const r = loadIn(root, { RNNKIT_BINARY: 'cuda' });
  t.equal(r.binary, path.join(root, 'build-cuda', 'Release', 'rnnkit.node'), `loaded (${r.message ?? ''})`);
});
