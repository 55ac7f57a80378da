// Text data for a character-level language model (char-rnn): a vocabulary of Unicode code points, a train/validation
// split, and a dataset that cuts the encoded corpus into next-symbol-prediction batches. Everything here is plain
// JavaScript; the batches it makes are the `tokens` (batch-first) and `classes` that RecurrentNetwork takes.
import { rnnkitError } from '../errors';
import { checkOptions } from '../options';
import type { IntTensor } from '../tensor';

/** What `encode` does with a character that is not in the vocabulary. */
export type UnknownPolicy = 'error' | 'skip' | 'replace';

/** Options of {@link CharVocabulary.fromText}. */
export interface CharVocabularyOptions {
  /** 'error' (default) throws ERR_RNNKIT_VALUE, 'skip' drops the character, 'replace' maps it to `replacement`. */
  unknown?: UnknownPolicy;
  /** The symbol unknown characters become under 'replace' (default U+FFFD); one code point. */
  replacement?: string;
  /**
   * Keep at most this many symbols (the replacement symbol included): the most frequent characters, ties broken by
   * the smaller code point. The others are unknown characters, handled by the policy.
   */
  maxSize?: number;
}

/** The serialized form of a {@link CharVocabulary}: `chars[id]` is the symbol of `id`. */
export interface CharVocabularyJSON {
  chars: string[];
  unknown: UnknownPolicy;
  /** Present exactly when `unknown` is 'replace'. */
  replacement?: string;
}

const DEFAULT_REPLACEMENT = '\uFFFD';
const POLICIES: readonly UnknownPolicy[] = ['error', 'skip', 'replace'];

/** `"x" (U+0078)`: readable, and unambiguous for invisible or look-alike characters. */
function describeChar(ch: string): string {
  const hex = (ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
  return `${JSON.stringify(ch)} (U+${hex})`;
}

/** True for a string of exactly one code point (an astral character is two UTF-16 units but one code point). */
function isSingleCodePoint(s: string): boolean {
  if (s.length === 0 || s.length > 2) return false;
  const cp = s.codePointAt(0) as number;
  return s.length === (cp > 0xffff ? 2 : 1);
}

function byCodePoint(a: string, b: string): number {
  return (a.codePointAt(0) as number) - (b.codePointAt(0) as number);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Not a type guard: narrowing typed options to a record would erase their field types.
function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkPositiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number') throw rnnkitError('ERR_RNNKIT_TYPE', `${name} must be a number, got ${typeof value}`);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw rnnkitError('ERR_RNNKIT_ARGUMENT', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function checkString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw rnnkitError('ERR_RNNKIT_TYPE', `${name} must be a string, got ${typeof value}`);
  return value;
}

/**
 * A character vocabulary: each distinct Unicode code point of a corpus gets an id, in code-point order, so the same
 * text always gives the same ids. Immutable; serialize it with `toJSON` so a saved model keeps its ids.
 */
export class CharVocabulary {
  readonly #chars: readonly string[];
  // Keyed by code point rather than by string: a number key is cheaper to hash on a multi-megabyte corpus.
  readonly #ids: Map<number, number>;
  readonly #unknown: UnknownPolicy;
  readonly #replacement: string | undefined;
  readonly #replacementId: number;

  private constructor(chars: readonly string[], unknown: UnknownPolicy, replacement: string | undefined) {
    this.#chars = Object.freeze([...chars]);
    this.#ids = new Map(chars.map((ch, id) => [ch.codePointAt(0) as number, id]));
    this.#unknown = unknown;
    this.#replacement = replacement;
    this.#replacementId = replacement === undefined ? -1 : (this.#ids.get(replacement.codePointAt(0) as number) ?? -1);
  }

  /**
   * The vocabulary of `text`: its distinct code points sorted by code point, plus the replacement symbol under
   * 'replace'. Throws ERR_RNNKIT_ARGUMENT for bad options or when the vocabulary would be empty.
   */
  static fromText(text: string, options: CharVocabularyOptions = {}): CharVocabulary {
    checkString(text, 'text');
    if (!isObject(options)) throw rnnkitError('ERR_RNNKIT_TYPE', 'options must be an object');
    checkOptions(options, 'CharVocabulary.fromText options', ['unknown', 'replacement', 'maxSize']);
    const unknown = options.unknown ?? 'error';
    if (!POLICIES.includes(unknown)) {
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', `unknown must be 'error', 'skip' or 'replace', got ${JSON.stringify(unknown)}`);
    }
    let replacement: string | undefined;
    if (unknown === 'replace') {
      replacement = checkString(options.replacement ?? DEFAULT_REPLACEMENT, 'replacement');
      if (!isSingleCodePoint(replacement)) {
        throw rnnkitError('ERR_RNNKIT_ARGUMENT', `replacement must be one character, got ${JSON.stringify(replacement)}`);
      }
    } else if (options.replacement !== undefined) {
      // Silently ignoring it would hide a forgotten `unknown: 'replace'`.
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', `replacement is used only with unknown: 'replace' (unknown is '${unknown}')`);
    }
    const maxSize = options.maxSize === undefined ? undefined : checkPositiveInteger(options.maxSize, 'maxSize');

    const counts = new Map<string, number>();
    for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    let chars = [...counts.keys()];
    if (replacement !== undefined) chars = chars.filter((ch) => ch !== replacement);
    if (maxSize !== undefined) {
      // The replacement symbol always stays (unknown characters need it), so it takes one of the maxSize places.
      const keep = replacement === undefined ? maxSize : maxSize - 1;
      chars.sort((a, b) => (counts.get(b) as number) - (counts.get(a) as number) || byCodePoint(a, b));
      chars = chars.slice(0, keep);
    }
    if (replacement !== undefined) chars.push(replacement);
    if (chars.length === 0) throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'the text has no characters: the vocabulary would be empty');
    chars.sort(byCodePoint);
    return new CharVocabulary(chars, unknown, replacement);
  }

  /**
   * Rebuild a vocabulary from `toJSON()`'s object, keeping its ids. Throws ERR_RNNKIT_TYPE for wrong types and
   * ERR_RNNKIT_ARGUMENT for bad contents (an empty list, an entry that is not one character, a duplicate, a bad
   * policy, a replacement symbol that is missing from `chars`).
   */
  static fromJSON(obj: unknown): CharVocabulary {
    if (!isPlainObject(obj)) throw rnnkitError('ERR_RNNKIT_TYPE', 'a vocabulary must be an object { chars, unknown }');
    const { chars, unknown, replacement } = obj;
    if (!Array.isArray(chars)) throw rnnkitError('ERR_RNNKIT_TYPE', 'vocabulary.chars must be an array of strings');
    if (chars.length === 0) throw rnnkitError('ERR_RNNKIT_ARGUMENT', 'vocabulary.chars is empty');
    const seen = new Map<string, number>();
    chars.forEach((ch: unknown, id: number) => {
      if (typeof ch !== 'string') throw rnnkitError('ERR_RNNKIT_TYPE', `vocabulary.chars[${id}] must be a string, got ${typeof ch}`);
      if (!isSingleCodePoint(ch)) {
        throw rnnkitError('ERR_RNNKIT_ARGUMENT', `vocabulary.chars[${id}] must be one character, got ${JSON.stringify(ch)}`);
      }
      const first = seen.get(ch);
      if (first !== undefined) {
        throw rnnkitError('ERR_RNNKIT_ARGUMENT', `vocabulary.chars[${id}] ${describeChar(ch)} duplicates vocabulary.chars[${first}]`);
      }
      seen.set(ch, id);
    });
    if (typeof unknown !== 'string') throw rnnkitError('ERR_RNNKIT_TYPE', 'vocabulary.unknown must be a string');
    if (!(POLICIES as readonly string[]).includes(unknown)) {
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', `vocabulary.unknown must be 'error', 'skip' or 'replace', got ${JSON.stringify(unknown)}`);
    }
    if (unknown === 'replace') {
      const r = checkString(replacement, 'vocabulary.replacement');
      if (!seen.has(r)) {
        throw rnnkitError('ERR_RNNKIT_ARGUMENT', `vocabulary.replacement ${JSON.stringify(r)} is not in vocabulary.chars`);
      }
      return new CharVocabulary(chars as string[], unknown, r);
    }
    if (replacement !== undefined) {
      throw rnnkitError('ERR_RNNKIT_ARGUMENT', `vocabulary.replacement is used only with unknown: 'replace'`);
    }
    return new CharVocabulary(chars as string[], unknown as UnknownPolicy, undefined);
  }

  /** The number of symbols: the `vocabSize` of a network over this vocabulary. */
  get size(): number {
    return this.#chars.length;
  }

  /** The symbols, `chars[id]` being the symbol of `id`. */
  get chars(): readonly string[] {
    return this.#chars;
  }

  /** The policy `encode` applies to characters outside the vocabulary. */
  get unknown(): UnknownPolicy {
    return this.#unknown;
  }

  /** The symbol unknown characters map to under 'replace'; undefined under the other policies. */
  get replacement(): string | undefined {
    return this.#replacement;
  }

  /** The id of one character, or undefined when it is not in the vocabulary (no policy applies here). */
  idOf(ch: string): number | undefined {
    checkString(ch, 'ch');
    if (!isSingleCodePoint(ch)) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `idOf takes one character, got ${JSON.stringify(ch)}`);
    return this.#ids.get(ch.codePointAt(0) as number);
  }

  /** The symbol of `id`; ERR_RNNKIT_VALUE when `id` is not an integer in [0, size). */
  charOf(id: number): string {
    this.#checkId(id, 'id');
    return this.#chars[id] as string;
  }

  /**
   * The ids of the characters of `text`, one per code point, unknown characters handled by the policy. Under
   * 'error' the ERR_RNNKIT_VALUE names the character and its position (counted in code points).
   */
  encode(text: string): Int32Array {
    checkString(text, 'text');
    // text.length (UTF-16 units) bounds the number of code points; trim after.
    const out = new Int32Array(text.length);
    let n = 0;
    let position = 0;
    for (const ch of text) {
      const id = this.#ids.get(ch.codePointAt(0) as number);
      if (id !== undefined) out[n++] = id;
      else if (this.#unknown === 'replace') out[n++] = this.#replacementId;
      else if (this.#unknown === 'error') {
        throw rnnkitError('ERR_RNNKIT_VALUE', `character ${describeChar(ch)} at position ${position} is not in the vocabulary`);
      }
      position++;
    }
    // A copy rather than a view, so a large over-allocated buffer is not kept alive.
    return n === out.length ? out : out.slice(0, n);
  }

  /** The text of `ids`; ERR_RNNKIT_VALUE for an id that is not an integer in [0, size). */
  decode(ids: ArrayLike<number>): string {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw rnnkitError('ERR_RNNKIT_TYPE', 'ids must be an array or typed array of numbers');
    }
    const parts = new Array<string>(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      this.#checkId(id, `ids[${i}]`);
      parts[i] = this.#chars[id] as string;
    }
    return parts.join('');
  }

  /** A plain, JSON-safe object that {@link CharVocabulary.fromJSON} turns back into this vocabulary. */
  toJSON(): CharVocabularyJSON {
    const json: CharVocabularyJSON = { chars: [...this.#chars], unknown: this.#unknown };
    if (this.#replacement !== undefined) json.replacement = this.#replacement;
    return json;
  }

  #checkId(id: unknown, name: string): void {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.#chars.length) {
      throw rnnkitError('ERR_RNNKIT_VALUE', `${name} = ${String(id)} is not an id of this vocabulary (0 to ${this.#chars.length - 1})`);
    }
  }
}

/**
 * Split a corpus in two: the first part for training, the last `round(n * validationFraction)` characters (n in
 * code points) for validation. The cut never falls inside a surrogate pair. ERR_RNNKIT_ARGUMENT unless
 * 0 <= validationFraction < 1.
 */
export function splitText(text: string, validationFraction = 0.1): { train: string; validation: string } {
  checkString(text, 'text');
  if (typeof validationFraction !== 'number') {
    throw rnnkitError('ERR_RNNKIT_TYPE', `validationFraction must be a number, got ${typeof validationFraction}`);
  }
  if (!(validationFraction >= 0 && validationFraction < 1)) {
    throw rnnkitError('ERR_RNNKIT_ARGUMENT', `validationFraction must be in [0, 1), got ${validationFraction}`);
  }
  let n = 0;
  for (const _ of text) n++;
  let trainChars = n - Math.round(n * validationFraction);
  // Walk trainChars code points to find the UTF-16 offset of the cut.
  let offset = 0;
  while (trainChars-- > 0) offset += (text.codePointAt(offset) as number) > 0xffff ? 2 : 1;
  return { train: text.slice(0, offset), validation: text.slice(offset) };
}

/** Options of {@link SequenceDataset}. */
export interface SequenceDatasetOptions {
  /** Time steps per batch row (the truncated-BPTT length). */
  seqLength: number;
  /** Rows per batch. */
  batchSize: number;
  /** Seed of the dataset's own random generator (an integer in [0, 2^32); default 0), for reproducible batches. */
  seed?: number;
}

/** Next-symbol-prediction data: `targets[b][t]` is the symbol that follows `inputs[b][t]` in the corpus. */
export interface TextBatch {
  /** `[batchSize, seqLength]` ids, row-major (pass with `batchFirst: true`). */
  inputs: IntTensor & { data: Int32Array };
  /** `[batchSize, seqLength]` ids, the inputs shifted by one. */
  targets: IntTensor & { data: Int32Array };
}

/** A batch of {@link SequenceDataset.sequentialBatches}. */
export interface SequentialTextBatch extends TextBatch {
  /** The first batch of the pass: reset the carried recurrent state before it. */
  first: boolean;
}

/** One step of mulberry32: a small 32-bit-state generator, enough for picking windows and trivially checkpointed. */
function mulberry32(state: number): { state: number; value: number } {
  const s = (state + 0x6d2b79f5) >>> 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 15), z | 1);
  z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
  return { state: s, value: (z ^ (z >>> 14)) >>> 0 };
}

function checkSeed(value: unknown, name: string): number {
  if (typeof value !== 'number') throw rnnkitError('ERR_RNNKIT_TYPE', `${name} must be a number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw rnnkitError('ERR_RNNKIT_ARGUMENT', `${name} must be an integer in [0, 2^32), got ${value}`);
  }
  return value;
}

/**
 * Input/target batches cut from an encoded corpus, the targets being the inputs shifted by one symbol. The corpus
 * is kept by reference, not copied (corpora can be large): do not modify it while the dataset is in use.
 */
export class SequenceDataset {
  /** Time steps per batch row. */
  readonly seqLength: number;
  /** Rows per batch. */
  readonly batchSize: number;
  readonly #ids: Int32Array;
  #state: number;

  constructor(ids: Int32Array, options: SequenceDatasetOptions) {
    if (!(ids instanceof Int32Array)) throw rnnkitError('ERR_RNNKIT_TYPE', 'ids must be an Int32Array (see CharVocabulary.encode)');
    if (!isObject(options)) throw rnnkitError('ERR_RNNKIT_TYPE', 'options must be an object { seqLength, batchSize, seed? }');
    checkOptions(options, 'SequenceDataset options', ['seqLength', 'batchSize', 'seed']);
    this.seqLength = checkPositiveInteger(options.seqLength, 'seqLength');
    this.batchSize = checkPositiveInteger(options.batchSize, 'batchSize');
    this.#state = options.seed === undefined ? 0 : checkSeed(options.seed, 'seed');
    if (ids.length < this.seqLength + 1) {
      throw rnnkitError(
        'ERR_RNNKIT_ARGUMENT',
        `the corpus has ${ids.length} ids; seqLength ${this.seqLength} needs at least ${this.seqLength + 1} (inputs plus the next symbol)`,
      );
    }
    // A negative id would reach the network as a bad token far from its cause; say where it is now.
    const bad = ids.findIndex((id) => id < 0);
    if (bad >= 0) throw rnnkitError('ERR_RNNKIT_VALUE', `ids[${bad}] = ${ids[bad]} is negative`);
    this.#ids = ids;
  }

  /** The length of the corpus, in ids. */
  get size(): number {
    return this.#ids.length;
  }

  /**
   * Batches per pass of {@link sequentialBatches}: each of the batchSize streams holds floor((size - 1) / batchSize)
   * input positions (one id is kept back as the last target), cut into whole seqLength chunks.
   */
  get batchesPerEpoch(): number {
    return Math.floor(this.#streamLength() / this.seqLength);
  }

  /**
   * batchSize windows of seqLength + 1 ids at uniform random start positions in [0, size - seqLength - 1]:
   * inputs are each window's first seqLength ids, targets its last seqLength.
   */
  randomBatch(): TextBatch {
    const T = this.seqLength;
    const B = this.batchSize;
    const starts = this.#ids.length - T; // the number of possible windows
    const inputs = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const start = this.#uniform(starts);
      inputs.set(this.#ids.subarray(start, start + T), b * T);
      targets.set(this.#ids.subarray(start + 1, start + T + 1), b * T);
    }
    return { inputs: { data: inputs, shape: [B, T] }, targets: { data: targets, shape: [B, T] } };
  }

  /**
   * One pass for stateful (truncated BPTT) training: the corpus is cut into batchSize contiguous streams of equal
   * length, walked seqLength ids at a time, so row b of batch k + 1 continues row b of batch k. An incomplete tail
   * is dropped. Uses no randomness. ERR_RNNKIT_ARGUMENT when the corpus is too short for one batch.
   */
  sequentialBatches(): Iterable<SequentialTextBatch> {
    const count = this.batchesPerEpoch;
    if (count === 0) {
      // An empty pass would let a training loop run without training; say so instead.
      throw rnnkitError(
        'ERR_RNNKIT_ARGUMENT',
        `the corpus has ${this.#ids.length} ids; one sequential batch of ${this.batchSize} x ${this.seqLength} needs at least ${
          this.batchSize * this.seqLength + 1
        }`,
      );
    }
    const ids = this.#ids;
    const T = this.seqLength;
    const B = this.batchSize;
    const L = this.#streamLength();
    return {
      *[Symbol.iterator](): Iterator<SequentialTextBatch> {
        for (let k = 0; k < count; k++) {
          const inputs = new Int32Array(B * T);
          const targets = new Int32Array(B * T);
          for (let b = 0; b < B; b++) {
            const start = b * L + k * T;
            inputs.set(ids.subarray(start, start + T), b * T);
            targets.set(ids.subarray(start + 1, start + T + 1), b * T);
          }
          yield { inputs: { data: inputs, shape: [B, T] }, targets: { data: targets, shape: [B, T] }, first: k === 0 };
        }
      },
    };
  }

  /** The random generator's state, to store in a checkpoint. */
  getState(): number[] {
    return [this.#state];
  }

  /** Restore a state from {@link getState}: the batches that follow are those that followed it then. */
  setState(state: number[]): void {
    if (!Array.isArray(state)) throw rnnkitError('ERR_RNNKIT_TYPE', 'state must be an array (from getState())');
    if (state.length !== 1) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `state must hold 1 number, got ${state.length}`);
    this.#state = checkSeed(state[0], 'state[0]');
  }

  // Input positions per sequential stream; the stream's last target is the next stream's first input.
  #streamLength(): number {
    return Math.floor((this.#ids.length - 1) / this.batchSize);
  }

  // A uniform integer in [0, n) for n <= 2^32, by rejection, so large corpora get no modulo bias.
  #uniform(n: number): number {
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const { state, value } = mulberry32(this.#state);
      this.#state = state;
      if (value < limit) return value % n;
    }
  }
}
