// A small builder for one ONNX graph: nodes in the order they are added (which is a topological order, since a node
// can only name values made before it), float and int initializers, typed graph inputs and outputs with symbolic
// dimensions, and the encoding of the whole model with protobufjs.
import * as protobufLight from 'protobufjs/light';
import { onnxDescriptor, DataType, AttributeType, IR_VERSION, OPSET_VERSION } from './schema';

export type AttributeValue = number | string | number[] | string[] | { floats: number[] };

interface Attribute {
  name: string;
  type: number;
  i?: number;
  f?: number;
  s?: Uint8Array;
  ints?: number[];
  floats?: number[];
  strings?: Uint8Array[];
}

interface Tensor {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

/** A dimension: a fixed size, or a name shared by every value with that (unknown) size. */
export type Dim = number | string;

interface ValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
}

let modelType: protobufLight.Type | undefined;

function encoder(): protobufLight.Type {
  modelType ??= protobufLight.Root.fromJSON(onnxDescriptor).lookupType('onnx.ModelProto');
  return modelType;
}

const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');

// Integer attributes are ONNX's INT; a list of numbers is INTS unless it is wrapped as { floats } (alpha, beta).
function attribute(name: string, value: AttributeValue): Attribute {
  if (typeof value === 'number')
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: utf8(value) };
  if (!Array.isArray(value)) return { name, type: AttributeType.FLOATS, floats: value.floats };
  if (value.every((v) => typeof v === 'string')) return { name, type: AttributeType.STRINGS, strings: (value as string[]).map(utf8) };
  return { name, type: AttributeType.INTS, ints: value as number[] };
}

function bytesOf(data: Float32Array | Int32Array | BigInt64Array): Uint8Array {
  // raw_data is little-endian; so is every platform Node runs on that rnnkit builds for.
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

export class GraphBuilder {
  readonly #nodes: { input: string[]; output: string[]; name: string; op_type: string; attribute: Attribute[] }[] = [];
  readonly #initializers: Tensor[] = [];
  readonly #inputs: ValueInfo[] = [];
  readonly #outputs: ValueInfo[] = [];
  readonly #used = new Set<string>();
  readonly #int64Constants = new Map<string, string>();

  /** A value name not used yet, from a readable stem. */
  fresh(stem: string): string {
    let name = stem;
    for (let k = 1; this.#used.has(name); k++) name = `${stem}_${k}`;
    this.#used.add(name);
    return name;
  }

  /** Add a node; returns its output names (made fresh from `outputs`; '' keeps an optional output absent). */
  node(op: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue | undefined> = {}): string[] {
    const out = outputs.map((o) => (o === '' ? '' : this.fresh(o)));
    const attrs = Object.entries(attributes)
      .filter((e): e is [string, AttributeValue] => e[1] !== undefined)
      .map(([k, v]) => attribute(k, v));
    this.#nodes.push({ input: inputs, output: out, name: this.fresh(`${op}_node`), op_type: op, attribute: attrs });
    return out;
  }

  /** A single-output node. */
  op(op: string, inputs: string[], output: string, attributes: Record<string, AttributeValue | undefined> = {}): string {
    return this.node(op, inputs, [output], attributes)[0];
  }

  floats(name: string, dims: number[], data: Float32Array): string {
    return this.#constant(name, dims, DataType.FLOAT, data);
  }

  /** A 1-D int64 constant (axes, shapes, slice bounds); equal lists share one initializer. */
  int64s(name: string, values: number[]): string {
    const key = values.join(',');
    let found = this.#int64Constants.get(key);
    if (found === undefined) {
      found = this.#constant(name, [values.length], DataType.INT64, BigInt64Array.from(values.map(BigInt)));
      this.#int64Constants.set(key, found);
    }
    return found;
  }

  #constant(name: string, dims: number[], type: number, data: Float32Array | BigInt64Array): string {
    const unique = this.fresh(name);
    this.#initializers.push({ name: unique, dims, data_type: type, raw_data: bytesOf(data) });
    return unique;
  }

  input(name: string, elemType: number, dims: Dim[]): string {
    this.#used.add(name);
    this.#inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declare `value` a graph output under `name` (through an Identity when the names differ). */
  output(value: string, name: string, elemType: number, dims: Dim[]): void {
    if (value !== name) {
      this.#used.add(name);
      this.#nodes.push({ input: [value], output: [name], name: this.fresh('Identity_node'), op_type: 'Identity', attribute: [] });
    }
    this.#outputs.push(valueInfo(name, elemType, dims));
  }

  /** The serialized ModelProto. */
  encode(meta: { graphName: string; producerVersion: string; metadata?: Record<string, string> }): Uint8Array {
    const type = encoder();
    const model = {
      ir_version: IR_VERSION,
      opset_import: [{ domain: '', version: OPSET_VERSION }],
      producer_name: 'rnnkit',
      producer_version: meta.producerVersion,
      metadata_props: Object.entries(meta.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: meta.graphName,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
    };
    return type.encode(type.fromObject(model)).finish();
  }
}

function valueInfo(name: string, elemType: number, dims: Dim[]): ValueInfo {
  const dim = dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim } } } };
}
