// The part of ONNX's onnx.proto (proto2, package onnx) that the exporter writes, as a protobufjs reflection
// descriptor. Field names, numbers and enum values follow onnx.proto exactly, so that any ONNX reader decodes what
// protobufjs encodes; fields the exporter never sets are left out (a reader treats them as absent). Repeated scalars
// are unpacked unless onnx.proto marks them `[packed = true]`, as proto2 wants.
import type * as protobuf from 'protobufjs/light';

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7 } as const;

/** AttributeProto.AttributeType values used here. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** IR version 7 with opset 14 is what ONNX 1.9 wrote; every ONNX Runtime since 1.8 reads it. */
export const IR_VERSION = 7;
export const OPSET_VERSION = 14;

const field = (type: string, id: number, rule?: 'repeated', packed?: boolean): protobuf.IField & { rule?: string } => ({
  type, id, ...(rule ? { rule } : {}), ...(packed ? { options: { packed: true } } : {}),
});

export const onnxDescriptor: protobuf.INamespace = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: {
            name: field('string', 1),
            type: field('AttributeType', 20),
            f: field('float', 2),
            i: field('int64', 3),
            s: field('bytes', 4),
            t: field('TensorProto', 5),
            floats: field('float', 7, 'repeated'),
            ints: field('int64', 8, 'repeated'),
            strings: field('bytes', 9, 'repeated'),
          },
          nested: {
            AttributeType: {
              values: { UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 },
            },
          },
        },
        ValueInfoProto: {
          fields: { name: field('string', 1), type: field('TypeProto', 2), doc_string: field('string', 3) },
        },
        NodeProto: {
          fields: {
            input: field('string', 1, 'repeated'),
            output: field('string', 2, 'repeated'),
            name: field('string', 3),
            op_type: field('string', 4),
            domain: field('string', 7),
            attribute: field('AttributeProto', 5, 'repeated'),
            doc_string: field('string', 6),
          },
        },
        ModelProto: {
          fields: {
            ir_version: field('int64', 1),
            opset_import: field('OperatorSetIdProto', 8, 'repeated'),
            producer_name: field('string', 2),
            producer_version: field('string', 3),
            domain: field('string', 4),
            model_version: field('int64', 5),
            doc_string: field('string', 6),
            graph: field('GraphProto', 7),
            metadata_props: field('StringStringEntryProto', 14, 'repeated'),
          },
        },
        StringStringEntryProto: {
          fields: { key: field('string', 1), value: field('string', 2) },
        },
        GraphProto: {
          fields: {
            node: field('NodeProto', 1, 'repeated'),
            name: field('string', 2),
            initializer: field('TensorProto', 5, 'repeated'),
            doc_string: field('string', 10),
            input: field('ValueInfoProto', 11, 'repeated'),
            output: field('ValueInfoProto', 12, 'repeated'),
            value_info: field('ValueInfoProto', 13, 'repeated'),
          },
        },
        TensorProto: {
          fields: {
            dims: field('int64', 1, 'repeated'),
            data_type: field('int32', 2),
            float_data: field('float', 4, 'repeated', true),
            int32_data: field('int32', 5, 'repeated', true),
            int64_data: field('int64', 7, 'repeated', true),
            name: field('string', 8),
            doc_string: field('string', 12),
            raw_data: field('bytes', 9),
          },
        },
        TensorShapeProto: {
          fields: { dim: field('Dimension', 1, 'repeated') },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dim_value', 'dim_param'] } },
              fields: { dim_value: field('int64', 1), dim_param: field('string', 2), denotation: field('string', 3) },
            },
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensor_type'] } },
          fields: { tensor_type: field('Tensor', 1), denotation: field('string', 6) },
          nested: {
            Tensor: {
              fields: { elem_type: field('int32', 1), shape: field('TensorShapeProto', 2) },
            },
          },
        },
        OperatorSetIdProto: {
          fields: { domain: field('string', 1), version: field('int64', 2) },
        },
      },
    },
  },
};
