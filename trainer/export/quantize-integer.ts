/**
 * The "integer" int8 form of the dense layers: the activation is quantized at run time and the
 * product is computed in integers, instead of dequantizing the kernel on every call (the "qdq"
 * form of int8KernelsBuilder). For MatMul(x, W):
 *
 *   (xq, xs, xz) = DynamicQuantizeLinear(x)          uint8, one scale and zero point per call
 *   y = Cast(MatMulInteger(xq, W_int8, xz)) · (xs · s_W)
 *
 * with the same symmetric int8 kernel and per-column scale s_W as the qdq form, zero point 0
 * (MatMulInteger's default). Kernels under PER_TENSOR_BELOW weights (one scale: gates, towers,
 * logits) stay DequantizeLinear -> MatMul as in the qdq form. This is the pattern onnxruntime's own dynamic
 * quantizer writes, which its optimizer fuses into one kernel. An activation read by several
 * layers (the experts and gates of MMoE and PLE) is quantized once. A kernel read other than as
 * the second input of a MatMul falls back to DequantizeLinear, so every architecture still builds.
 */
import { type GraphBuilder, onnxDataType, type TensorValues } from "./onnx-graph.ts";
import { type Int8Kernel, int8Kernel, isDenseKernel } from "./quantize.ts";

interface QuantizedActivation {
  value: string;
  scale: string;
  zeroPoint: string;
}

export function integerKernelsBuilder(g: GraphBuilder): GraphBuilder {
  const nodeOutputs = g.nodeOutputs?.bind(g);
  if (!nodeOutputs)
    throw new Error("export: the integer int8 form needs the root graph builder (multi-output nodes)");
  const held = new Map<string, Int8Kernel>(); // placeholder -> int8 kernel
  const dequantized = new Map<string, string>(); // placeholder -> DequantizeLinear output
  const activations = new Map<string, QuantizedActivation>();
  let placeholders = 0;

  function realise(name: string): string {
    const k = held.get(name);
    if (!k) return name;
    let w = dequantized.get(name);
    if (w === undefined) {
      w = g.node("DequantizeLinear", [k.int8, k.scale], k.perTensor ? {} : { axis: 1 }, "w");
      dequantized.set(name, w);
    }
    return w;
  }

  function quantized(x: string): QuantizedActivation {
    let a = activations.get(x);
    if (!a) {
      const [value, scale, zeroPoint] = nodeOutputs!("DynamicQuantizeLinear", [x], ["xq", "xs", "xz"]);
      a = { value: value!, scale: scale!, zeroPoint: zeroPoint! };
      activations.set(x, a);
    }
    return a;
  }

  return {
    initializer(name: string, dims: readonly number[], values: TensorValues): string {
      if (!(values instanceof Float32Array)) return g.initializer(name, dims, values);
      // A bias is read once, by the Add after its layer's product, which names the layer already.
      if (name.endsWith("/bias")) return g.initializer("b", dims, values);
      if (!isDenseKernel(name, dims)) return g.initializer(name, dims, values);
      const k = int8Kernel(g, name, dims, values);
      // Small kernels (one scale) stay dequantized: their products cost little either way, and
      // four nodes a layer instead of two kept the int8 PLE above 30% of float32.
      if (k.perTensor) return g.node("DequantizeLinear", [k.int8, k.scale], {}, "w");
      const placeholder = `${name}/held_${placeholders++}`;
      held.set(placeholder, k);
      return placeholder;
    },
    node(op, inputs, attributes, outputName) {
      const [x, w] = inputs;
      const k = w === undefined ? undefined : held.get(w);
      if (op === "MatMul" && inputs.length === 2 && x !== undefined && k && !held.has(x)) {
        const a = quantized(x);
        // Short names, as for the qdq form's constants: four nodes a layer, each name written twice.
        const product = g.node("MatMulInteger", [a.value, k.int8, a.zeroPoint], {}, "p"); // int32
        const scale = g.node("Mul", [a.scale, k.scale], {}, "k");
        const float = g.node("Cast", [product], { to: onnxDataType("float32") }, "f");
        return g.node("Mul", [float, scale], {}, outputName ?? "y");
      }
      return g.node(op, inputs.map(realise), attributes, outputName);
    },
    input: (name, type, dims) => g.input(name, type, dims),
    output: (name, type, dims) => g.output(realise(name), type, dims),
    toBytes: (metadata) => g.toBytes(metadata),
  };
}
