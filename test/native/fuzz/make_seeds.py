#!/usr/bin/env python3
"""Writes the seed corpus of the safetensors fuzzer into the folder given: small valid files of every dtype the
reader converts, with and without metadata, plus files one step away from valid (so that the first mutations
already reach the checks). Generated rather than committed, so the repository holds no binary blobs.

Usage: make_seeds.py OUT_DIR
"""
import json
import os
import struct
import sys

# bfloat16 is the upper half of a float32; Python's struct has no code for it.
def bf16(x):
    return struct.pack('<I', struct.unpack('<I', struct.pack('<f', x))[0])[2:]

# Each dtype's encoding of one float, little-endian.
ENCODERS = {
    'F32': lambda x: struct.pack('<f', x),
    'F64': lambda x: struct.pack('<d', x),
    'F16': lambda x: struct.pack('<e', x),
    'BF16': bf16,
}


def safetensors(tensors, metadata=None, pad=True, raw_header=None, extra=b''):
    """tensors: (name, dtype, shape, values). Offsets are laid out in order, as writers do."""
    header = {}
    if metadata is not None:
        header['__metadata__'] = metadata
    data = b''
    for name, dtype, shape, values in tensors:
        blob = b''.join(ENCODERS[dtype](v) for v in values)
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(data), len(data) + len(blob)]}
        data += blob
    text = raw_header if raw_header is not None else json.dumps(header, separators=(',', ':'), ensure_ascii=False)
    encoded = text.encode('utf-8')
    if pad:
        encoded += b' ' * ((8 - (8 + len(encoded)) % 8) % 8)
    return struct.pack('<Q', len(encoded)) + encoded + data + extra


def values(n, scale=0.5):
    return [((i * 37) % 11 - 5) * scale for i in range(n)]


ARCHITECTURE = json.dumps({'layers': [{'kind': 'recurrent', 'cell': 'lstm', 'hiddenSize': 4}], 'note': 'é ✓ 😀 "q" \\ \n'})

SEEDS = {
    'empty_header': safetensors([]),
    'f32_matrix_metadata': safetensors([('rnn.weight_ih_l0', 'F32', [4, 3], values(12))],
                                       {'format': 'rnnkit', 'model': ARCHITECTURE}),
    'every_dtype': safetensors([
        ('a.f32', 'F32', [2, 2], values(4)),
        ('b.f64', 'F64', [3], [1.5, -1e300, 2.0 ** -1070]),
        ('c.f16', 'F16', [2, 1, 2], [1.0, -2.0, 65504.0, 2.0 ** -24]),
        ('d.bf16', 'BF16', [3], [1.0, -3.0, 3.0e38]),
    ], {'k': 'v'}),
    'scalar_and_empty': safetensors([
        ('scalar', 'F32', [], [3.25]),
        ('empty', 'F16', [0, 5], []),
        ('eight_dims', 'BF16', [1, 1, 1, 1, 1, 1, 1, 2], [1.0, 2.0]),
    ]),
    'unicode_names': safetensors([('é.权重', 'F32', [1], [1.0]), ('😀', 'F64', [1], [2.0])],
                                 {'vocabulary': json.dumps(['a', 'é', '\u2028', '😀'])}),
    'escaped_header': safetensors([], raw_header='{"__metadata__":{"s":"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/"},'
                                                 '"n\\u0000":{"dtype":"F32","shape":[1.0e0],"data_offsets":[0,4]}}',
                                  extra=struct.pack('<f', 1.0)),
    'offsets_out_of_order': safetensors([], raw_header='{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},'
                                                       '"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
                                        extra=b'\0' * 8),
    'unpadded': safetensors([('w', 'F32', [3], values(3))], pad=False),
    # One step from valid.
    'overlap': safetensors([], raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                          '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', extra=b'\0' * 12),
    'wrong_byte_count': safetensors([], raw_header='{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}',
                                    extra=b'\0' * 8),
    'huge_shape': safetensors([], raw_header='{"a":{"dtype":"F32","shape":[1000000000,1000000000],'
                                             '"data_offsets":[0,16]}}', extra=b'\0' * 16),
    'duplicate_name': safetensors([], raw_header='{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                                 '"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
                                  extra=b'\0' * 4),
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, blob in SEEDS.items():
        with open(os.path.join(out, name + '.safetensors'), 'wb') as f:
            f.write(blob)
    truncated = SEEDS['every_dtype'][:-3]
    with open(os.path.join(out, 'truncated.safetensors'), 'wb') as f:
        f.write(truncated)
    forged_length = struct.pack('<Q', 2 ** 63) + SEEDS['f32_matrix_metadata'][8:]
    with open(os.path.join(out, 'forged_header_length.safetensors'), 'wb') as f:
        f.write(forged_length)
    print(f'make_seeds: {len(SEEDS) + 2} files in {out}')


if __name__ == '__main__':
    main()
