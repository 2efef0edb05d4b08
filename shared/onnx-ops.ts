/**
 * What an exported graph may contain: the ONNX operators the exporter writes (and wrote), the
 * opset it imports, and a bound on its size. The worker refuses any other graph before onnxruntime
 * sees it (edge/model/graph-ops.ts); test/export/graph-ops.test.ts exports every architecture,
 * float32 and int8 (both forms), plain and factorised, and checks that together they write
 * exactly EXPORTED_ONNX_OPS, so the list follows the exporter.
 *
 * Built from the exporter's own calls (`g.node("…")` and `nodeOutputs("…")` in trainer/models/,
 * trainer/export/ and the int8 builders trainer/export/quantize*.ts); all are in the default
 * domain ("" or "ai.onnx"). Operators that loop (Loop, Scan, If), size their output from a tensor's
 * values (ConstantOfShape, Tile, Range, Resize) or run subgraphs are not in it. Expand is: the
 * factorised graph broadcasts the request's user half over the candidates with it.
 */
export const EXPORTED_ONNX_OPS: readonly string[] = [
  "Add",
  "Cast",
  "Concat",
  "DequantizeLinear",
  "DynamicQuantizeLinear",
  "Exp",
  "Expand",
  "Gather",
  "Identity",
  "Log",
  "MatMul",
  "MatMulInteger",
  "Max",
  "Min",
  "Mul",
  "Neg",
  "ReduceSum",
  "Reshape",
  "Shape",
  "Sigmoid",
  "Slice",
  "Softmax",
  "Softplus",
  "Squeeze",
  "Sub",
  "Unsqueeze",
];

/**
 * Operators earlier exporters wrote that the current one does not: graphs exported before, still
 * served from R2 or bundled (fixtures/model/ among them), hold them. Relu: a dense layer's ReLU,
 * written as Max(y, 0) since onnxruntime-web's Relu kernel ran about ten times slower.
 */
export const EARLIER_EXPORTED_ONNX_OPS: readonly string[] = ["Relu"];

/** What the worker runs: the operators the exporter writes, and those it wrote before. */
export const SERVED_ONNX_OPS: readonly string[] = [...EXPORTED_ONNX_OPS, ...EARLIER_EXPORTED_ONNX_OPS];

/**
 * The default-domain opset versions a graph may import: the exporter writes opset 17
 * (trainer/core/onnx-graph.ts ONNX_OPSET), whose operator semantics the list above was read in.
 */
export const EXPORTED_ONNX_OPSETS = { min: 17, max: 17 } as const;

/**
 * Nodes a graph may hold. The exporter's graphs hold tens to hundreds: a PLE of 3 levels with 6
 * experts a level, 6 heads and 3 cross layers, int8 integer form, holds 787; the default MMoE's
 * int8 graph 132.
 */
export const MAX_GRAPH_NODES = 10_000;
