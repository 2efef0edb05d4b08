/**
 * onnx.proto's field numbers and enum values that the graph checks read (graph-ops.ts,
 * expand-bound.ts, shape-bound.ts): one list, named by message, so the three walks read the
 * same wire format from the same numbers.
 */

// ModelProto
export const MODEL_GRAPH = 7;
export const MODEL_OPSET_IMPORT = 8;
export const MODEL_TRAINING_INFO = 20;
export const MODEL_FUNCTIONS = 25;
// GraphProto
export const GRAPH_NODE = 1;
export const GRAPH_INITIALIZER = 5;
export const GRAPH_INPUT = 11;
export const GRAPH_SPARSE_INITIALIZER = 15;
// NodeProto
export const NODE_INPUT = 1;
export const NODE_OUTPUT = 2;
export const NODE_NAME = 3;
export const NODE_OP_TYPE = 4;
export const NODE_ATTRIBUTE = 5;
export const NODE_DOMAIN = 7;
// AttributeProto
export const ATTRIBUTE_NAME = 1;
export const ATTRIBUTE_I = 3;
export const ATTRIBUTE_T = 5;
export const ATTRIBUTE_G = 6;
export const ATTRIBUTE_INTS = 8;
export const ATTRIBUTE_TENSORS = 10;
export const ATTRIBUTE_GRAPHS = 11;
export const ATTRIBUTE_TYPE = 20;
export const ATTRIBUTE_SPARSE_TENSOR = 22;
export const ATTRIBUTE_SPARSE_TENSORS = 23;
// AttributeProto.AttributeType
export const ATTRIBUTE_TYPE_GRAPH = 5;
export const ATTRIBUTE_TYPE_GRAPHS = 10;
// TensorProto
export const TENSOR_DIMS = 1;
export const TENSOR_DATA_TYPE = 2;
export const TENSOR_SEGMENT = 3;
export const TENSOR_INT32_DATA = 5;
export const TENSOR_INT64_DATA = 7;
export const TENSOR_NAME = 8;
export const TENSOR_RAW_DATA = 9;
export const TENSOR_EXTERNAL_DATA = 13;
export const TENSOR_DATA_LOCATION = 14;
// TensorProto.DataType and TensorProto.DataLocation
export const DATA_TYPE_INT32 = 6;
export const DATA_TYPE_INT64 = 7;
export const LOCATION_EXTERNAL = 1;
// OperatorSetIdProto
export const OPSET_DOMAIN = 1;
export const OPSET_VERSION = 2;
// ValueInfoProto, TypeProto, TypeProto.Tensor, TensorShapeProto, TensorShapeProto.Dimension
export const VALUE_INFO_NAME = 1;
export const VALUE_INFO_TYPE = 2;
export const TYPE_TENSOR_TYPE = 1;
export const TENSOR_TYPE_SHAPE = 2;
export const SHAPE_DIM = 1;
export const DIM_VALUE = 1;
export const DIM_PARAM = 2;
