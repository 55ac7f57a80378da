// The character vocabulary a model file carries (its metadata's `vocabulary`, as `rnnkit train` writes it), checked
// against the model it came with: a language model reads and predicts ids of the same symbols, so the vocabulary,
// the token input and the output must all have one size. A vocabulary of another size belongs to another model (an
// edited file, a vocabulary taken from another text), and text encoded or decoded with it would be silently wrong.
import { rnnkitError } from '../errors';
import type { Sequential } from '../model';
import { CharVocabulary } from '../data/text';

/** The number of classes a model's last layer outputs per step. */
function outputWidth(model: Sequential): number {
  const rows = model.layerSummaries();
  const shape = rows[rows.length - 1]?.outputShape ?? [];
  return Number(shape[shape.length - 1]);
}

/**
 * The vocabulary of a model read from `file` (named in messages), or null when it has none and `required` is false.
 * Throws ERR_RNNKIT_FORMAT when it is malformed or does not fit the model, and when a required one is missing.
 */
export function modelVocabulary(model: Sequential, file: string, required: boolean): CharVocabulary | null {
  const json = (model.metadata as { vocabulary?: unknown }).vocabulary;
  if (json === undefined) {
    if (!required) return null;
    throw rnnkitError('ERR_RNNKIT_FORMAT', `${file} has no character vocabulary in its metadata: was it written by 'rnnkit train'?`);
  }
  let vocab: CharVocabulary;
  try {
    vocab = CharVocabulary.fromJSON(json);
  } catch (e) {
    throw rnnkitError('ERR_RNNKIT_FORMAT', `the vocabulary in ${file} is malformed: ${(e as Error).message}`);
  }
  if (!model.vocabSize)
    throw rnnkitError('ERR_RNNKIT_FORMAT', `${file} carries a vocabulary but its model takes dense features, not token ids`);
  const outputs = outputWidth(model);
  if (vocab.size !== model.vocabSize || outputs !== model.vocabSize)
    throw rnnkitError(
      'ERR_RNNKIT_FORMAT',
      `the vocabulary in ${file} does not match its model: ${vocab.size} symbols, but the model reads ${model.vocabSize} ` +
        `token ids and predicts ${outputs} classes (the vocabulary of another text or model; use the model file written ` +
        'with this vocabulary, or retrain)',
    );
  return vocab;
}
