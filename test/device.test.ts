// Device selection: devices() lists the CPU first (and a CUDA GPU only where one can be used), `device: 'cpu'` is the
// default and changes nothing, a misspelt device is an argument error, and `device: 'cuda'` without a usable GPU
// (or in a build without CUDA) is a clean ERR_RNNKIT_DEVICE that says why. With a GPU, the same network on both
// devices gives the same results.
import t from 'tap';
import { RecurrentNetwork, devices, isRnnkitError } from '../lib/index';
import { native } from '../lib/native';

const list = devices();
const cuda = list.filter((d) => d.type === 'cuda');

t.test('devices()', async (t) => {
  t.ok(Array.isArray(list) && list.length >= 1, 'an array');
  t.equal(list[0].type, 'cpu', 'the CPU first');
  const cpu = list[0] as { type: 'cpu'; threads: number; gemm: string };
  t.ok(cpu.threads >= 1, 'with its thread count');
  t.type(cpu.gemm, 'string', 'and its GEMM');
  for (const d of cuda) {
    if (d.type !== 'cuda') continue;
    t.ok(Number.isInteger(d.index) && d.index >= 0, `cuda ${d.index}: index`);
    t.ok(d.name.length > 0, `cuda ${d.index}: name ${d.name}`);
    t.ok(d.memory > 0, `cuda ${d.index}: memory`);
    t.match(d.computeCapability, /^\d+\.\d+$/, `cuda ${d.index}: compute capability`);
  }
});

t.test("device: 'cpu' is the default", async (t) => {
  const spec = { cell: 'gru' as const, inputSize: 3, hiddenSize: 5, headSize: 2, seed: 7 };
  const a = new RecurrentNetwork(spec);
  const b = new RecurrentNetwork({ ...spec, device: 'cpu' });
  const x = { data: Float32Array.from({ length: 4 * 2 * 3 }, (_, i) => Math.sin(i)), shape: [4, 2, 3] };
  t.same(b.forwardSync({ x }).output.data, a.forwardSync({ x }).output.data, 'the same outputs');
  a.dispose();
  b.dispose();
  const m = new native.Network({ inputSize: 3, layers: [{ type: 'dense', units: 2 }], device: 'cpu' });
  t.same(m.paramNames(), ['layers.0.weight', 'layers.0.bias'], 'a layers spec takes it too');
  m.dispose();
});

t.test('a device that does not exist', async (t) => {
  for (const device of ['gpu', 'CUDA', 'cuda:', 'cuda:x', 'cuda:-1', '']) {
    try {
      new native.Network({ cell: 'lstm', inputSize: 2, hiddenSize: 3, device: device as 'cpu' });
      t.fail(`'${device}': no error`);
    } catch (e) {
      t.equal((e as { code?: string }).code, 'ERR_RNNKIT_ARGUMENT', `'${device}': ${(e as Error).message}`);
    }
  }
  try {
    new native.Network({ cell: 'lstm', inputSize: 2, hiddenSize: 3, device: 1 as unknown as 'cpu' });
    t.fail('a number: no error');
  } catch (e) {
    t.equal((e as { code?: string }).code, 'ERR_RNNKIT_TYPE', `a number: ${(e as Error).message}`);
  }
  try {
    new native.Network({ cell: 'lstm', inputSize: 2, hiddenSize: 0, device: 'cuda' });
    t.fail('a bad spec: no error');
  } catch (e) {
    t.equal((e as { code?: string }).code, 'ERR_RNNKIT_ARGUMENT', 'the spec is checked before the device is opened');
  }
});

t.test("device: 'cuda' without a usable GPU", { skip: cuda.length > 0 ? 'a CUDA device is present' : false }, async (t) => {
  for (const spec of [
    { cell: 'lstm' as const, inputSize: 2, hiddenSize: 3, device: 'cuda' as const },
    { inputSize: 2, layers: [{ type: 'recurrent' as const, cell: 'gru' as const, hiddenSize: 3 }], device: 'cuda:0' as const },
  ]) {
    try {
      new native.Network(spec);
      t.fail('no error');
    } catch (e) {
      t.ok(isRnnkitError(e), 'an rnnkit error');
      t.equal((e as { code?: string }).code, 'ERR_RNNKIT_DEVICE', 'ERR_RNNKIT_DEVICE');
      t.match((e as Error).message, /no CUDA support: build one with npm run build:cuda and load it with RNNKIT_BINARY=cuda|no CUDA device found|cuBLAS could not be loaded/,
        `says why: ${(e as Error).message}`);
    }
  }
});

t.test('the same network on the CPU and on CUDA', { skip: cuda.length === 0 ? 'no CUDA device' : false }, async (t) => {
  const spec = { cell: 'lstm' as const, inputSize: 4, hiddenSize: 16, numLayers: 2, bidirectional: true, headSize: 3, seed: 3 };
  const cpu = new RecurrentNetwork(spec);
  const gpu = new RecurrentNetwork({ ...spec, device: 'cuda' });
  const x = { data: Float32Array.from({ length: 6 * 2 * 4 }, (_, i) => Math.cos(i)), shape: [6, 2, 4] };
  const lengths = Int32Array.from([6, 3]);
  const want = cpu.forwardSync({ x, lengths }, { train: true });
  const got = await gpu.forward({ x, lengths }, { train: true });
  const close = (a: Float32Array, b: Float32Array): boolean => a.every((v, i) => Math.abs(v - b[i]) <= 1e-4 + 1e-3 * Math.abs(b[i]));
  t.ok(close(got.output.data, want.output.data), 'outputs agree');
  t.ok(close(got.hn, want.hn), 'hn agrees');
  const classes = Int32Array.from({ length: 12 }, (_, i) => i % 3);
  const lw = cpu.lossSync({ classes });
  const lg = await gpu.loss({ classes });
  t.ok(Math.abs(lw.loss - lg.loss) < 1e-4, `losses agree (${lg.loss} vs ${lw.loss})`);
  for (const name of cpu.paramNames()) t.ok(close(gpu.getGrad(name).data, cpu.getGrad(name).data), `grad ${name}`);
  cpu.dispose();
  gpu.dispose();
});

// Loading the addon tells OpenBLAS's threads to sleep right after each product (they would otherwise spin on the
// cores the pool needs), unless the user chose a value, and the environment from before the load is kept for child
// processes of other libraries.
t.test('OPENBLAS_THREAD_TIMEOUT: set to 4 when unset before a BLAS is looked for, a user value kept', { skip: process.platform === 'win32' ? 'no system BLAS is loaded on Windows' : false }, async (t) => {
  const { spawnSync } = await import('node:child_process');
  const path = await import('node:path');
  const script = `const n = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native.js'))});` +
    'console.log(JSON.stringify([process.env.OPENBLAS_THREAD_TIMEOUT ?? null, n.environmentBeforeLoad.OPENBLAS_THREAD_TIMEOUT ?? null]))';
  const run = (value?: string, blas?: string): unknown => {
    const env = { ...process.env };
    delete env.OPENBLAS_THREAD_TIMEOUT;
    delete env.RNNKIT_BLAS;
    if (value !== undefined) env.OPENBLAS_THREAD_TIMEOUT = value;
    if (blas !== undefined) env.RNNKIT_BLAS = blas;
    const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
    t.equal(r.status, 0, `the child exits cleanly${r.stderr ? `: ${r.stderr}` : ''}`);
    return JSON.parse(r.stdout.trim());
  };
  t.same(run(undefined, 'system'), ['4', null], 'RNNKIT_BLAS=system: 4 after loading, unset before');
  t.same(run('9', 'system'), ['9', '9'], "the user's value is left alone");
  t.same(run(undefined, 'none'), [null, null], 'RNNKIT_BLAS=none: no BLAS is looked for, nothing is set');
  const simd = ['avx512', 'avx2'].includes(native.backendInfo().builtinKernel);
  t.same(run(), simd ? [null, null] : ['4', null], `unset: ${simd ? 'the built-in GEMM is the default, no BLAS is looked for' : 'a BLAS is looked for'}`);
});

// The default GEMM (native/cpu/gemm_select.cc) and every RNNKIT_BLAS choice, as backendInfo() reports them.
t.test('RNNKIT_BLAS: the built-in GEMM by default where its SIMD kernels run, a system BLAS on request', { skip: process.platform === 'win32' ? 'no system BLAS is loaded on Windows' : false }, async (t) => {
  const { spawnSync } = await import('node:child_process');
  const path = await import('node:path');
  const script = `console.log(JSON.stringify(require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native.js'))}).native.backendInfo()))`;
  const info = (extra: Record<string, string>): { gemm: string; blas: string; blasDetail: string; builtinKernel: string } => {
    const env = { ...process.env };
    delete env.RNNKIT_BLAS;
    delete env.RNNKIT_GEMM_KERNEL;
    Object.assign(env, extra);
    const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
    t.equal(r.status, 0, `${JSON.stringify(extra)}: the child exits cleanly${r.stderr ? `: ${r.stderr}` : ''}`);
    return JSON.parse(r.stdout.trim());
  };
  const usesBlas = (i: { gemm: string; blas: string }) => i.blas !== 'none' && i.gemm === i.blas;
  const usesBuiltin = (i: { gemm: string; blas: string; builtinKernel: string }) => i.blas === 'none' && i.gemm === `builtin-${i.builtinKernel}`;

  const system = info({ RNNKIT_BLAS: 'system' });
  const installed = system.blas !== 'none';
  t.ok(installed ? usesBlas(system) : usesBuiltin(system) && /no system BLAS found/.test(system.blasDetail), `system: ${system.gemm} (${system.blasDetail})`);

  const dflt = info({});
  if (['avx512', 'avx2'].includes(dflt.builtinKernel)) {
    t.ok(usesBuiltin(dflt), `default on a ${dflt.builtinKernel} CPU: the built-in GEMM (${dflt.gemm})`);
    t.match(dflt.blasDetail, /not looked for/, 'and blasDetail says no BLAS was looked for');
    t.same(info({ RNNKIT_BLAS: 'auto' }), dflt, 'auto is the default');
  } else {
    t.same(dflt, system, 'default on a CPU without the SIMD kernels: a system BLAS when installed');
  }
  // With the generic kernel forced, the built-in GEMM has no SIMD kernel: the default looks for a BLAS.
  const generic = info({ RNNKIT_GEMM_KERNEL: 'generic' });
  t.equal(generic.builtinKernel, 'generic');
  t.equal(generic.gemm, installed ? system.gemm : 'builtin-generic', `generic kernel forced: ${generic.gemm}`);

  for (const v of ['none', 'builtin']) {
    const i = info({ RNNKIT_BLAS: v });
    t.ok(usesBuiltin(i) && i.blasDetail === `disabled by RNNKIT_BLAS=${v}`, `${v}: the built-in GEMM (${i.blasDetail})`);
  }
  // A family name loads that implementation, or says why it could not (the built-in GEMM then runs).
  for (const v of ['openblas', 'blis', 'mkl']) {
    const i = info({ RNNKIT_BLAS: v });
    t.ok(i.blas === v ? usesBlas(i) : usesBuiltin(i) && i.blasDetail.startsWith(`RNNKIT_BLAS=${v} could not be used:`), `${v}: ${i.gemm} (${i.blasDetail})`);
  }
  if (system.blas === 'openblas') t.equal(info({ RNNKIT_BLAS: 'openblas' }).gemm, 'openblas', 'openblas: loaded where installed');
  const bogus = info({ RNNKIT_BLAS: '/nonexistent/libnoblas.so' });
  t.ok(usesBuiltin(bogus) && bogus.blasDetail.includes('/nonexistent/libnoblas.so'), `a path that cannot be loaded: ${bogus.blasDetail}`);
});
