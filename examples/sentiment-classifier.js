// Many-to-one: classify sentences of different lengths, padded into one batch, with per-row lengths (masks).
// The data is a small synthetic language generated here, so nothing is downloaded: reviews made of clauses joined
// by "but", holding opinion words of two strengths ("good" 1, "superb" 2, "dull" -1, "awful" -2), some made
// stronger ("very good" counts 2x) or negated ("not good", "never really boring": the sign flips). A clause after
// "but" counts twice as much as the one before it. The label is the sign of the weighted sum. So a model has to
// read the words in order, bind "not" and "very" to the opinion they govern, weigh clauses by their place, and add
// up: a bag of words cannot do it, and neither can a model that sees only the end.
//
// Run from the repository root after `npm install`:
//   node examples/sentiment-classifier.js           full run (figures in the README)
//   node examples/sentiment-classifier.js --tiny    a few seconds (the tests run this)
// (In your own project, require('rnnkit') instead of require('..').)
'use strict';
const rk = require('..');

const tiny = process.argv.includes('--tiny');

const OPINIONS = {
  good: 1, fine: 1, nice: 1, fun: 1, superb: 2, brilliant: 2, moving: 2,
  dull: -1, weak: -1, silly: -1, messy: -1, awful: -2, boring: -2, dreadful: -2,
};
const NEGATORS = ['not', 'never'];
const FILLER = ['the', 'a', 'plot', 'acting', 'film', 'story', 'music', 'cast', 'was', 'is', 'and', 'quite', 'ending', 'it', 'seemed'];
// Id 0 pads the rows; it never occurs inside a review.
const VOCAB = ['<pad>', 'but', 'very', 'really', ...NEGATORS, ...Object.keys(OPINIONS), ...FILLER];
const ID = new Map(VOCAB.map((w, i) => [w, i]));
const CLASSES = ['negative', 'positive'];

/** A seeded source of draws, so that every run sees the same data. */
const rng = new rk.SeededRandom(2024);
const pick = (list) => list[rng.int(list.length)];

/** One clause: fillers around one to three opinions, each maybe negated and maybe intensified. Returns its score. */
function clause(words) {
  let score = 0;
  for (let k = 1 + rng.int(3); k > 0; k--) {
    for (let f = rng.int(3); f > 0; f--) words.push(pick(FILLER));
    const negated = rng.next() < 0.3;
    const very = rng.next() < 0.25;
    if (negated) words.push(pick(NEGATORS));
    if (negated && rng.next() < 0.3) words.push('really'); // "not really good": the negation reaches over it
    if (very) words.push('very');
    const word = pick(Object.keys(OPINIONS));
    words.push(word);
    score += OPINIONS[word] * (very ? 2 : 1) * (negated ? -1 : 1);
  }
  for (let f = rng.int(2); f > 0; f--) words.push(pick(FILLER));
  return score;
}

/** A review of one to three clauses; each clause after "but" weighs twice its predecessor. Ties are drawn again. */
function review() {
  for (;;) {
    const words = [];
    let total = 0;
    let weight = 1;
    for (let c = 1 + rng.int(3); c > 0; c--) {
      if (words.length) {
        words.push('but');
        weight *= 2;
      }
      total += weight * clause(words);
    }
    if (total !== 0) return { words, label: total > 0 ? 1 : 0 };
  }
}

/** Reviews padded with id 0 to the longest one: x [N, T], lengths [N], y [N]. */
function dataset(n) {
  const reviews = Array.from({ length: n }, review);
  const T = Math.max(...reviews.map((r) => r.words.length));
  const x = { data: new Int32Array(n * T), shape: [n, T] };
  const y = { data: new Int32Array(n), shape: [n] };
  const lengths = new Int32Array(n);
  reviews.forEach((r, i) => {
    r.words.forEach((w, s) => { x.data[i * T + s] = ID.get(w); });
    lengths[i] = r.words.length;
    y.data[i] = r.label;
  });
  return { x, y, lengths, reviews };
}

async function main() {
  const started = performance.now();
  const train = dataset(tiny ? 256 : 6000);
  const test = dataset(tiny ? 128 : 2000);
  const epochs = tiny ? 2 : 20;

  // Token ids -> embedding -> GRU (its state at each row's last valid step) -> two logits.
  const model = rk.sequential({
    vocabSize: VOCAB.length,
    seed: 7,
    layers: [
      rk.layers.embedding({ outputDim: 16 }),
      rk.layers.gru({ units: tiny ? 16 : 64 }),
      rk.layers.dense({ units: CLASSES.length, activation: 'softmax' }),
    ],
  });
  model.compile({ loss: 'softmaxCrossEntropy', optimizer: rk.optimizers.adam({ lr: 3e-3 }), clipNorm: 5, metrics: ['accuracy'] });
  console.log(model.summary());
  console.log(`${train.x.shape[0]} training reviews, ${test.x.shape[0]} held out; lengths ${Math.min(...train.lengths)} to ${train.x.shape[1]} words`);

  const history = await model.fit(train.x, train.y, {
    lengths: train.lengths,
    epochs,
    batchSize: 32,
    validationData: { x: test.x, y: test.y, lengths: test.lengths },
    callbacks: {
      onEpochEnd: (l) => console.log(`epoch ${l.epoch + 1}: loss ${l.loss.toFixed(4)} accuracy ${l.accuracy.toFixed(3)}, held out: loss ${l.valLoss.toFixed(4)} accuracy ${l.valAccuracy.toFixed(3)}`),
    },
  });

  const result = await model.evaluate(test.x, test.y, { lengths: test.lengths });
  // For scale: the word-counting rule (opinion values added up, order, negation and "but" ignored).
  const counted = test.reviews.filter((r) => (r.words.reduce((a, w) => a + (OPINIONS[w] ?? 0), 0) > 0 ? 1 : 0) === r.label).length;
  const bagOfWords = counted / test.reviews.length;
  console.log(`adding up the opinion words, ignoring order, gets ${(100 * bagOfWords).toFixed(1)}% of the held-out reviews right`);
  const probs = await model.predict(test.x, { lengths: test.lengths });
  for (let i = 0; i < 3; i++) {
    const p = probs.data[i * 2 + 1];
    console.log(`  "${test.reviews[i].words.join(' ')}" -> ${CLASSES[p > 0.5 ? 1 : 0]} (p positive ${p.toFixed(2)}; label ${CLASSES[test.y.data[i]]})`);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`held-out accuracy ${(100 * result.accuracy).toFixed(1)}% (loss ${result.loss.toFixed(4)}) after ${epochs} epochs in ${seconds.toFixed(1)} s`);
  // One machine-readable line for scripts and the tests.
  console.log(JSON.stringify({ example: 'sentiment-classifier', tiny, epochs, heldOutAccuracy: result.accuracy, heldOutLoss: result.loss, bagOfWordsAccuracy: bagOfWords, trainLoss: history.loss, seconds }));
  model.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
