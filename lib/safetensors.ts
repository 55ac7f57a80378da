// The safetensors format (an 8-byte little-endian header length, a JSON header, then raw tensor bytes), read with
// every length, offset, dtype and shape checked before use, and written atomically (temporary file, fsync,
// rename), so a crash never leaves a half-written model behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rnnkitError } from './errors';

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

// Far above any real header, far below what a forged length could make us allocate.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const DTYPE_SIZES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2 };

function formatError(message: string): Error {
  return rnnkitError('ERR_RNNKIT_FORMAT', `safetensors: ${message}`);
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Parse a safetensors buffer. Floating tensors of any dtype (F32, F64, F16, BF16) are returned as Float32Array. */
export function parseSafetensors(buf: Uint8Array): SafetensorsFile {
  if (!(buf instanceof Uint8Array)) throw rnnkitError('ERR_RNNKIT_TYPE', 'safetensors: expected a Buffer or Uint8Array');
  if (buf.byteLength < 8) throw formatError(`the file has ${buf.byteLength} bytes, too short for a header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, buf.byteLength - 8)))
    throw formatError(`the header length ${headerLength} runs past the end of the file (${buf.byteLength} bytes)`);
  const hl = Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, hl).toString('utf8'));
  } catch (e) {
    throw formatError(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw formatError('the header is not a JSON object');
  const dataStart = 8 + hl;
  const dataLength = buf.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, NamedTensor>();
  const ranges: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
        throw formatError('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw formatError(`__metadata__.${k} must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof entry !== 'object' || entry === null) throw formatError(`tensor '${name}' has no description`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZES))
      throw formatError(`tensor '${name}' has dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(DTYPE_SIZES).join(', ')}`);
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw formatError(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0))
      throw formatError(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLength)
      throw formatError(`tensor '${name}' spans bytes [${begin}, ${end}) outside the data section (${dataLength} bytes)`);
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const itemSize = DTYPE_SIZES[dtype];
    if (!Number.isSafeInteger(count) || count * itemSize !== end - begin)
      throw formatError(`tensor '${name}' of shape [${shape}] and dtype ${dtype} needs ${count * itemSize} bytes, its offsets give ${end - begin}`);
    ranges.push([begin, end, name]);
    const at = dataStart + begin;
    const data = new Float32Array(count);
    const dv = new DataView(buf.buffer, buf.byteOffset + at, end - begin);
    switch (dtype) {
      case 'F32': for (let i = 0; i < count; i++) data[i] = dv.getFloat32(i * 4, true); break;
      case 'F64': for (let i = 0; i < count; i++) data[i] = dv.getFloat64(i * 8, true); break;
      case 'F16': for (let i = 0; i < count; i++) data[i] = halfToFloat(dv.getUint16(i * 2, true)); break;
      case 'BF16': {
        const tmp = new DataView(new ArrayBuffer(4));
        for (let i = 0; i < count; i++) {
          tmp.setUint32(0, dv.getUint16(i * 2, true) << 16, true);
          data[i] = tmp.getFloat32(0, true);
        }
        break;
      }
    }
    tensors.set(name, { name, shape: [...(shape as number[])], data });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++)
    if (ranges[i][0] < ranges[i - 1][1] && ranges[i][1] > ranges[i][0])
      throw formatError(`tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap`);
  return { tensors, metadata };
}

/** Serialize float32 tensors and string metadata. */
export function serializeSafetensors(tensors: NamedTensor[], metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.data.length * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header so the data section starts 8-byte aligned, as the reference writer does.
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    const src = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) src.copy(out, at);
    else for (let i = 0; i < t.data.length; i++) out.writeFloatLE(t.data[i], at + i * 4);
    at += t.data.byteLength;
  }
  return out;
}

/** Write a file atomically: a temporary file beside it, fsync, rename over the target, fsync the directory. */
export async function writeFileAtomic(file: string, data: Uint8Array): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const handle = await fs.promises.open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  try {
    const d = await fs.promises.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename itself is still atomic.
  }
}
