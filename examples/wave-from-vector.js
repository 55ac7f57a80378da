// One-to-many from a vector, with the functional graph: given five numbers that describe a damped wave (amplitude,
// frequency, phase as cos/sin, damping), the model writes the wave out, 24 steps. Nothing about waves is built in:
// it learns from 4,000 examples and is measured on 1,000 parameter sets it never saw.
//
// The graph (Keras users know both idioms):
//   params [batch, 5] -> dense(tanh)            -> the GRU's initial state   (a dense projection into the state)
//   params            -> repeatVector(24)       -> the GRU's input at every step
//   GRU(returnSequences) -> dense(1)            -> the wave [batch, 24, 1], mean squared error
//
// Run from the repository root after `npm install`:
//   node examples/wave-from-vector.js          full run (figures in the README), about half a minute on 2 cores
//   node examples/wave-from-vector.js --tiny   a few seconds (the tests run this)
// (In your own project, require('rnnkit') instead of require('..').)
'use strict';
const rk = require('..');

const tiny = process.argv.includes('--tiny');
const STEPS = 24, FEATURES = 5, UNITS = tiny ? 16 : 48;
const TRAIN = tiny ? 256 : 4000, TEST = tiny ? 128 : 1000;
const EPOCHS = tiny ? 3 : 40;
const rng = new rk.SeededRandom(7);

/** One example: the parameter vector and its wave. */
function example() {
  const a = 0.5 + rng.next(), f = 0.5 + 1.5 * rng.next(), phase = 2 * Math.PI * rng.next(), damping = 2 * rng.next();
  const wave = Array.from({ length: STEPS }, (_, t) => a * Math.exp(-damping * t / STEPS) * Math.sin(2 * Math.PI * f * t / STEPS + phase));
  return { params: [a, f, Math.cos(phase), Math.sin(phase), damping], wave };
}

function dataset(n) {
  const rows = Array.from({ length: n }, example);
  return {
    x: { data: Float32Array.from(rows.flatMap((r) => r.params)), shape: [n, FEATURES] },
    y: { data: Float32Array.from(rows.flatMap((r) => r.wave)), shape: [n, STEPS, 1] },
  };
}

async function main() {
  const train = dataset(TRAIN), test = dataset(TEST);
  const { layers, input, model } = rk;
  const params = input({ dtype: 'float32', features: FEATURES, sequence: false, name: 'params' });
  const h0 = layers.dense({ units: UNITS, activation: 'tanh', name: 'to_state' }).apply(params);
  const steps = layers.repeatVector({ n: STEPS, name: 'every_step' }).apply(params);
  const hidden = layers.gru({ units: UNITS, returnSequences: true, name: 'writer' }).apply(steps, { initialState: h0 });
  const wave = layers.dense({ units: 1, name: 'wave' }).apply(hidden);
  const m = model({ inputs: params, outputs: wave, seed: 1 });
  m.compile({ optimizer: { type: 'adam', lr: 0.005 }, loss: 'mse', clipNorm: 1 });
  console.log(m.summary());

  const started = process.hrtime.bigint();
  const history = await m.fit(train.x, train.y, {
    epochs: EPOCHS, batchSize: 32, seed: 1, validationData: { x: test.x, y: test.y },
    callbacks: { onEpochEnd: (e, l) => console.log(`epoch ${e + 1}: loss ${l.loss.toFixed(5)}, held out ${l.valLoss.toFixed(5)}`) },
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;

  // The baseline: the mean wave of the training set at every step (what a model that ignores its input can do).
  const mean = new Float64Array(STEPS);
  for (let i = 0; i < TRAIN; i++) for (let t = 0; t < STEPS; t++) mean[t] += train.y.data[i * STEPS + t] / TRAIN;
  let baseline = 0, variance = 0;
  for (let i = 0; i < TEST; i++) for (let t = 0; t < STEPS; t++) baseline += (test.y.data[i * STEPS + t] - mean[t]) ** 2 / (TEST * STEPS);
  variance = baseline;
  const heldOut = (await m.evaluate(test.x, test.y)).loss;
  const r2 = 1 - heldOut / variance;
  const sample = await m.predict({ data: test.x.data.subarray(0, FEATURES), shape: [1, FEATURES] });
  const fmt = (xs) => Array.from(xs, (v) => v.toFixed(2).padStart(5)).join(' ');
  console.log(`a held-out wave:\n  true  ${fmt(test.y.data.subarray(0, STEPS))}\n  model ${fmt(sample.data)}`);
  console.log(`held-out mean squared error ${heldOut.toFixed(5)} (the mean wave alone: ${baseline.toFixed(5)}); R^2 ${r2.toFixed(4)}; ${EPOCHS} epochs in ${seconds.toFixed(1)} s`);
  m.dispose();
  console.log(JSON.stringify({ example: 'wave-from-vector', tiny, epochs: EPOCHS, trainLoss: history.loss, heldOutMse: heldOut, baselineMse: baseline, r2, seconds }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
