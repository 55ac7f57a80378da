// CI smoke test of the benchmark harness (bench/, developer tooling) and of `rnnkit bench` (the CLI's short speed
// check): `npm run bench -- --json --tiny` in a child process prints one JSON object with every workload of
// bench/workloads.json. Only the structure is checked (names present, figures finite and positive, ONNX Runtime's
// outputs equal to rnnkit's before it was timed), never a timing. Other peers are skipped in a --tiny run.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const root = path.join(__dirname, '..');
const skip = fs.existsSync(path.join(root, 'dist', 'index.js')) ? false : 'dist/ is missing: run `npx tsc -p .` first';

function npm(args: string[]) {
  // Under `npm test` npm_execpath is npm's own script; otherwise the npm on PATH.
  const execpath = process.env.npm_execpath;
  return execpath && /\.c?js$/.test(execpath)
    ? spawnSync(process.execPath, [execpath, ...args], { cwd: root, encoding: 'utf8', timeout: 400000 })
    : spawnSync('npm', args, { cwd: root, encoding: 'utf8', timeout: 400000, shell: process.platform === 'win32' });
}

const MEASURED_KINDS = ['train', 'infer', 'step', 'train_seq2seq', 'decode_seq2seq'];

t.test('npm run bench -- --json --tiny prints one JSON object covering every workload', { skip, timeout: 480000 }, async (t) => {
  // The first run may build the harness (tsc) and its native module (node-gyp): minutes on a small machine.
  const r = npm(['run', 'bench', '--', '--json', '--tiny']);
  t.equal(r.status, 0, `exit status (stderr: ${(r.stderr ?? '').slice(-2000)})`);
  let report: { workloads: Record<string, Record<string, any>>; machine: Record<string, any>; peers?: Record<string, { available: boolean }>; targets: unknown[] };
  try {
    report = JSON.parse(r.stdout);
  } catch (e) {
    t.fail(`stdout is not one JSON object: ${(e as Error).message}\n${r.stdout.slice(0, 500)}`);
    return;
  }
  t.type(report.workloads, 'object');
  t.type(report.machine, 'object');
  t.equal(report.machine.tiny, true);
  t.same(report.targets, [], 'no target is checked in a tiny run');

  const spec = JSON.parse(fs.readFileSync(path.join(root, 'bench', 'workloads.json'), 'utf8')) as {
    workloads: Record<string, { kind: string; report: string[] }>;
  };
  t.same(Object.keys(report.workloads).sort(), Object.keys(spec.workloads).sort(), 'exactly the workloads of bench/workloads.json');
  const finitePositive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;
  const ortInstalled = report.peers?.onnxruntime?.available === true;
  for (const [name, w] of Object.entries(spec.workloads)) {
    const got = report.workloads[name];
    if (!got) continue;
    if (!MEASURED_KINDS.includes(w.kind)) {
      t.type(got.not_measured, 'string', `${name}: kind ${w.kind} is listed as not measured`);
      continue;
    }
    t.notOk('error' in got, `${name} ran`);
    for (const figure of [...w.report, 'gflops']) t.ok(finitePositive(got[figure]), `${name}.${figure} is a finite positive number (${got[figure]})`);
    for (const [k, v] of Object.entries(got)) if (typeof v === 'number') t.ok(finitePositive(v), `${name}.${k} finite and positive`);
    t.ok(finitePositive(got.peak_fraction), `${name}: its fraction of the arithmetic peak`);
    if (w.kind === 'step') {
      t.ok(finitePositive(got.us_per_step_sync) && finitePositive(got.us_per_step_awaited), `${name}: the synchronous and the awaited step`);
    }
    if ((w.kind === 'infer' || w.kind === 'step') && ortInstalled) {
      const ort = got.peers?.onnxruntime;
      t.ok(ort && !ort.error, `${name}: ONNX Runtime ran (${ort?.error ?? ''})`);
      t.ok(typeof ort?.agreement === 'number' && ort.agreement <= 1e-5, `${name}: ONNX Runtime's outputs equal rnnkit's within 1e-5 relative (${ort?.agreement})`);
      t.ok(finitePositive(ort?.tokens_per_s) && finitePositive(got.vs?.onnxruntime), `${name}: ONNX Runtime timed, ratio given`);
    } else {
      t.notOk(got.peers, `${name}: no peer ran in the smoke run`);
    }
  }
  for (const [p, s] of Object.entries(report.peers ?? {})) if (p !== 'onnxruntime') t.equal(s.available, false, `peer ${p} skipped`);
  // The arithmetic peak every fraction divides by (float32 always; int8 where the CPU has an int8 vector route).
  const peak = report.machine.peak as { float32_gflops: number; float32_kernel: string; int8_gmacs?: number; int8_kernel: string };
  t.ok(peak && finitePositive(peak.float32_gflops) && typeof peak.float32_kernel === 'string', 'the float32 peak measured');
  t.ok(peak?.int8_gmacs === undefined || finitePositive(peak.int8_gmacs), `the int8 peak (${peak?.int8_kernel})`);
  // The step's floors, from the harness's own native module: a matrix-vector product over its weights, and a plain
  // read of as many bytes.
  const floors = report.machine.step_weight_read as Record<string, { bytes: number; us: number; read_us: number }>;
  for (const name of Object.keys(spec.workloads).filter((n) => n.startsWith('step_'))) {
    const f = floors?.[name];
    t.ok(f && finitePositive(f.bytes) && finitePositive(f.us) && finitePositive(f.read_us), `${name}: both floors measured`);
  }
});

t.test('the measuring entry points live in the harness\'s native module, not in the library\'s', { skip }, async (t) => {
  const lib = require(path.join(root, 'dist', 'native.js')).native as Record<string, unknown>;
  t.equal(lib.benchGemm, undefined, 'the addon has no benchGemm');
  t.equal(lib.benchRead, undefined, 'the addon has no benchRead');
  const file = path.join(root, 'bench', 'native', 'build', 'Release', 'rnnkit_bench.node');
  if (!fs.existsSync(file)) {
    t.fail('bench/native was not built by the harness run above');
    return;
  }
  const bench = require(file) as {
    benchRead: (bytes: unknown, reps: unknown) => { bestSeconds: number; medianSeconds: number; gbPerSecond: number; threads: number };
    benchGemm: (m: unknown, n: unknown, k: unknown, reps: unknown, o?: unknown) => { bestSeconds: number; gflops: number; gemm: string };
  };
  const r = bench.benchRead(1 << 16, 5);
  t.ok(r.bestSeconds > 0 && r.bestSeconds <= r.medianSeconds, 'best <= median, both positive');
  t.ok(r.gbPerSecond > 0 && r.threads >= 1);
  for (const [bytes, reps] of [[-1, 1], [1.5, 1], ['64', 1], [1 << 16, 0], [1 << 16, NaN], [2 ** 31, 1], [undefined, undefined]])
    t.throws(() => bench.benchRead(bytes, reps), { code: 'ERR_RNNKIT_VALUE' }, `benchRead(${String(bytes)}, ${String(reps)})`);
  const peak = (bench as unknown as { benchPeak: (type: unknown, iterations: unknown, reps: unknown) => { perSecond: number; kernel: string; threads: number } }).benchPeak;
  const fp = peak('float32', 1000, 2);
  t.ok(fp.perSecond > 0 && fp.kernel.length > 0 && fp.threads >= 1, `float32 peak (${fp.kernel})`);
  const i8 = peak('int8', 1000, 2);
  t.ok(i8.kernel === '' ? i8.perSecond === 0 : i8.perSecond > 0, `int8 peak (${i8.kernel || 'no int8 route'})`);
  for (const args of [['float64', 10, 1], ['float32', 0, 1], ['float32', 10, 0], ['float32', 1.5, 1], [undefined, 10, 1]])
    t.throws(() => peak(args[0], args[1], args[2]), { code: 'ERR_RNNKIT_VALUE' }, `benchPeak(${args.map(String).join(', ')})`);
  const g = bench.benchGemm(8, 8, 8, 2, { transB: true });
  t.ok(g.gflops > 0 && typeof g.gemm === 'string');
  const packed = bench.benchGemm(32, 100, 40, 2, { transB: true, packedB: true });
  t.ok(packed.gflops > 0 && packed.gemm.startsWith('builtin-'), `the built-in kernel on weights packed once (${packed.gemm})`);
  t.throws(() => bench.benchGemm(0, 8, 8, 1), { code: 'ERR_RNNKIT_VALUE' });
});

t.test('rnnkit bench --tiny: a short speed check with figures and no target lines', { skip, timeout: 120000 }, async (t) => {
  const cli = path.join(root, 'dist', 'cli', 'main.js');
  const text = spawnSync(process.execPath, [cli, 'bench', '--tiny'], { encoding: 'utf8', timeout: 100000 });
  t.equal(text.status, 0, text.stderr);
  t.notMatch(text.stdout, /FAIL|PASS/, 'no target lines');
  t.match(text.stdout, /tokens\/s/);
  const json = spawnSync(process.execPath, [cli, 'bench', '--tiny', '--json'], { encoding: 'utf8', timeout: 100000 });
  t.equal(json.status, 0, json.stderr);
  const r = JSON.parse(json.stdout) as { figures: Array<{ what: string; seconds: number; tokensPerSecond: number }> };
  t.equal(r.figures.length, 3);
  for (const f of r.figures) t.ok(f.seconds > 0 && Number.isFinite(f.tokensPerSecond) && f.tokensPerSecond > 0, f.what);
  const bad = spawnSync(process.execPath, [cli, 'bench', '--seconds', 'x'], { encoding: 'utf8', timeout: 100000 });
  t.equal(bad.status, 2, 'a bad --seconds is a usage error');
  const unknown = spawnSync(process.execPath, [cli, 'bench', '--peers'], { encoding: 'utf8', timeout: 100000 });
  t.not(unknown.status, 0, 'harness options are not the CLI\'s');
});

t.test('--only takes comma-separated parts of names, and a part that names nothing is an error', { skip, timeout: 240000 }, async (t) => {
  const both = npm(['run', 'bench', '--', '--json', '--tiny', '--no-peers', '--only', 'step_lstm2x256,infer_gru512']);
  t.equal(both.status, 0, `exit status (stderr: ${(both.stderr ?? '').slice(-1000)})`);
  t.same(Object.keys(JSON.parse(both.stdout).workloads).sort(), ['infer_gru512_b64_t100', 'step_lstm2x256_b1']);
  const typo = npm(['run', 'bench', '--', '--json', '--tiny', '--only', 'infer_gru,no_such_workload']);
  t.equal(typo.status, 2, 'exit status 2');
  t.match(typo.stderr, /--only "infer_gru,no_such_workload" names no workload \(no_such_workload\); workloads: .*infer_gru512_b64_t100/);
  t.equal(typo.stdout.trim(), '', 'nothing on stdout');
});
