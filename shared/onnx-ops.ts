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

/**
 * Expand sizes its output from its shape input's values, so the worker traces each Expand's shape
 * back to initializers and Shape outputs (edge/model/expand-bound.ts) and refuses a graph unless
 * every constant dimension of it, and their product (times the data's elements where the data is
 * an initializer), is at most this. The exporter's Expand is [candidates, user width]: the user
 * half of x, as wide as the user side's dense columns and embeddings. A vector feature is at most
 * 4,096 wide (shared/spec.ts), so 8,192 holds two of them beside other features. At the worker's
 * 1,000-candidate cap (edge/rerank/schema.ts) that output is at most 8.2 M float32s, 32 MiB, a
 * quarter of the 128 MB isolate: what the plain graph's x of that width holds anyway, so a model too
 * wide for it could not serve 1,000 candidates either (a refused factorised graph leaves the plain
 * one serving). One bound serves for each dimension and their product: a dimension over it is
 * refused even beside a 0.
 */
export const MAX_EXPAND_ROW_ELEMENTS = 8_192;

/**
 * Dimensions an Expand's shape may take from Shape outputs (lengths of axes of tensors the graph
 * holds: the candidates' rows, in the exporter's graph). Two would make rows × rows, quadratic in
 * the request.
 */
export const MAX_EXPAND_SHAPE_DIMS = 1;

/**
 * The rows a served graph runs on at most: the worker's candidate cap per request
 * (edge/rerank/schema.ts MAX_CANDIDATES is this), the graph inputs' first dimension.
 */
export const MAX_GRAPH_ROWS = 1_000;

/**
 * Elements any tensor of a served graph may hold at MAX_GRAPH_ROWS rows: edge/model/shape-bound.ts
 * infers every node output's shape, its dimensions linear in the rows, and refuses a graph with one
 * over this. 16 Mi elements are 64 MiB of float32, half the 128 MB isolate: a graph that needs one
 * tensor that size cannot run beside onnxruntime's own memory anyway. The exporter's graphs hold at
 * most [rows, width] (x, its first layer's output) and [rows, id slots, embedding dim] (the
 * gathered embeddings): 0.2 M elements at 1,000 rows for the test suite's models
 * (test/export/graph-ops.test.ts), and x of the widest input Expand allows (MAX_EXPAND_ROW_ELEMENTS)
 * 8.2 M, half of this.
 */
export const MAX_TENSOR_ELEMENTS = 16 * 1024 * 1024;
