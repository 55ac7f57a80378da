// Many-to-many tagging: a part-of-speech tag for every word of sentences of different lengths, padded into one batch,
// with per-row lengths (masks) so that neither the recurrent layers nor the loss see the padding.
// The data is a small synthetic language generated here, so nothing is downloaded: sentences of a little grammar
// ("the old dog sees a fish near the park and she often plays") where many words have several parts of speech:
// "fish", "watch", "plays", "saw" are nouns after a determiner and verbs after a subject; "light" is also an
// adjective ("the light ball"). Noun phrases may be compounds ("the park watch") and objects may come without a
// determiner ("she likes fish"), so the tag of a word can hang on words a few steps away on either side, and a few
// sentences are truly ambiguous ("the dog saw fish watch ..."). A bidirectional LSTM reads both sides.
//
// Run from the repository root after `npm install`:
//   node examples/pos-tagger.js           full run (figures in the README)
//   node examples/pos-tagger.js --tiny    a few seconds (the tests run this)
// (In your own project, require('rnnkit') instead of require('..').)
'use strict';
const rk = require('..');

const tiny = process.argv.includes('--tiny');

const TAGS = ['DET', 'ADJ', 'NOUN', 'VERB', 'PREP', 'ADV', 'PRON', 'CONJ'];
const TAG = Object.fromEntries(TAGS.map((t, i) => [t, i]));
const WORDS = {
  DET: ['the', 'a', 'every', 'this', 'some'],
  ADJ: ['big', 'small', 'old', 'red', 'happy', 'quiet'],
  NOUN: ['dog', 'cat', 'man', 'ball', 'garden', 'house', 'bird', 'fire'],
  VERB: ['sees', 'likes', 'chases', 'finds', 'hears'],
  PREP: ['in', 'near', 'with', 'under'],
  ADV: ['quickly', 'often', 'slowly'],
  PRON: ['he', 'she', 'they'],
};
// Words of several parts of speech: which one is meant depends on the context.
const AMBIGUOUS = { NOUN: ['fish', 'watch', 'plays', 'saw', 'light', 'park'], VERB: ['fish', 'watch', 'plays', 'saw', 'light', 'park'], ADJ: ['light'] };
// Id 0 pads the rows.
const VOCAB = ['<pad>', 'and', ...new Set([...Object.values(WORDS).flat(), ...Object.values(AMBIGUOUS).flat()])];
const ID = new Map(VOCAB.map((w, i) => [w, i]));
const isAmbiguous = new Set(Object.values(AMBIGUOUS).flat());

const rng = new rk.SeededRandom(99);
const pick = (list) => list[rng.int(list.length)];
/** A word of part of speech `tag`: an ambiguous one 40% of the time when there are some. */
const word = (tag) => (AMBIGUOUS[tag] && rng.next() < 0.5 ? pick(AMBIGUOUS[tag]) : pick(WORDS[tag]));

function nounPhrase(out, subject) {
  if (subject && rng.next() < 0.3) return out.push(['PRON', pick(WORDS.PRON)]);
  // Objects: a bare noun now and then ("likes fish").
  if (!subject && rng.next() < 0.2) return out.push(['NOUN', word('NOUN')]);
  out.push(['DET', pick(WORDS.DET)]);
  for (let k = rng.int(3); k > 0; k--) out.push(['ADJ', word('ADJ')]);
  if (rng.next() < 0.25) out.push(['NOUN', word('NOUN')]); // a compound: "the park watch"
  out.push(['NOUN', word('NOUN')]);
}

function clause(out) {
  nounPhrase(out, true);
  if (rng.next() < 0.25) out.push(['ADV', pick(WORDS.ADV)]);
  out.push(['VERB', word('VERB')]);
  nounPhrase(out, false);
  for (let p = 0; p < 2 && rng.next() < 0.4; p++) {
    out.push(['PREP', pick(WORDS.PREP)]);
    nounPhrase(out, false);
  }
}

/** A sentence of one to three clauses, as [tag, word] pairs. */
function sentence() {
  const out = [];
  clause(out);
  while (out.length < 30 && rng.next() < 0.4) {
    out.push(['CONJ', 'and']);
    clause(out);
  }
  return out;
}

/** Sentences padded to the longest: x [N, T] word ids (0 past the end), y [N, T] tags (-1 past the end), lengths. */
function dataset(n) {
  const sentences = Array.from({ length: n }, sentence);
  const T = Math.max(...sentences.map((s) => s.length));
  const x = { data: new Int32Array(n * T), shape: [n, T] };
  // Past a row's length the targets are never read (lengths say where rows end); -1 is also the ignore index.
  const y = { data: new Int32Array(n * T).fill(-1), shape: [n, T] };
  const lengths = new Int32Array(n);
  sentences.forEach((s, i) => {
    s.forEach(([tag, w], k) => {
      x.data[i * T + k] = ID.get(w);
      y.data[i * T + k] = TAG[tag];
    });
    lengths[i] = s.length;
  });
  return { x, y, lengths, sentences };
}

async function main() {
  const started = performance.now();
  const train = dataset(tiny ? 128 : 3000);
  const test = dataset(tiny ? 64 : 1000);
  const epochs = tiny ? 2 : 12;

  // Word ids -> embedding -> bidirectional LSTM over every step -> one tag's logits per step.
  const model = rk.sequential({
    vocabSize: VOCAB.length,
    seed: 3,
    layers: [
      rk.layers.embedding({ outputDim: 16 }),
      rk.layers.lstm({ units: tiny ? 8 : 32, returnSequences: true, bidirectional: true }),
      rk.layers.dense({ units: TAGS.length }),
    ],
  });
  model.compile({ loss: 'softmaxCrossEntropy', optimizer: rk.optimizers.adam({ lr: 5e-3 }), clipNorm: 5, metrics: ['accuracy'] });
  console.log(model.summary());
  console.log(`${train.x.shape[0]} training sentences, ${test.x.shape[0]} held out; lengths ${Math.min(...train.lengths)} to ${train.x.shape[1]} words`);

  await model.fit(train.x, train.y, {
    lengths: train.lengths,
    epochs,
    batchSize: 32,
    validationData: { x: test.x, y: test.y, lengths: test.lengths },
    callbacks: {
      onEpochEnd: (l) => console.log(`epoch ${l.epoch + 1}: loss ${l.loss.toFixed(4)} tag accuracy ${l.accuracy.toFixed(4)}, held out: loss ${l.valLoss.toFixed(4)} tag accuracy ${l.valAccuracy.toFixed(4)}`),
    },
  });

  const result = await model.evaluate(test.x, test.y, { lengths: test.lengths });
  // The ambiguous words alone, and a context-free baseline: each word's most frequent tag in the training data.
  const logits = await model.predict(test.x, { lengths: test.lengths });
  const counts = new Map();
  for (const s of train.sentences) for (const [tag, w] of s) {
    const c = counts.get(w) ?? new Array(TAGS.length).fill(0);
    c[TAG[tag]]++;
    counts.set(w, c);
  }
  const T = test.x.shape[1];
  let ambiguous = 0, ambiguousRight = 0, baselineRight = 0, tokens = 0;
  test.sentences.forEach((s, i) => s.forEach(([tag, w], k) => {
    const z = logits.data.subarray((i * T + k) * TAGS.length, (i * T + k + 1) * TAGS.length);
    const predicted = z.indexOf(Math.max(...z));
    const c = counts.get(w);
    baselineRight += c && c.indexOf(Math.max(...c)) === TAG[tag] ? 1 : 0;
    tokens++;
    if (isAmbiguous.has(w)) {
      ambiguous++;
      ambiguousRight += predicted === TAG[tag] ? 1 : 0;
    }
  }));
  // One held-out sentence with an ambiguous word, as tagged.
  const shown = Math.max(0, test.sentences.findIndex((s) => s.length >= 8 && s.some(([, w]) => isAmbiguous.has(w))));
  const s0 = test.sentences[shown];
  const row = Array.from({ length: s0.length }, (_, k) => {
    const z = logits.data.subarray((shown * T + k) * TAGS.length, (shown * T + k + 1) * TAGS.length);
    return `${s0[k][1]}/${TAGS[z.indexOf(Math.max(...z))]}`;
  });
  console.log(`  ${row.join(' ')}`);
  const seconds = (performance.now() - started) / 1000;
  console.log(`most frequent tag per word (no context): ${(100 * baselineRight / tokens).toFixed(1)}% of held-out tags`);
  console.log(`held-out tag accuracy ${(100 * result.accuracy).toFixed(2)}% (loss ${result.loss.toFixed(4)}), ambiguous words ${(100 * ambiguousRight / ambiguous).toFixed(2)}% of ${ambiguous}, after ${epochs} epochs in ${seconds.toFixed(1)} s`);
  console.log(JSON.stringify({
    example: 'pos-tagger', tiny, epochs, heldOutAccuracy: result.accuracy, heldOutLoss: result.loss,
    ambiguousAccuracy: ambiguousRight / ambiguous, baselineAccuracy: baselineRight / tokens, seconds,
  }));
  model.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
