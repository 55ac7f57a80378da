// First steps with rnnkit: an LSTM learns to predict the next symbol of a repeating sequence.
// Run from the repository root after `npm install`: node examples/first-steps.js
// (In your own project, require('rnnkit') instead of require('..').
'use strict';
const { RecurrentNetwork, backendInfo } = require('..');

async function main() {
  const vocabSize = 4;
  const T = 12; // time steps
  const B = 2; // sequences in the batch

  // Tokens are time-major [T, B]: tokens[t * B + b]. Row b is the cycle 0 1 2 3 0 1 ... starting at b;
  // the target at each step is the next symbol of the cycle.
  const tokens = new Int32Array(T * B);
  const targets = new Int32Array(T * B);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      tokens[t * B + b] = (t + b) % vocabSize;
      targets[t * B + b] = (t + b + 1) % vocabSize;
    }
  }

  // One-hot token input over vocabSize symbols, one LSTM layer, a dense head of vocabSize logits per step.
  const net = new RecurrentNetwork({ cell: 'lstm', vocabSize, hiddenSize: 16, headSize: vocabSize, seed: 1 });
  net.setOptimizer({ type: 'adam', lr: 0.02 });

  for (let step = 1; step <= 60; step++) {
    // zeroGrad, forward, softmax cross-entropy, backward, gradient clipping and the Adam step in one native call.
    const { loss } = await net.trainStep({ tokens: { data: tokens, shape: [T, B] } }, { classes: targets }, { clipNorm: 5 });
    if (step === 1 || step % 20 === 0) console.log(`step ${step}: loss ${loss.toFixed(4)}`);
  }

  // Inference: logits [T, B, vocabSize]; the most likely next symbol at every step.
  const { output } = await net.forward({ tokens: { data: tokens, shape: [T, B] } });
  const predicted = [];
  for (let i = 0; i < T * B; i++) {
    const logits = output.data.subarray(i * vocabSize, (i + 1) * vocabSize);
    predicted.push(logits.indexOf(Math.max(...logits)));
  }
  const correct = predicted.filter((p, i) => p === targets[i]).length;
  console.log(`output shape [${output.shape}], ${correct}/${T * B} next symbols right`);
  console.log('gemm:', backendInfo().gemm);

  net.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
