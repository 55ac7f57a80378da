/** Stable codes carried by every error rnnkit raises, as `err.code`. */
export type RnnkitErrorCode =
  | 'ERR_RNNKIT_ARGUMENT'
  | 'ERR_RNNKIT_TYPE'
  | 'ERR_RNNKIT_SHAPE'
  | 'ERR_RNNKIT_VALUE'
  | 'ERR_RNNKIT_UNKNOWN_PARAM'
  | 'ERR_RNNKIT_STATE'
  | 'ERR_RNNKIT_DISPOSED'
  | 'ERR_RNNKIT_BUSY'
  | 'ERR_RNNKIT_LOCKED'
  | 'ERR_RNNKIT_DEPENDENCY'
  | 'ERR_RNNKIT_CONNECTION'
  | 'ERR_RNNKIT_REFUSED'
  | 'ERR_RNNKIT_MODEL_MISMATCH'
  | 'ERR_RNNKIT_FORMAT'
  | 'ERR_RNNKIT_FILE'
  | 'ERR_RNNKIT_DEVICE'
  | 'ERR_RNNKIT_NON_FINITE'
  | 'ERR_RNNKIT_UNSUPPORTED'
  | 'ERR_RNNKIT_NO_BINARY'
  | 'ERR_RNNKIT_OUT_OF_MEMORY'
  | 'ERR_RNNKIT_INTERNAL';

/** An Error (or TypeError, for ERR_RNNKIT_TYPE) raised by rnnkit. */
export interface RnnkitError extends Error {
  code: RnnkitErrorCode;
}

export function isRnnkitError(err: unknown): err is RnnkitError {
  if (!(err instanceof Error)) return false;
  const code: unknown = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_RNNKIT_');
}

/** Make an rnnkit error from JavaScript (for checks done before the native core is reached). */
export function rnnkitError(code: RnnkitErrorCode, message: string): RnnkitError {
  const err = (code === 'ERR_RNNKIT_TYPE' ? new TypeError(message) : new Error(message)) as RnnkitError;
  err.code = code;
  return err;
}
