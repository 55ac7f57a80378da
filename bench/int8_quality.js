#!/usr/bin/env node
// The quality cost of int8 inference on a character model: the validation loss (mean cross-entropy, nats per
// character) of the same batches with float32 and with int8 inference. Developer tooling.
//   node bench/int8_quality.js MODEL.safetensors TEXT [--batches N] [--seed S] [--val-fraction X]
// MODEL: a model written by `rnnkit train` (its vocabulary in the metadata); TEXT: the text it was trained on (the
// validation part is its last --val-fraction, as `rnnkit train` holds it out). Prints one JSON object.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const rk = require(path.join(__dirname, '..', 'dist', 'index.js'));

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { batches: { type: 'string' }, seed: { type: 'string' }, 'val-fraction': { type: 'string' } },
  });
  if (positionals.length !== 2) throw new Error('usage: node bench/int8_quality.js MODEL.safetensors TEXT [--batches N] [--seed S]');
  const [modelFile, textFile] = positionals;
  const batches = Number(values.batches ?? 100), seed = Number(values.seed ?? 12345);
  const model = await rk.load(modelFile);
  const vocab = rk.CharVocabulary.fromJSON(model.metadata.vocabulary);
  const text = fs.readFileSync(textFile, 'utf8');
  const val = vocab.encode(rk.splitText(text, Number(values['val-fraction'] ?? 0.1)).validation);
  const data = new rk.SequenceDataset(val, { seqLength: 64, batchSize: 32, seed });
  const list = Array.from({ length: batches }, () => data.randomBatch());
  const x = { data: new Int32Array(list.flatMap((b) => Array.from(b.inputs.data))), shape: [32 * batches, 64] };
  const y = { data: new Int32Array(list.flatMap((b) => Array.from(b.targets.data))), shape: [32 * batches, 64] };
  model.compile({ loss: 'softmaxCrossEntropy', optimizer: rk.optimizers.adam({ lr: 1e-3 }) });
  model.setInferencePrecision('float32');
  const fp32 = (await model.evaluate(x, y, { batchSize: 32 })).loss;
  model.setInferencePrecision('int8');
  const int8 = (await model.evaluate(x, y, { batchSize: 32 })).loss;
  process.stdout.write(JSON.stringify({ model: path.basename(modelFile), windows: 32 * batches, seqLength: 64, fp32, int8, int8MinusFp32: int8 - fp32, int8Kernel: rk.backendInfo().int8Kernel }) + '\n');
  model.dispose();
}

main().catch((e) => { process.stderr.write(`${e.stack || e.message}\n`); process.exitCode = 1; });
