/**
 * Adam over the dense parameters in plain JS, for the backends whose tensors live in this
 * process's memory (wasm, cpu).
 *
 * tfjs's AdamOptimizer runs ~15 kernels a variable (moments, bias correction, square root,
 * division, assigns): ~500 kernel calls a step for the default MMoE's 34 dense variables, each
 * paying tfjs's per-call bookkeeping, for ~100k numbers of arithmetic. Reading the gradients and
 * values out, updating them in one loop and writing each variable back costs a fraction of that.
 * Census-shaped default MMoE (40 columns, batch 512): the tfjs update took 5–7 ms of a ~45 ms
 * step; with this one, samples/s ×1.12 on one thread and ×1.08 on two (medians of 4 interleaved
 * runs), and the census-sized run of bench:train's e2e group trains in 32.9 s instead of 37.7 s.
 * On webgpu the gradients stay on the device and tfjs's optimiser keeps running there.
 *
 * The kernels' L2 penalty comes here too (HostGradient.l2): λ·w joins the gradient, which is the
 * penalty's own gradient, so the objective on the autodiff tape drops its square, sum and their
 * gradients, ~6 kernel calls a kernel (~100 a step of the default MMoE).
 *
 * The update is tf.train.adam's, value by value (bias correction from the running products of
 * β1 and β2, ε outside the square root, ε = 1e-7 as the CPU backends use), and its state has the
 * layout of ./dense-optimizer.ts's (moments `<variable>/m`, `<variable>/v` by position in the
 * gradient list, then the two products), so a checkpoint moves between the two.
 *
 * On the wasm backend the step runs in ./wasm-kernels.ts's SIMD kernel on the backend's heap: each
 * variable's values read where the backend keeps them, its moments in the heap beside them, a
 * gradient that is a tensor read where it lies (one that arrives as an array, from the worker
 * thread, copied in), the new values written to new data that the variable is then assigned.
 * Reading each variable out, updating it in JS and writing a new tensor back cost 2.2–2.6 ms a
 * step of the census-shaped MMoE (98k values); this, 0.38–0.43 ms. New data rather than an update
 * in place: tfjs-backend-wasm keeps XNNPACK operators with packed weights by the weight's data
 * (the heads' one-column products still go there), and another tensor may share a variable's
 * data; both must see new values as new data. The moments come out of the heap only for
 * exportState, and go back in at the next step after importState.
 */
import * as tf from "@tensorflow/tfjs";
import type { OptimizerState } from "./dense-optimizer.ts";
import { type AdamStep, type BackendHeap, backendHeap } from "./wasm-kernels.ts";

/** One variable's gradient: a tensor (read out here) or its values. */
export interface HostGradient {
  variable: tf.Variable;
  gradient: tf.Tensor | Float32Array;
  /**
   * λ of an L2 penalty λ/2·Σw² on this variable applied here, off the autodiff tape: λ·w joins
   * the gradient before the update. Default 0.
   */
  l2?: number;
}

/** A moment of one variable, with the variable's shape (what the tfjs optimiser's slot has). */
interface Slot {
  name: string;
  shape: number[];
  values: Float32Array;
}

export class HostAdam {
  private learningRate: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  /** β1^t and β2^t as float32 (tfjs keeps them in float32 variables). */
  private accBeta1: number;
  private accBeta2: number;
  private first: Slot[] = [];
  private second: Slot[] = [];
  /** Where each variable's moments live in a wasm heap (m then v, 2n floats); none: in the slots. */
  private resident: (number | undefined)[] = [];
  private residentHeap: BackendHeap | null = null;

  constructor(learningRate: number, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7) {
    this.learningRate = learningRate;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.epsilon = epsilon;
    this.accBeta1 = Math.fround(beta1);
    this.accBeta2 = Math.fround(beta2);
  }

  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }

  /**
   * One Adam step over the listed variables (their position in the list names their moments);
   * returns the L2 penalties' value at the values before the step.
   */
  applyGradients(gradients: readonly HostGradient[]): number {
    // Bias corrections as factors: one division and one square root a value remain.
    const constants: AdamStep = {
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      step: this.learningRate / (1 - this.accBeta1),
      correct2: 1 / (1 - this.accBeta2),
    };
    const heap = backendHeap();
    if (heap !== this.residentHeap) this.evict();
    let penalty = 0;
    tf.tidy(() => {
      gradients.forEach((gradient, i) => {
        penalty += heap ? this.heapStep(heap, i, gradient, constants) : this.hostStep(i, gradient, constants);
      });
    });
    this.accBeta1 = Math.fround(this.accBeta1 * this.beta1);
    this.accBeta2 = Math.fround(this.accBeta2 * this.beta2);
    return penalty;
  }

  /** One variable's step in JS, its values read out and written back as a new tensor. */
  private hostStep(i: number, { variable, gradient, l2 = 0 }: HostGradient, c: AdamStep): number {
    const g = gradient instanceof Float32Array ? gradient : (gradient.dataSync() as Float32Array);
    const w = Float32Array.from(variable.dataSync() as Float32Array);
    checkSize(variable, g.length);
    const { beta1, beta2, epsilon, step, correct2 } = c;
    const [m, v] = this.slots(i, variable);
    let squares = 0;
    for (let j = 0; j < w.length; j++) {
      const wj = w[j]!;
      squares += wj * wj;
      const gj = g[j]! + l2 * wj;
      const mj = beta1 * m[j]! + (1 - beta1) * gj;
      const vj = beta2 * v[j]! + (1 - beta2) * gj * gj;
      m[j] = mj;
      v[j] = vj;
      w[j] = wj - (step * mj) / (Math.sqrt(vj * correct2) + epsilon);
    }
    variable.assign(tf.tensor(w, variable.shape, "float32"));
    return (l2 / 2) * squares;
  }

  /** One variable's step in the wasm heap. */
  private heapStep(
    heap: BackendHeap,
    i: number,
    { variable, gradient, l2 = 0 }: HostGradient,
    c: AdamStep,
  ): number {
    const n = variable.size;
    checkSize(variable, gradient instanceof Float32Array ? gradient.length : gradient.size);
    let moments = this.resident[i];
    if (moments === undefined) {
      moments = heap.malloc(8 * n);
      if (!moments)
        throw new Error(`HostAdam: the wasm backend could not allocate ${8 * n} bytes of moments`);
      const [m, v] = this.slots(i, variable);
      const floats = heap.floats();
      floats.set(m, moments / 4);
      floats.set(v, moments / 4 + n);
      this.resident[i] = moments;
      this.residentHeap = heap;
    }
    let g: number;
    if (gradient instanceof Float32Array) {
      g = heap.kernels.scratch(4 * n);
      heap.floats().set(gradient, g / 4);
    } else g = heap.offset(gradient.dataId);
    const updated = heap.newTensor(variable.shape);
    const w = heap.offset(variable.dataId);
    const squares = heap.kernels.adam(w, heap.offset(updated.dataId), g, moments, moments + 4 * n, n, l2, c);
    variable.assign(updated);
    return (l2 / 2) * squares;
  }

  /** Variable i's moments as arrays (zeros the first time). */
  private slots(i: number, variable: tf.Variable): [Float32Array, Float32Array] {
    const shape = [...variable.shape];
    this.first[i] ??= { name: `${variable.name}/m`, shape, values: new Float32Array(variable.size) };
    this.second[i] ??= { name: `${variable.name}/v`, shape, values: new Float32Array(variable.size) };
    return [this.first[i]!.values, this.second[i]!.values];
  }

  /** Copies the moments kept in a heap back into the slots and frees them there. */
  private evict(): void {
    this.sync();
    for (const at of this.resident) if (at !== undefined) this.residentHeap!.free(at);
    this.resident = [];
    this.residentHeap = null;
  }

  /** Frees the moments kept in the wasm heap (the state stays readable). */
  dispose(): void {
    this.evict();
  }

  exportState(): OptimizerState {
    this.sync();
    return {
      slots: [...this.first, ...this.second].map((s) => ({
        ...s,
        shape: [...s.shape],
        values: s.values.slice(),
      })),
      scalars: [this.accBeta1, this.accBeta2],
    };
  }

  importState(state: OptimizerState): void {
    this.evict();
    const slots = state.slots.map((s) => ({
      name: s.name,
      shape: [...s.shape],
      values: Float32Array.from(s.values),
    }));
    const half = slots.length / 2;
    this.first = slots.slice(0, half);
    this.second = slots.slice(half);
    this.accBeta1 = Math.fround(state.scalars[0] ?? this.beta1);
    this.accBeta2 = Math.fround(state.scalars[1] ?? this.beta2);
  }

  /** Copies the moments kept in a heap into the slots, leaving them there. */
  private sync(): void {
    const heap = this.residentHeap;
    if (!heap) return;
    const floats = heap.floats();
    this.resident.forEach((at, i) => {
      if (at === undefined) return;
      const n = this.first[i]!.values.length;
      this.first[i]!.values.set(floats.subarray(at / 4, at / 4 + n));
      this.second[i]!.values.set(floats.subarray(at / 4 + n, at / 4 + 2 * n));
    });
  }
}

function checkSize(variable: tf.Variable, gradientSize: number): void {
  if (gradientSize !== variable.size)
    throw new Error(
      `HostAdam: gradient of "${variable.name}" has ${gradientSize} values, the variable ${variable.size}`,
    );
}
