// The safetensors format (an 8-byte little-endian header length, a JSON header, then raw tensor bytes), read by the
// native core with every length, offset, dtype and shape checked before use (files are written through
// writeFileAtomic, lib/io/files.ts).
import { rnnkitError } from '../errors';
import { native } from '../native';

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

// The native reader's own cap; names are only looked for in headers it could accept.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * The tensor names a header declares, or none where it cannot be read (the native reader then says why). The header
 * is read here and again natively so that the caller's predicate runs before the native read, never during it: a
 * predicate could otherwise detach the buffer under the reader.
 */
function declaredNames(buf: Uint8Array): string[] {
  if (buf.byteLength < 8) return [];
  const length = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(Math.min(buf.byteLength - 8, MAX_HEADER_BYTES))) return [];
  try {
    const header: unknown = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, Number(length)).toString('utf8'));
    return typeof header === 'object' && header !== null && !Array.isArray(header)
      ? Object.keys(header).filter((k) => k !== '__metadata__')
      : [];
  } catch {
    return [];
  }
}

/**
 * Parse a safetensors buffer. Floating tensors of any dtype (F32, F64, F16, BF16) are returned as Float32Array.
 * The checks (every length, offset, dtype, shape and name, before anything is allocated) are the native reader's,
 * native/core/safetensors_reader.cc, which is fuzzed (test/native/fuzz).
 *
 * With `select`, only the tensors it accepts are converted and returned; the others are still checked (placement,
 * shape, byte count, duplicate names) but may have any dtype, as a whole PyTorch state_dict's int64 buffers do.
 */
export function parseSafetensors(buf: Uint8Array, select?: (name: string) => boolean): SafetensorsFile {
  if (!(buf instanceof Uint8Array)) throw rnnkitError('ERR_RNNKIT_TYPE', 'safetensors: expected a Buffer or Uint8Array');
  const parsed = select ? native.parseSafetensors(buf, { only: declaredNames(buf).filter(select) }) : native.parseSafetensors(buf);
  const tensors = new Map<string, NamedTensor>();
  for (const t of parsed.tensors) tensors.set(t.name, t);
  return { tensors, metadata: parsed.metadata };
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
