// Character-level text data: the vocabulary (code points, deterministic ids, unknown-character policies,
// serialization), the train/validation split, and the next-symbol batches of SequenceDataset, whose values are
// checked against the corpus they were cut from.
import t from 'tap';
import { CharVocabulary, splitText, SequenceDataset, type TextBatch } from '../lib/data/text';
import { isRnnkitError, type RnnkitErrorCode } from '../lib/errors';

// The assertions the helper uses, shared by the root test and its subtests.
type Test = Pick<typeof t, 'ok' | 'equal' | 'match' | 'type' | 'fail'>;

function throwsCode(t: Test, fn: () => unknown, code: RnnkitErrorCode, message: RegExp, label: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof Error)) {
    t.fail(`${label}: expected ${code}, got ${err === undefined ? 'a normal return' : String(err)}`);
    return;
  }
  t.ok(isRnnkitError(err), `${label}: isRnnkitError`);
  t.equal((err as { code?: unknown }).code, code, `${label}: code (message: ${err.message})`);
  t.match(err.message, message, `${label}: message`);
  if (code === 'ERR_RNNKIT_TYPE') t.type(err, TypeError, `${label}: a TypeError`);
}

/** A fixed permutation of 0..n-1: every value marks its position, and neighbours are unrelated values. */
function permutedCorpus(n: number): Int32Array {
  const ids = Int32Array.from({ length: n }, (_, i) => i);
  let s = 12345;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [ids[i], ids[j]] = [ids[j] as number, ids[i] as number];
  }
  return ids;
}

function row(batch: TextBatch, which: 'inputs' | 'targets', b: number): number[] {
  const T = batch[which].shape[1] as number;
  return Array.from(batch[which].data.subarray(b * T, (b + 1) * T));
}

// Batches as plain arrays, for deep comparison.
function snapshot(batch: TextBatch): { inputs: number[]; targets: number[] } {
  return { inputs: Array.from(batch.inputs.data), targets: Array.from(batch.targets.data) };
}

// ---------------------------------------------------------------------------------------------------------------
// CharVocabulary

t.test('fromText: distinct characters sorted by code point, ids in that order', async (t) => {
  const v = CharVocabulary.fromText('hello world');
  t.same(v.chars, [' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
  t.equal(v.size, 8);
  t.equal(v.idOf('h'), 3);
  t.equal(v.idOf(' '), 0);
  t.equal(v.idOf('z'), undefined, 'a character outside the vocabulary has no id');
  t.equal(v.charOf(7), 'w');
  t.equal(v.unknown, 'error', "the default policy is 'error'");
  t.equal(v.replacement, undefined);
  t.same(Array.from(v.encode('hello')), [3, 2, 4, 4, 5]);
  t.ok(Object.isFrozen(v.chars), 'chars cannot be changed from outside');
});

t.test('fromText is deterministic: the same characters in any order give the same ids', async (t) => {
  const a = CharVocabulary.fromText('the quick brown fox');
  const b = CharVocabulary.fromText('xof nworb kciuq eht');
  const c = CharVocabulary.fromText('fox brown quick the the');
  t.same(b.chars, a.chars);
  t.same(c.chars, a.chars);
  t.same(Array.from(b.encode('quick')), Array.from(a.encode('quick')));
});

t.test('sorting is by code point, not by UTF-16 unit', async (t) => {
  // By UTF-16 units the astral characters (surrogates 0xD834, 0xD83D) would sort before U+FF21.
  const v = CharVocabulary.fromText('😀\uFF21a𝄞');
  t.same(v.chars, ['a', '\uFF21', '𝄞', '😀']);
});

t.test('characters outside the BMP are one character each', async (t) => {
  const text = '😀a😀\n🙂';
  const v = CharVocabulary.fromText(text);
  t.equal(v.size, 4, 'a, newline and two emoji');
  t.same(v.chars, ['\n', 'a', '😀', '🙂']);
  const ids = v.encode(text);
  t.equal(ids.length, 5, 'one id per code point (the text is 8 UTF-16 units)');
  t.same(Array.from(ids), [2, 1, 2, 0, 3]);
  t.equal(v.decode(ids), text);
  t.equal(v.idOf('😀'), 2);
  t.equal(v.charOf(3), '🙂');
});

t.test('encode/decode round trip', async (t) => {
  const text = 'First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak. 🎭';
  const v = CharVocabulary.fromText(text);
  const ids = v.encode(text);
  t.type(ids, Int32Array);
  t.equal(v.decode(ids), text);
  t.equal(v.decode(Array.from(ids)), text, 'decode takes a plain array too');
  t.equal(v.decode([]), '');
  t.equal(v.encode('').length, 0);
  for (const id of ids) t.ok(id >= 0 && id < v.size, `id ${id} in range`);
});

t.test("unknown: 'error' names the character, its code point and its position", async (t) => {
  const v = CharVocabulary.fromText('abc');
  throwsCode(t, () => v.encode('abz'), 'ERR_RNNKIT_VALUE', /"z" \(U\+007A\) at position 2\b/, 'ascii');
  throwsCode(t, () => v.encode('a😀c'), 'ERR_RNNKIT_VALUE', /"😀" \(U\+1F600\) at position 1\b/, 'emoji');
  // The position counts code points: each emoji before it is one character (two UTF-16 units).
  const e = CharVocabulary.fromText('ab😀');
  throwsCode(t, () => e.encode('😀😀a!'), 'ERR_RNNKIT_VALUE', /"!" \(U\+0021\) at position 3\b/, 'after emoji');
  throwsCode(t, () => v.encode('ab\t'), 'ERR_RNNKIT_VALUE', /"\\t" \(U\+0009\) at position 2\b/, 'invisible');
});

t.test("unknown: 'skip' drops unknown characters", async (t) => {
  const v = CharVocabulary.fromText('abc', { unknown: 'skip' });
  t.equal(v.unknown, 'skip');
  t.same(v.chars, ['a', 'b', 'c'], 'no extra symbol');
  t.same(Array.from(v.encode('xaz😀by')), [0, 1]);
  t.equal(v.encode('xyz').length, 0);
});

t.test("unknown: 'replace' adds the replacement symbol and maps unknown characters to it", async (t) => {
  const v = CharVocabulary.fromText('cab', { unknown: 'replace' });
  t.same(v.chars, ['a', 'b', 'c', '\uFFFD'], 'U+FFFD by default, sorted in');
  t.equal(v.replacement, '\uFFFD');
  t.same(Array.from(v.encode('a😀zc')), [0, 3, 3, 2]);
  t.equal(v.decode(v.encode('a😀zc')), 'a\uFFFD\uFFFDc');

  const q = CharVocabulary.fromText('b?a', { unknown: 'replace', replacement: '?' });
  t.same(q.chars, ['?', 'a', 'b'], 'a replacement already in the text is not added twice');
  t.same(Array.from(q.encode('axb')), [1, 0, 2]);

  const e = CharVocabulary.fromText('ab', { unknown: 'replace', replacement: '🤷' });
  t.same(e.chars, ['a', 'b', '🤷'], 'an astral replacement symbol');
  t.equal(e.decode(e.encode('a!b')), 'a🤷b');

  const empty = CharVocabulary.fromText('', { unknown: 'replace' });
  t.same(empty.chars, ['\uFFFD'], 'an empty text still has the replacement symbol');
});

t.test('maxSize keeps the most frequent characters, ties by code point', async (t) => {
  // a:4 c:3 b:3 d:1 e:1
  const text = 'aaaabbbcccde';
  t.same(CharVocabulary.fromText(text, { maxSize: 1 }).chars, ['a']);
  t.same(CharVocabulary.fromText(text, { maxSize: 2 }).chars, ['a', 'b'], 'b and c tie: b has the smaller code point');
  t.same(CharVocabulary.fromText(text, { maxSize: 3 }).chars, ['a', 'b', 'c']);
  t.same(CharVocabulary.fromText(text, { maxSize: 4 }).chars, ['a', 'b', 'c', 'd']);
  t.same(CharVocabulary.fromText(text, { maxSize: 100 }).chars, ['a', 'b', 'c', 'd', 'e'], 'a large maxSize keeps all');
  // Frequency wins over code point order.
  t.same(CharVocabulary.fromText('zzzya', { maxSize: 1 }).chars, ['z']);

  const strict = CharVocabulary.fromText(text, { maxSize: 3 });
  throwsCode(t, () => strict.encode(text), 'ERR_RNNKIT_VALUE', /"d" \(U\+0064\) at position 10\b/, 'dropped chars are unknown');
  const skip = CharVocabulary.fromText(text, { maxSize: 3, unknown: 'skip' });
  t.equal(skip.decode(skip.encode(text)), 'aaaabbbccc');

  // The replacement symbol takes one of the places.
  const rep = CharVocabulary.fromText(text, { maxSize: 3, unknown: 'replace' });
  t.same(rep.chars, ['a', 'b', '\uFFFD']);
  t.equal(rep.decode(rep.encode(text)), 'aaaabbb\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD');
  t.same(CharVocabulary.fromText(text, { maxSize: 1, unknown: 'replace' }).chars, ['\uFFFD']);
  // A replacement that occurs in the text is kept whatever its frequency, without a second copy.
  t.same(CharVocabulary.fromText('aaab?', { maxSize: 2, unknown: 'replace', replacement: '?' }).chars, ['?', 'a']);
});

t.test('toJSON/fromJSON round trip', async (t) => {
  const text = 'To be, or not to be 😀';
  for (const options of [{}, { unknown: 'skip' as const }, { unknown: 'replace' as const, replacement: '#' }]) {
    const v = CharVocabulary.fromText(text, options);
    const json = JSON.parse(JSON.stringify(v)) as unknown;
    const w = CharVocabulary.fromJSON(json);
    t.same(w.chars, v.chars, `${JSON.stringify(options)}: chars`);
    t.equal(w.unknown, v.unknown, `${JSON.stringify(options)}: policy`);
    t.equal(w.replacement, v.replacement, `${JSON.stringify(options)}: replacement`);
    t.same(w.toJSON(), v.toJSON(), `${JSON.stringify(options)}: toJSON again`);
    const probe = v.unknown === 'error' ? text : `${text}?!`;
    t.same(Array.from(w.encode(probe)), Array.from(v.encode(probe)), `${JSON.stringify(options)}: same ids`);
  }
  t.same(CharVocabulary.fromText('ba').toJSON(), { chars: ['a', 'b'], unknown: 'error' });
  t.same(CharVocabulary.fromText('a', { unknown: 'replace' }).toJSON(), {
    chars: ['a', '\uFFFD'],
    unknown: 'replace',
    replacement: '\uFFFD',
  });
  // A file's order is kept, sorted or not: the ids belong to the trained model.
  const file = CharVocabulary.fromJSON({ chars: ['b', '😀', 'a'], unknown: 'error' });
  t.equal(file.idOf('b'), 0);
  t.equal(file.idOf('😀'), 1);
  t.same(Array.from(file.encode('ab😀')), [2, 0, 1]);
  // toJSON returns a copy.
  const v = CharVocabulary.fromText('abc');
  v.toJSON().chars.push('d');
  t.equal(v.size, 3);
});

t.test('fromJSON validates the object', async (t) => {
  throwsCode(t, () => CharVocabulary.fromJSON(null), 'ERR_RNNKIT_TYPE', /object/, 'null');
  throwsCode(t, () => CharVocabulary.fromJSON(['a']), 'ERR_RNNKIT_TYPE', /object/, 'an array');
  throwsCode(t, () => CharVocabulary.fromJSON({ chars: 'ab', unknown: 'error' }), 'ERR_RNNKIT_TYPE', /chars/, 'chars a string');
  throwsCode(t, () => CharVocabulary.fromJSON({ chars: [], unknown: 'error' }), 'ERR_RNNKIT_ARGUMENT', /empty/, 'no chars');
  throwsCode(t, () => CharVocabulary.fromJSON({ chars: ['a', 1], unknown: 'error' }), 'ERR_RNNKIT_TYPE', /chars\[1\]/, 'a number');
  throwsCode(
    t,
    () => CharVocabulary.fromJSON({ chars: ['a', 'b', 'a'], unknown: 'error' }),
    'ERR_RNNKIT_ARGUMENT',
    /chars\[2\] "a" \(U\+0061\) duplicates vocabulary\.chars\[0\]/,
    'duplicate',
  );
  throwsCode(t, () => CharVocabulary.fromJSON({ chars: ['a', 'bc'], unknown: 'error' }), 'ERR_RNNKIT_ARGUMENT', /chars\[1\].*one character/, 'two chars');
  throwsCode(t, () => CharVocabulary.fromJSON({ chars: ['', 'b'], unknown: 'error' }), 'ERR_RNNKIT_ARGUMENT', /chars\[0\].*one character/, 'empty string');
  throwsCode(t, () => CharVocabulary.fromJSON({ chars: ['😀😀'], unknown: 'error' }), 'ERR_RNNKIT_ARGUMENT', /one character/, 'two emoji');
  t.equal(CharVocabulary.fromJSON({ chars: ['😀'], unknown: 'error' }).size, 1, 'one emoji is one character');
  throwsCode(t, () => CharVocabulary.fromJSON({ chars: ['a'] }), 'ERR_RNNKIT_TYPE', /unknown/, 'no policy');
  throwsCode(t, () => CharVocabulary.fromJSON({ chars: ['a'], unknown: 'ignore' }), 'ERR_RNNKIT_ARGUMENT', /"ignore"/, 'bad policy');
  throwsCode(t, () => CharVocabulary.fromJSON({ chars: ['a'], unknown: 'replace' }), 'ERR_RNNKIT_TYPE', /replacement/, 'no replacement');
  throwsCode(
    t,
    () => CharVocabulary.fromJSON({ chars: ['a'], unknown: 'replace', replacement: '?' }),
    'ERR_RNNKIT_ARGUMENT',
    /"\?" is not in vocabulary\.chars/,
    'replacement not in chars',
  );
  throwsCode(
    t,
    () => CharVocabulary.fromJSON({ chars: ['a', '?'], unknown: 'skip', replacement: '?' }),
    'ERR_RNNKIT_ARGUMENT',
    /only with unknown: 'replace'/,
    'replacement with another policy',
  );
});

t.test('fromText validates its arguments', async (t) => {
  throwsCode(t, () => CharVocabulary.fromText(42 as unknown as string), 'ERR_RNNKIT_TYPE', /text must be a string/, 'text');
  throwsCode(t, () => CharVocabulary.fromText(''), 'ERR_RNNKIT_ARGUMENT', /empty/, 'empty text');
  throwsCode(t, () => CharVocabulary.fromText('a', null as unknown as {}), 'ERR_RNNKIT_TYPE', /options/, 'null options');
  throwsCode(
    t,
    () => CharVocabulary.fromText('a', { unknown: 'ignore' as 'skip' }),
    'ERR_RNNKIT_ARGUMENT',
    /'error', 'skip' or 'replace'.*"ignore"/,
    'policy',
  );
  throwsCode(t, () => CharVocabulary.fromText('a', { unknown: 'replace', replacement: 'ab' }), 'ERR_RNNKIT_ARGUMENT', /one character/, 'long replacement');
  throwsCode(t, () => CharVocabulary.fromText('a', { unknown: 'replace', replacement: '' }), 'ERR_RNNKIT_ARGUMENT', /one character/, 'empty replacement');
  throwsCode(
    t,
    () => CharVocabulary.fromText('a', { unknown: 'replace', replacement: 63 as unknown as string }),
    'ERR_RNNKIT_TYPE',
    /replacement must be a string/,
    'replacement type',
  );
  throwsCode(t, () => CharVocabulary.fromText('a', { replacement: '?' }), 'ERR_RNNKIT_ARGUMENT', /only with unknown: 'replace'/, 'replacement without replace');
  throwsCode(t, () => CharVocabulary.fromText('a', { maxSize: 0 }), 'ERR_RNNKIT_ARGUMENT', /maxSize must be a positive integer, got 0/, 'maxSize 0');
  throwsCode(t, () => CharVocabulary.fromText('a', { maxSize: 2.5 }), 'ERR_RNNKIT_ARGUMENT', /maxSize/, 'maxSize 2.5');
  throwsCode(t, () => CharVocabulary.fromText('a', { maxSize: '2' as unknown as number }), 'ERR_RNNKIT_TYPE', /maxSize must be a number/, 'maxSize type');
});

t.test('lookups and decode reject bad ids and arguments', async (t) => {
  const v = CharVocabulary.fromText('abc');
  throwsCode(t, () => v.charOf(3), 'ERR_RNNKIT_VALUE', /id = 3 .*0 to 2/, 'charOf past the end');
  throwsCode(t, () => v.charOf(-1), 'ERR_RNNKIT_VALUE', /id = -1/, 'charOf negative');
  throwsCode(t, () => v.charOf(0.5), 'ERR_RNNKIT_VALUE', /id = 0\.5/, 'charOf fraction');
  throwsCode(t, () => v.decode([0, 1, 3]), 'ERR_RNNKIT_VALUE', /ids\[2\] = 3/, 'decode past the end');
  throwsCode(t, () => v.decode(Int32Array.of(0, -2)), 'ERR_RNNKIT_VALUE', /ids\[1\] = -2/, 'decode negative');
  throwsCode(t, () => v.decode([NaN]), 'ERR_RNNKIT_VALUE', /ids\[0\] = NaN/, 'decode NaN');
  throwsCode(t, () => v.decode(null as unknown as number[]), 'ERR_RNNKIT_TYPE', /ids must be/, 'decode null');
  throwsCode(t, () => v.idOf('ab'), 'ERR_RNNKIT_ARGUMENT', /one character/, 'idOf two characters');
  throwsCode(t, () => v.idOf(''), 'ERR_RNNKIT_ARGUMENT', /one character/, 'idOf empty');
  throwsCode(t, () => v.idOf(97 as unknown as string), 'ERR_RNNKIT_TYPE', /ch must be a string/, 'idOf number');
  throwsCode(t, () => v.encode(undefined as unknown as string), 'ERR_RNNKIT_TYPE', /text must be a string/, 'encode undefined');
});

// ---------------------------------------------------------------------------------------------------------------
// splitText

t.test('splitText: the first 1 - f for training, the rest for validation', async (t) => {
  const text = 'abcdefghij';
  t.same(splitText(text, 0.1), { train: 'abcdefghi', validation: 'j' });
  t.same(splitText(text), { train: 'abcdefghi', validation: 'j' }, 'the default fraction is 0.1');
  t.same(splitText(text, 0.3), { train: 'abcdefg', validation: 'hij' });
  t.same(splitText(text, 0), { train: text, validation: '' });
  t.same(splitText(text, 0.99), { train: '', validation: text });
  t.same(splitText('', 0.5), { train: '', validation: '' });
  for (const f of [0, 0.05, 0.1, 0.25, 0.5, 0.77, 0.999]) {
    const { train, validation } = splitText(text, f);
    t.equal(train + validation, text, `f = ${f}: the parts make the text`);
  }
});

t.test('splitText cuts on a code-point boundary', async (t) => {
  const emoji = '😀'.repeat(10);
  const { train, validation } = splitText(emoji, 0.1);
  t.equal(validation, '😀', 'one emoji (two UTF-16 units) for validation');
  t.equal(train, '😀'.repeat(9));
  t.same(splitText('a😀b😀c', 0.4), { train: 'a😀b', validation: '😀c' }, 'counts code points, not UTF-16 units');
  t.same(splitText('😀a', 0.5), { train: '😀', validation: 'a' });
});

t.test('splitText validates its arguments', async (t) => {
  throwsCode(t, () => splitText('abc', 1), 'ERR_RNNKIT_ARGUMENT', /\[0, 1\), got 1/, 'f = 1');
  throwsCode(t, () => splitText('abc', -0.1), 'ERR_RNNKIT_ARGUMENT', /got -0\.1/, 'negative');
  throwsCode(t, () => splitText('abc', NaN), 'ERR_RNNKIT_ARGUMENT', /got NaN/, 'NaN');
  throwsCode(t, () => splitText('abc', '0.1' as unknown as number), 'ERR_RNNKIT_TYPE', /validationFraction must be a number/, 'string fraction');
  throwsCode(t, () => splitText(null as unknown as string), 'ERR_RNNKIT_TYPE', /text must be a string/, 'text');
});

// ---------------------------------------------------------------------------------------------------------------
// SequenceDataset: random batches

t.test('randomBatch: shapes, and targets are the inputs shifted by one in the corpus', async (t) => {
  const corpus = permutedCorpus(200);
  const position = new Map(Array.from(corpus, (id, i) => [id, i]));
  const ds = new SequenceDataset(corpus, { seqLength: 7, batchSize: 5, seed: 3 });
  t.equal(ds.size, 200);
  t.equal(ds.seqLength, 7);
  t.equal(ds.batchSize, 5);
  for (let n = 0; n < 20; n++) {
    const batch = ds.randomBatch();
    t.same(batch.inputs.shape, [5, 7]);
    t.same(batch.targets.shape, [5, 7]);
    t.type(batch.inputs.data, Int32Array);
    t.type(batch.targets.data, Int32Array);
    t.equal(batch.inputs.data.length, 35);
    t.equal(batch.targets.data.length, 35);
    for (let b = 0; b < 5; b++) {
      const start = position.get(row(batch, 'inputs', b)[0] as number) as number;
      t.ok(start >= 0 && start <= 200 - 7 - 1, `start ${start} in range`);
      t.same(row(batch, 'inputs', b), Array.from(corpus.subarray(start, start + 7)), `batch ${n} row ${b}: inputs`);
      t.same(row(batch, 'targets', b), Array.from(corpus.subarray(start + 1, start + 8)), `batch ${n} row ${b}: targets`);
    }
  }
});

t.test('randomBatch on encoded text: each row and its targets are a window of the text', async (t) => {
  const text = 'It was the best of times, it was the worst of times, it was the age of wisdom 📚';
  const vocab = CharVocabulary.fromText(text);
  const ds = new SequenceDataset(vocab.encode(text), { seqLength: 10, batchSize: 4, seed: 9 });
  const batch = ds.randomBatch();
  for (let b = 0; b < 4; b++) {
    const inputs = vocab.decode(row(batch, 'inputs', b));
    const targets = vocab.decode(row(batch, 'targets', b));
    t.equal([...inputs].length, 10);
    t.equal([...targets].slice(0, 9).join(''), [...inputs].slice(1).join(''), `row ${b}: shifted by one`);
    t.ok(text.includes(inputs + [...targets].pop()), `row ${b}: ${JSON.stringify(inputs)} + next char is in the text`);
  }
});

t.test('randomBatch start positions cover [0, size - seqLength - 1] and nothing else', async (t) => {
  const corpus = Int32Array.from({ length: 8 }, (_, i) => i); // value = position
  const ds = new SequenceDataset(corpus, { seqLength: 5, batchSize: 16, seed: 1 });
  const seen = new Set<number>();
  for (let n = 0; n < 20; n++) {
    const batch = ds.randomBatch();
    for (let b = 0; b < 16; b++) seen.add(batch.inputs.data[b * 5] as number);
  }
  t.same([...seen].sort(), [0, 1, 2], 'every window start, including the last one, and no other');

  const tight = new SequenceDataset(Int32Array.of(4, 5, 6), { seqLength: 2, batchSize: 3 });
  const batch = tight.randomBatch();
  t.same(snapshot(batch), { inputs: [4, 5, 4, 5, 4, 5], targets: [5, 6, 5, 6, 5, 6] }, 'size = seqLength + 1: one window');
});

t.test('a seed reproduces the batches', async (t) => {
  const corpus = permutedCorpus(5000);
  const run = (seed?: number): { inputs: number[]; targets: number[] }[] => {
    const ds = new SequenceDataset(corpus, { seqLength: 16, batchSize: 8, ...(seed === undefined ? {} : { seed }) });
    return Array.from({ length: 5 }, () => snapshot(ds.randomBatch()));
  };
  t.same(run(42), run(42), 'same seed, same batches');
  t.notSame(run(42), run(43), 'another seed, other batches');
  t.same(run(), run(), 'no seed: still deterministic');
  t.same(run(), run(0), 'the default seed is 0');
  t.same(run(0xffffffff), run(0xffffffff), 'the largest seed');
  // Successive batches of one run differ (the generator advances).
  const [first, second] = run(42);
  t.notSame(first, second);
});

t.test('getState/setState resume the random batches exactly', async (t) => {
  const corpus = permutedCorpus(3000);
  const options = { seqLength: 12, batchSize: 6, seed: 2024 };
  const straight = new SequenceDataset(corpus, options);
  for (let n = 0; n < 3; n++) straight.randomBatch();
  const saved = JSON.parse(JSON.stringify(straight.getState())) as number[]; // as a checkpoint file would keep it
  const expected = Array.from({ length: 4 }, () => snapshot(straight.randomBatch()));

  const resumed = new SequenceDataset(corpus, { ...options, seed: 7 });
  resumed.randomBatch();
  resumed.setState(saved);
  t.same(resumed.getState(), saved);
  const got = Array.from({ length: 4 }, () => snapshot(resumed.randomBatch()));
  t.same(got, expected, 'the batches after setState are those of the uninterrupted run');
  t.same(resumed.getState(), straight.getState(), 'and the generators end in the same state');

  // getState hands out a copy.
  const state = resumed.getState();
  state[0] = 123;
  t.notSame(resumed.getState(), state);
  t.not(straight.getState()[0], saved[0], 'drawing advances the state');
});

t.test('setState validates the state', async (t) => {
  const ds = new SequenceDataset(permutedCorpus(50), { seqLength: 4, batchSize: 2 });
  throwsCode(t, () => ds.setState(5 as unknown as number[]), 'ERR_RNNKIT_TYPE', /state must be an array/, 'not an array');
  throwsCode(t, () => ds.setState([]), 'ERR_RNNKIT_ARGUMENT', /1 number, got 0/, 'empty');
  throwsCode(t, () => ds.setState([1, 2]), 'ERR_RNNKIT_ARGUMENT', /1 number, got 2/, 'two numbers');
  throwsCode(t, () => ds.setState([-1]), 'ERR_RNNKIT_ARGUMENT', /state\[0\].*got -1/, 'negative');
  throwsCode(t, () => ds.setState([1.5]), 'ERR_RNNKIT_ARGUMENT', /state\[0\].*got 1\.5/, 'fraction');
  throwsCode(t, () => ds.setState([2 ** 32]), 'ERR_RNNKIT_ARGUMENT', /state\[0\]/, 'too large');
  throwsCode(t, () => ds.setState(['1'] as unknown as number[]), 'ERR_RNNKIT_TYPE', /state\[0\] must be a number/, 'string');
  t.same(ds.getState(), [0], 'a rejected state leaves the dataset untouched');
});

// ---------------------------------------------------------------------------------------------------------------
// SequenceDataset: sequential batches

t.test('sequentialBatches: values, shapes, first flag, dropped tail', async (t) => {
  // 50 ids, 3 streams of floor(49 / 3) = 16 input positions, 4 whole chunks of 4 each; ids 48 and 49 are left.
  const corpus = permutedCorpus(50);
  const ds = new SequenceDataset(corpus, { seqLength: 4, batchSize: 3, seed: 5 });
  t.equal(ds.batchesPerEpoch, 4);
  const stateBefore = ds.getState();
  const batches = [...ds.sequentialBatches()];
  t.equal(batches.length, 4, 'batchesPerEpoch batches, no partial one');
  batches.forEach((batch, k) => {
    t.equal(batch.first, k === 0, `batch ${k}: first`);
    t.same(batch.inputs.shape, [3, 4]);
    t.same(batch.targets.shape, [3, 4]);
    t.type(batch.inputs.data, Int32Array);
    t.type(batch.targets.data, Int32Array);
    for (let b = 0; b < 3; b++) {
      const start = b * 16 + k * 4;
      t.same(row(batch, 'inputs', b), Array.from(corpus.subarray(start, start + 4)), `batch ${k} row ${b}: inputs`);
      t.same(row(batch, 'targets', b), Array.from(corpus.subarray(start + 1, start + 5)), `batch ${k} row ${b}: targets`);
    }
  });
  t.same(ds.getState(), stateBefore, 'sequential batches use no randomness');

  // A second pass starts over, with first set again.
  const again = [...ds.sequentialBatches()];
  t.same(again.map((b) => b.first), [true, false, false, false]);
  t.same(again.map(snapshot), batches.map(snapshot));
});

t.test('sequentialBatches: row b of batch k + 1 continues row b of batch k', async (t) => {
  const corpus = permutedCorpus(1001);
  const T = 7;
  const B = 5;
  const ds = new SequenceDataset(corpus, { seqLength: T, batchSize: B });
  const batches = [...ds.sequentialBatches()];
  t.equal(batches.length, Math.floor(1000 / B / T));
  t.equal(batches.length, ds.batchesPerEpoch);
  const position = new Map(Array.from(corpus, (id, i) => [id, i]));
  const used = new Set<number>();
  for (let b = 0; b < B; b++) {
    const stream: number[] = [];
    for (let k = 0; k < batches.length; k++) {
      const batch = batches[k] as TextBatch;
      const inputs = row(batch, 'inputs', b);
      const targets = row(batch, 'targets', b);
      if (k > 0) {
        const previous = batches[k - 1] as TextBatch;
        t.equal(inputs[0], row(previous, 'targets', b)[T - 1], `row ${b}: batch ${k} starts where batch ${k - 1}'s targets end`);
      }
      t.same(targets.slice(0, T - 1), inputs.slice(1), `row ${b} batch ${k}: shifted by one`);
      stream.push(...inputs);
    }
    // The row's inputs over the pass are one contiguous piece of the corpus, of the same length for every row.
    const start = position.get(stream[0] as number) as number;
    t.same(stream, Array.from(corpus.subarray(start, start + stream.length)), `row ${b}: one contiguous stream`);
    t.equal(stream.length, batches.length * T);
    for (const id of stream) used.add(position.get(id) as number);
  }
  t.equal(used.size, B * batches.length * T, 'the streams do not overlap');
});

t.test('sequentialBatches on a corpus of exactly one batch, and one too short', async (t) => {
  const exact = new SequenceDataset(Int32Array.from({ length: 13 }, (_, i) => i), { seqLength: 4, batchSize: 3 });
  t.equal(exact.batchesPerEpoch, 1);
  const [only, ...rest] = [...exact.sequentialBatches()];
  t.equal(rest.length, 0);
  t.same(snapshot(only as TextBatch), {
    inputs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    targets: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
  });
  t.equal(only?.first, true);

  const short = new SequenceDataset(Int32Array.from({ length: 12 }, (_, i) => i), { seqLength: 4, batchSize: 3 });
  t.equal(short.batchesPerEpoch, 0);
  throwsCode(t, () => short.sequentialBatches(), 'ERR_RNNKIT_ARGUMENT', /12 ids.*3 x 4 needs at least 13/, 'too short');
  t.equal(short.randomBatch().inputs.data.length, 12, 'random batches still work');
});

t.test('SequenceDataset validates its arguments', async (t) => {
  const ids = Int32Array.from({ length: 10 }, (_, i) => i);
  const make = (options: unknown, data: unknown = ids) => () =>
    new SequenceDataset(data as Int32Array, options as { seqLength: number; batchSize: number });
  throwsCode(t, make({ seqLength: 2, batchSize: 1 }, [0, 1, 2]), 'ERR_RNNKIT_TYPE', /Int32Array/, 'plain array');
  throwsCode(t, make(undefined), 'ERR_RNNKIT_TYPE', /options must be an object/, 'no options');
  throwsCode(t, make({ seqLength: 10, batchSize: 1 }), 'ERR_RNNKIT_ARGUMENT', /10 ids; seqLength 10 needs at least 11/, 'too short');
  t.equal(new SequenceDataset(ids, { seqLength: 9, batchSize: 1 }).size, 10, 'size = seqLength + 1 is enough');
  throwsCode(t, make({ seqLength: 0, batchSize: 1 }), 'ERR_RNNKIT_ARGUMENT', /seqLength must be a positive integer, got 0/, 'seqLength 0');
  throwsCode(t, make({ seqLength: -2, batchSize: 1 }), 'ERR_RNNKIT_ARGUMENT', /seqLength.*-2/, 'seqLength negative');
  throwsCode(t, make({ seqLength: 2.5, batchSize: 1 }), 'ERR_RNNKIT_ARGUMENT', /seqLength.*2\.5/, 'seqLength fraction');
  throwsCode(t, make({ seqLength: '4', batchSize: 1 }), 'ERR_RNNKIT_TYPE', /seqLength must be a number/, 'seqLength string');
  throwsCode(t, make({ seqLength: 2 }), 'ERR_RNNKIT_TYPE', /batchSize must be a number, got undefined/, 'no batchSize');
  throwsCode(t, make({ seqLength: 2, batchSize: 0 }), 'ERR_RNNKIT_ARGUMENT', /batchSize must be a positive integer, got 0/, 'batchSize 0');
  throwsCode(t, make({ seqLength: 2, batchSize: Infinity }), 'ERR_RNNKIT_ARGUMENT', /batchSize.*Infinity/, 'batchSize infinite');
  throwsCode(t, make({ seqLength: 2, batchSize: 1, seed: -1 }), 'ERR_RNNKIT_ARGUMENT', /seed must be an integer in \[0, 2\^32\), got -1/, 'seed negative');
  throwsCode(t, make({ seqLength: 2, batchSize: 1, seed: 0.5 }), 'ERR_RNNKIT_ARGUMENT', /seed/, 'seed fraction');
  throwsCode(t, make({ seqLength: 2, batchSize: 1, seed: 2 ** 32 }), 'ERR_RNNKIT_ARGUMENT', /seed/, 'seed too large');
  throwsCode(t, make({ seqLength: 2, batchSize: 1, seed: '1' }), 'ERR_RNNKIT_TYPE', /seed must be a number/, 'seed string');
  throwsCode(t, make({ seqLength: 2, batchSize: 1 }, Int32Array.of(0, 1, -3, 2)), 'ERR_RNNKIT_VALUE', /ids\[2\] = -3 is negative/, 'negative id');
});

t.test('an unknown option name is an error that suggests the known one', async (t) => {
  throwsCode(t, () => CharVocabulary.fromText('abc', { unknwon: 'skip' } as never), 'ERR_RNNKIT_ARGUMENT', /unknown option 'unknwon' in CharVocabulary.fromText options: did you mean 'unknown'\?/, 'fromText');
  throwsCode(t, () => CharVocabulary.fromText('abc', { max_size: 2 } as never), 'ERR_RNNKIT_ARGUMENT', /'max_size'.*did you mean 'maxSize'/, 'fromText, snake case');
  const ids = Int32Array.from({ length: 50 }, (_, i) => i % 7);
  throwsCode(t, () => new SequenceDataset(ids, { seqLen: 4, batchSize: 2 } as never), 'ERR_RNNKIT_ARGUMENT', /unknown option 'seqLen' in SequenceDataset options: did you mean 'seqLength'\?/, 'SequenceDataset');
  t.ok(new SequenceDataset(ids, { seqLength: 4, batchSize: 2, seed: 1 }), 'the known names still pass');
});
