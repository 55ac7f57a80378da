// The native safetensors reader's own rules, beyond what the interop tests reach through fromTorch: dtype
// conversions, strict JSON (escapes, UTF-8, duplicates, limits), placement of tensors, and that what it returns
// belongs to JavaScript alone.
import t from 'tap';
import { parseSafetensors, serializeSafetensors } from '../lib/io/safetensors';
import { native } from '../lib/native';

/** A safetensors file from raw header text (so that the tests can write what JSON.stringify never would). */
function file(header: string | Buffer, data: Uint8Array | number = 0): Buffer {
  const json = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length), 0);
  return Buffer.concat([length, json, typeof data === 'number' ? Buffer.alloc(data) : Buffer.from(data)]);
}
const fmt = (re: RegExp) => ({ code: 'ERR_RNNKIT_FORMAT', message: re });
const entry = (dtype: string, shape: unknown, offsets: unknown) => JSON.stringify({ dtype, shape, data_offsets: offsets });

t.test('every dtype becomes float32, as a float32 rounding of the stored value', async (t) => {
  const f64 = new Float64Array([1.5, -2.25, 1e300, -1e300, 3.4028235e38, 1e-50]);
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x7bff]);
  const bf16 = new Uint16Array([0x3f80, 0xc040, 0x7f80, 0x0001]);
  const data = Buffer.concat([Buffer.from(f64.buffer), Buffer.from(f16.buffer), Buffer.from(bf16.buffer)]);
  const a = 48, b = a + 16;
  const parsed = parseSafetensors(file(`{"d":${entry('F64', [2, 3], [0, a])},"h":${entry('F16', [8], [a, b])},"b":${entry('BF16', [4], [b, b + 8])}}`, data));
  t.same([...parsed.tensors.keys()], ['d', 'h', 'b'], 'tensors in file order');
  t.same(parsed.tensors.get('d')!.shape, [2, 3]);
  t.same([...parsed.tensors.get('d')!.data], [1.5, -2.25, Infinity, -Infinity, Math.fround(3.4028235e38), 0]);
  const h = [...parsed.tensors.get('h')!.data];
  t.same(h.slice(0, 5), [1, -2, 2 ** -24, Infinity, -Infinity]);
  t.ok(Number.isNaN(h[5]), 'F16 NaN');
  t.ok(Object.is(h[6], -0), 'F16 negative zero');
  t.equal(h[7], 65504, 'largest F16');
  t.same([...parsed.tensors.get('b')!.data], [1, -3, Infinity, Math.fround(2 ** -133)]);
});

t.test('numbers: any spelling of a safe integer, nothing else', async (t) => {
  t.same(parseSafetensors(file(`{"x":${entry('F32', [2, 2], [0, 16])}}`.replace('[2,2]', '[2.0, 0.2e1]'), 16)).tensors.get('x')!.shape, [2, 2]);
  t.same(parseSafetensors(file(`{"x":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}`)).tensors.get('x')!.shape, [0]);
  t.throws(() => parseSafetensors(file(`{"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}}`, 10)), fmt(/'x' has an invalid shape \[2\.5\]/));
  t.throws(() => parseSafetensors(file(`{"x":{"dtype":"F32","shape":[9007199254740992],"data_offsets":[0,0]}}`)), fmt(/invalid shape/));
  t.throws(() => parseSafetensors(file(`{"x":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}`, 4)), fmt(/invalid shape/), 'nine dimensions');
  t.throws(() => parseSafetensors(file(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, 8)), fmt(/invalid data_offsets \[0,4,8\]/));
  t.throws(() => parseSafetensors(file(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,01]}}`, 4)), fmt(/not valid JSON/), 'leading zero');
  // A zero dimension empties the tensor whatever the others claim; no count of 2^104 is ever formed.
  t.same(parseSafetensors(file(`{"x":{"dtype":"F32","shape":[4503599627370496,4503599627370496,0],"data_offsets":[0,0]}}`)).tensors.get('x')!.data.length, 0);
  t.throws(() => parseSafetensors(file(`{"x":{"dtype":"F64","shape":[4503599627370496,4],"data_offsets":[0,8]}}`, 8)),
    fmt(/'x' of shape \[4503599627370496,4\] has more than 2\^53 - 1 elements/));
});

t.test('strings: escapes and UTF-8 decoded exactly, malformed ones rejected', async (t) => {
  const meta = parseSafetensors(file('{"__metadata__":{"s":"a\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\u00e9\u{1F600}","__proto__":"own"}}')).metadata;
  t.equal(meta.s, 'a"\\/\b\f\n\r\té😀é😀');
  t.equal(Object.getPrototypeOf(meta), Object.prototype);
  t.ok(Object.prototype.hasOwnProperty.call(meta, '__proto__'), '"__proto__" is an ordinary key');
  t.throws(() => parseSafetensors(file('{"__metadata__":{"s":"\\ud800"}}')), fmt(/high surrogate/));
  t.throws(() => parseSafetensors(file('{"__metadata__":{"s":"\\udc00"}}')), fmt(/lone low surrogate/));
  t.throws(() => parseSafetensors(file('{"__metadata__":{"s":"\\x41"}}')), fmt(/invalid escape/));
  t.throws(() => parseSafetensors(file('{"__metadata__":{"s":"\\u12"}}')), fmt(/four hexadecimal digits/));
  t.throws(() => parseSafetensors(file('{"__metadata__":{"s":"tab\there"}}')), fmt(/control character/));
  for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]])
    t.throws(() => parseSafetensors(file(Buffer.concat([Buffer.from('{"'), Buffer.from(bad), Buffer.from('":{}}')]))),
      fmt(/invalid UTF-8/), `bytes ${bad.map((b) => b.toString(16))} in a name`);
  t.throws(() => parseSafetensors(file('{"a":1,}')), fmt(/not valid JSON: expected a key/), 'trailing comma');
  t.throws(() => parseSafetensors(file('\ufeff{}')), fmt(/not valid JSON/), 'byte order mark');
  t.throws(() => parseSafetensors(file('{} {}')), fmt(/after the value/));
  t.same(parseSafetensors(file('  {}  \n')).tensors.size, 0, 'whitespace padding, as writers add');
});

t.test('names: duplicates rejected, long ones shortened in messages', async (t) => {
  t.throws(() => parseSafetensors(file(`{"w":${entry('F32', [1], [0, 4])},"w":${entry('F32', [1], [4, 8])}}`, 8)), fmt(/the key "w" appears twice/));
  t.throws(() => parseSafetensors(file('{"__metadata__":{"k":"1","k":"2"}}')), fmt(/the key "k" appears twice/));
  const long = 'n'.repeat(1 << 20);
  const err = t.throws(() => parseSafetensors(file(`{"${long}":${entry('I8', [1], [0, 1])}}`, 1))) as Error;
  t.ok(err.message.length < 400, `the message stays short (${err.message.length} characters)`);
  t.match(err.message, /tensor 'n+\.\.\.' has dtype "I8"/);
});

t.test('placement: overlaps found past empty tensors, limits on nesting', async (t) => {
  const header = `{"a":${entry('F32', [25], [0, 100])},"b":${entry('F32', [0], [50, 50])},"c":${entry('F32', [2], [60, 68])}}`;
  t.throws(() => parseSafetensors(file(header, 100)), fmt(/tensors 'a' and 'c' overlap/));
  t.same(parseSafetensors(file(`{"a":${entry('F32', [1], [0, 4])},"b":${entry('F32', [0], [0, 0])},"c":${entry('F32', [0], [0, 0])}}`, 4)).tensors.size, 3);
  t.throws(() => parseSafetensors(file(`{"a":${entry('F32', [1], [0, 4])},"x":${'['.repeat(100)}${']'.repeat(100)}}`, 4)), fmt(/over the JSON reader's limits: more than 64 nested levels/));
  t.throws(() => parseSafetensors(file('{"a\\u0000b":1}')), fmt(/tensor 'a\\u0000b' has no description/));
  t.throws(() => parseSafetensors(file('{"__metadata__":[]}')), fmt(/__metadata__ must be an object of strings/));
  const overCap = Buffer.alloc(8 + 100 * 2 ** 20 + 1);
  overCap.writeBigUInt64LE(BigInt(100 * 2 ** 20 + 1), 0);
  t.throws(() => parseSafetensors(overCap), fmt(/header length 104857601 is over the limit of 104857600 bytes/), 'a header past 100 MiB, even one the file holds');
});

t.test('the result belongs to JavaScript: copied out of the input, ordinary ArrayBuffers', async (t) => {
  const input = serializeSafetensors([{ name: 'w', shape: [3], data: new Float32Array([1, 2, 3]) }], { k: 'v' });
  const parsed = parseSafetensors(input);
  input.fill(0);
  const w = parsed.tensors.get('w')!;
  t.same([...w.data], [1, 2, 3], 'unchanged when the input is overwritten');
  t.equal(w.data.byteOffset, 0);
  t.equal(w.data.buffer.byteLength, 12, 'an array buffer of its own');
  t.throws(() => native.parseSafetensors(new Float32Array(4) as never), { code: 'ERR_RNNKIT_TYPE', name: 'TypeError' });
  t.throws(() => parseSafetensors('abc' as never), { code: 'ERR_RNNKIT_TYPE' });
});

t.test('selecting tensors: the others are checked but may have any dtype, and are not returned', async (t) => {
  const buf = file(`{"keep":${entry('F32', [2], [0, 8])},"ints":${entry('I64', [1], [8, 16])},"odd":${entry('X9', [3], [16, 19])}}`, 19);
  const picked = parseSafetensors(buf, (name) => name === 'keep');
  t.same([...picked.tensors.keys()], ['keep'], 'only the selected tensor');
  t.throws(() => parseSafetensors(buf), fmt(/'ints' has dtype "I64"; supported: F32, F64, F16, BF16/), 'without a selection every dtype must be a float one');
  t.throws(() => parseSafetensors(buf, (name) => name !== 'odd'), fmt(/'ints' has dtype "I64"/), 'a selected tensor must be a float one');
  t.throws(() => parseSafetensors(file(`{"keep":${entry('F32', [2], [0, 8])},"ints":${entry('I64', [2], [8, 16])}}`, 16), (n) => n === 'keep'),
    fmt(/'ints' of shape \[2\] and dtype I64 needs 16 bytes, its offsets give 8/), 'byte counts of known dtypes are still checked');
  t.throws(() => parseSafetensors(file(`{"keep":${entry('F32', [2], [0, 8])},"ints":${entry('I64', [1], [4, 12])}}`, 12), (n) => n === 'keep'),
    fmt(/overlap/), 'and their placement');
  t.throws(() => native.parseSafetensors(buf, { only: 'keep' as never }), { code: 'ERR_RNNKIT_TYPE', message: /options\.only must be an array/ });
  t.throws(() => native.parseSafetensors(buf, { only: [1 as never] }), { code: 'ERR_RNNKIT_TYPE', message: /options\.only must be an array/ });
});
