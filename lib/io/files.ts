// Reading the files rnnkit is given (models, state_dicts, TF.js manifests and weights, training text): every entry
// point goes through here, so that each one accepts regular files only (a FIFO would block the read forever, a
// device such as /dev/zero would grow the buffer without bound), knows the size before it reads a byte, and turns
// the system's errors (ENOENT, EACCES, ...) into ERR_RNNKIT_FILE naming the file. And writing the files rnnkit
// produces (models, checkpoints, logs): atomically, each write under a temporary name of its own.
import { constants as bufferConstants } from 'node:buffer';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rnnkitError, type RnnkitError } from '../errors';

/** The file a model folder holds (what `rnnkit train` writes and `load`, `rnnkit sample` and `predict` read). */
export const MODEL_FILE_NAME = 'model.safetensors';

/** The largest file read into one buffer (Node's own limit). */
export const MAX_FILE_BYTES = bufferConstants.MAX_LENGTH;

// Opening a FIFO for reading blocks until a writer appears, unless the open does not wait: the type check below then
// refuses it. The flag means nothing for regular files (and does not exist on Windows, where FIFOs are not files).
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function fileError(message: string, cause?: unknown): RnnkitError {
  const err = rnnkitError('ERR_RNNKIT_FILE', message);
  if (cause !== undefined) (err as Error & { cause?: unknown }).cause = cause;
  return err;
}

/** A system error on `file` as ERR_RNNKIT_FILE, the original kept as `cause`. */
export function systemFileError(e: unknown, file: string, what: string): RnnkitError {
  const code = (e as { code?: unknown })?.code;
  const reason =
    code === 'ENOENT' ? 'does not exist'
    : code === 'EACCES' || code === 'EPERM' ? 'cannot be read (permission denied)'
    : code === 'ENOTDIR' ? 'does not exist (a part of its path is not a folder)'
    : code === 'ELOOP' ? 'cannot be read (too many symbolic links)'
    : `cannot be read: ${String((e as Error)?.message ?? e)}`;
  return fileError(`${what} ${file} ${reason}`, e);
}

/** A path given as a string or a file: URL, as a string (other values are ERR_RNNKIT_TYPE). */
function toPath(file: unknown, what: string): string {
  if (file instanceof URL) {
    if (file.protocol !== 'file:') throw rnnkitError('ERR_RNNKIT_ARGUMENT', `${what}: only file: URLs name files, got ${file.protocol}`);
    return fileURLToPath(file);
  }
  checkPath(file, what);
  return file;
}

function checkPath(file: unknown, what: string): asserts file is string {
  if (typeof file !== 'string') throw rnnkitError('ERR_RNNKIT_TYPE', `${what}: expected a file path (string), got ${file === null ? 'null' : typeof file}`);
  if (file.length === 0) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `${what}: the file path is empty`);
  if (file.includes('\0')) throw rnnkitError('ERR_RNNKIT_ARGUMENT', `${what}: the file path contains a NUL character`);
}

function checkStats(st: fs.Stats, file: string, what: string, maxBytes: number): number {
  if (!st.isFile()) throw fileError(`${what} ${file} is ${kindOf(st)}; expected a regular file`);
  if (st.size > maxBytes) throw fileError(`${what} ${file} has ${st.size} bytes, over the limit of ${maxBytes}`);
  return st.size;
}

export interface ReadOptions {
  /** What the file is, for messages ("model file", "weight file", ...). Default "file". */
  what?: string;
  /** Refuse files larger than this many bytes (default and upper bound: MAX_FILE_BYTES). */
  maxBytes?: number;
}

function limitOf(options: ReadOptions): number {
  return Math.min(options.maxBytes ?? MAX_FILE_BYTES, MAX_FILE_BYTES);
}

/**
 * The whole content of a regular file, read into a buffer of its size (measured on the open file, before reading).
 * Throws ERR_RNNKIT_FILE for a missing or unreadable file, a directory, a FIFO, a device or a socket, a file over
 * `maxBytes`, and a file that shrinks or grows while it is read.
 */
export async function readRegularFile(path_: string | URL, options: ReadOptions = {}): Promise<Buffer> {
  const what = options.what ?? 'file';
  const file = toPath(path_, what);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, OPEN_FLAGS);
  } catch (e) {
    throw systemFileError(e, file, what);
  }
  try {
    const size = checkStats(await handle.stat(), file, what, limitOf(options));
    const buf = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await handle.read(buf, at, size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    // One byte past the measured end tells a file that grew from one that did not.
    const { bytesRead: extra } = await handle.read(Buffer.alloc(1), 0, 1, size);
    if (at !== size || extra !== 0) throw fileError(`${what} ${file} changed size while it was read`);
    return buf;
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('ERR_RNNKIT_')) throw e;
    throw systemFileError(e, file, what);
  } finally {
    await handle.close();
  }
}

/** readRegularFile, synchronously (for the command line and small files). */
export function readRegularFileSync(path_: string | URL, options: ReadOptions = {}): Buffer {
  const what = options.what ?? 'file';
  const file = toPath(path_, what);
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (e) {
    throw systemFileError(e, file, what);
  }
  try {
    const size = checkStats(fs.fstatSync(fd), file, what, limitOf(options));
    const buf = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const n = fs.readSync(fd, buf, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    if (at !== size || fs.readSync(fd, Buffer.alloc(1), 0, 1, size) !== 0)
      throw fileError(`${what} ${file} changed size while it was read`);
    return buf;
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('ERR_RNNKIT_')) throw e;
    throw systemFileError(e, file, what);
  } finally {
    fs.closeSync(fd);
  }
}

/** A regular file's content as UTF-8 text, with the size limit of a JavaScript string. */
export function readTextFileSync(file: string, what = 'file'): string {
  return readRegularFileSync(file, { what, maxBytes: bufferConstants.MAX_STRING_LENGTH }).toString('utf8');
}

/**
 * The model file a path names: the path itself, or `model.safetensors` inside it when it is a folder (as `rnnkit
 * train` writes). A missing path is returned as it is, for the reader to report.
 */
export function resolveModelFile(path_: string | URL): string {
  const file = toPath(path_, 'model');
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return file;
  }
  if (!st.isDirectory()) return file;
  const inside = path.join(file, MODEL_FILE_NAME);
  if (!fs.existsSync(inside)) throw fileError(`model ${file} is a folder without a ${MODEL_FILE_NAME}`);
  return inside;
}

/** The bytes of a model file or folder (see resolveModelFile). */
export async function readModelFile(file: string | URL): Promise<Buffer> {
  return readRegularFile(resolveModelFile(file), { what: 'model file' });
}

// Writing: a temporary file beside the target, fsync, rename over it, fsync the folder. Each write has a temporary
// name of its own (process id, a counter and random bytes), so that two writes to one path, in one process, its
// worker threads or other processes, never share one; the last rename wins and the file is always one writer's whole
// content. A process killed while writing leaves its temporary file behind: the next write to the same path removes
// those whose process no longer runs, and any older than a day (a process id used again since).
const TEMP_SUFFIX = '.rnnkit-tmp';
const TEMP_TAIL = /^(\d+)\.[0-9a-z]+-[0-9a-f]{8}$/;
const STALE_AFTER_MS = 24 * 3600 * 1000;
let writeCounter = 0;

function tempPath(file: string): string {
  const dir = path.dirname(path.resolve(file));
  const unique = `${process.pid}.${(++writeCounter).toString(36)}-${randomBytes(4).toString('hex')}`;
  return path.join(dir, `.${path.basename(file)}.${unique}${TEMP_SUFFIX}`);
}

function writeError(e: unknown, file: string): RnnkitError {
  const code = (e as { code?: unknown })?.code;
  const reason =
    code === 'ENOENT' || code === 'ENOTDIR' ? 'its folder does not exist'
    : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'permission denied'
    : code === 'EISDIR' ? 'it is a folder'
    : code === 'ENOSPC' ? 'no space left on the device'
    : String((e as Error)?.message ?? e);
  return fileError(`cannot write ${file}: ${reason}`, e);
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/**
 * The temporary files of earlier writes to `file` whose writer is gone. This process's own are left alone (another
 * of its threads may be writing one) until they are a day old.
 */
function staleTemps(file: string, names: string[]): string[] {
  const dir = path.dirname(path.resolve(file));
  const prefix = `.${path.basename(file)}.`;
  const stale: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(TEMP_SUFFIX)) continue;
    const m = TEMP_TAIL.exec(name.slice(prefix.length, -TEMP_SUFFIX.length));
    if (!m) continue;
    const full = path.join(dir, name);
    const pid = Number(m[1]);
    if (pid !== process.pid && !processRuns(pid)) {
      stale.push(full);
      continue;
    }
    try {
      if (Date.now() - fs.statSync(full).mtimeMs > STALE_AFTER_MS) stale.push(full);
    } catch {
      // gone already
    }
  }
  return stale;
}

/**
 * Write a file atomically: readers see the old content or the new, never a mix or a part, even when the process is
 * killed or another write to the same path runs at the same time (the last one to finish wins).
 */
export async function writeFileAtomic(path_: string | URL, data: Uint8Array | string): Promise<void> {
  const file = toPath(path_, 'output');
  const dir = path.dirname(path.resolve(file));
  try {
    for (const stale of staleTemps(file, await fs.promises.readdir(dir))) await fs.promises.rm(stale, { force: true });
  } catch {
    // An unreadable folder: the write below reports it.
  }
  const tmp = tempPath(file);
  try {
    const handle = await fs.promises.open(tmp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw writeError(e, file);
  }
  try {
    const d = await fs.promises.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Some platforms cannot fsync a folder; the rename itself is still atomic.
  }
}

/** writeFileAtomic, synchronously (for small files such as a training log). */
export function writeFileAtomicSync(path_: string | URL, data: Uint8Array | string): void {
  const file = toPath(path_, 'output');
  const dir = path.dirname(path.resolve(file));
  try {
    for (const stale of staleTemps(file, fs.readdirSync(dir))) fs.rmSync(stale, { force: true });
  } catch {
    // An unreadable folder: the write below reports it.
  }
  const tmp = tempPath(file);
  try {
    const fd = fs.openSync(tmp, 'wx');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw writeError(e, file);
  }
  try {
    const d = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(d);
    } finally {
      fs.closeSync(d);
    }
  } catch {
    // Some platforms cannot fsync a folder; the rename itself is still atomic.
  }
}
