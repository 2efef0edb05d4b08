/**
 * The WebAssembly text of the trainer's own kernels for the wasm backend (trainer/train/wasm-kernels.ts):
 * float32 matrix products, with their register-blocked inner loops unrolled here rather than by
 * hand, and the dense parameters' Adam step. `npm run build:wasm-kernels` compiles it (wabt) into
 * trainer/train/wasm-kernels-binary.ts; a test compiles it again and checks the two agree.
 *
 * The module imports the memory of tfjs-backend-wasm, so the products read and write tensors where
 * they lie, with no copy. Every matrix is row-major float32 and every address a byte offset into
 * that memory. Exports, with C [M, N] and N a multiple of 4:
 *
 *   gemm_nn(a, b, c, M, K, N)          C = A·B,  A [M, K], B [K, N]
 *   gemm_tn(a, b, c, M, K, N, panel)   C = Aᵀ·B, A [K, M], B [K, N]
 *   gemm_nt(a, b, c, M, K, N, panel)   C = A·Bᵀ, A [M, K], B [N, K]
 *
 * `panel` is scratch memory: 16·K bytes for gemm_tn, 4·K·N for gemm_nt. And
 *
 *   adam(w, out, g, m, v, n, β1, 1-β1, β2, 1-β2, step, correct2, ε, λ) → Σw²
 *
 * one Adam step over n values (trainer/train/host-adam.ts's update, in float32 as tfjs's own
 * optimiser computes it): w's new values to `out`, the moments in place; returns the sum of the
 * squares of w before the step.
 *
 * Two builds: `fused` multiply-adds with relaxed SIMD's f32x4.relaxed_madd, one FMA instruction
 * where the CPU has it (1.3× the products' speed on this project's x64 hosts), the other with
 * f32x4.mul and f32x4.add for engines without relaxed SIMD. A fused multiply-add rounds once, so
 * the two differ in the last bits; either is a float32 product.
 *
 * Each block of 4 rows × 8 columns of C is held in eight 128-bit accumulators over the whole sum
 * (4 × 4 and 1-row blocks take the remainders): per k, two loads of B's row, and for each row of
 * A one load-and-splat and two multiply-adds. That is 11 of the 16 vector registers V8 has on
 * x64 and arm64, so nothing spills. gemm_tn first copies the block's 4 columns of A (strided by
 * M) into a dense panel, one vector a k; without it the kernel touches a new cache line of A for
 * every k and its working set overflows L1 (17 instead of 27 GFLOP/s at K = 1024). gemm_nt
 * transposes B into the panel and runs gemm_nn: B is a layer's weights, small beside the batch.
 */

type Rows = "pointers" | "panel";

/** c += x·b on f32x4 values named by their locals. */
type MultiplyAdd = (c: string, x: string, b: string) => string;

const fusedMultiplyAdd: MultiplyAdd = (c, x, b) =>
  `(local.set ${c} (f32x4.relaxed_madd (local.get ${x}) (local.get ${b}) (local.get ${c})))`;
const plainMultiplyAdd: MultiplyAdd = (c, x, b) =>
  `(local.set ${c} (f32x4.add (local.get ${c}) (f32x4.mul (local.get ${x}) (local.get ${b}))))`;

/** One MR × (4·NV) block of C at rows $i, columns $j: zero, accumulate over k, store. */
function block(mr: number, nv: number, rows: Rows, madd: MultiplyAdd): string {
  const out: string[] = [];
  for (let r = 0; r < mr; r++)
    for (let v = 0; v < nv; v++) out.push(`(local.set $c${r}${v} (v128.const i32x4 0 0 0 0))`);
  if (rows === "pointers")
    for (let r = 0; r < mr; r++)
      out.push(
        `(local.set $p${r} (i32.add (local.get $a) (i32.mul (i32.add (local.get $i) (i32.const ${r})) (local.get $sai))))`,
      );
  else out.push("(local.set $p0 (local.get $panel))");
  out.push("(local.set $q (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))");
  out.push("(local.set $k (local.get $K))");
  out.push("(block $k_done (loop $k_next (br_if $k_done (i32.eqz (local.get $k)))");
  for (let v = 0; v < nv; v++) out.push(`  (local.set $b${v} (v128.load offset=${v * 16} (local.get $q)))`);
  for (let r = 0; r < mr; r++) {
    out.push(
      rows === "pointers"
        ? `  (local.set $x (v128.load32_splat (local.get $p${r})))`
        : `  (local.set $x (v128.load32_splat offset=${r * 4} (local.get $p0)))`,
    );
    for (let v = 0; v < nv; v++) out.push(`  ${madd(`$c${r}${v}`, "$x", `$b${v}`)}`);
    if (rows === "pointers") out.push(`  (local.set $p${r} (i32.add (local.get $p${r}) (local.get $sak)))`);
  }
  if (rows === "panel") out.push("  (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))");
  out.push("  (local.set $q (i32.add (local.get $q) (local.get $ldb)))");
  out.push("  (local.set $k (i32.sub (local.get $k) (i32.const 1)))");
  out.push("  (br $k_next)))");
  for (let r = 0; r < mr; r++) {
    out.push(
      `(local.set $o (i32.add (local.get $c) (i32.add (i32.mul (i32.add (local.get $i) (i32.const ${r})) (local.get $ldb)) (i32.shl (local.get $j) (i32.const 2)))))`,
    );
    for (let v = 0; v < nv; v++)
      out.push(`(v128.store offset=${v * 16} (local.get $o) (local.get $c${r}${v}))`);
  }
  return out.join("\n");
}

/** Rows $i.. $i+mr-1 of C across all columns: 8-wide blocks, then one 4-wide block if N % 8 = 4. */
function rowStrip(mr: number, rows: Rows, madd: MultiplyAdd): string {
  return `(local.set $j (i32.const 0))
(block $j_done (loop $j_next (br_if $j_done (i32.gt_u (i32.add (local.get $j) (i32.const 8)) (local.get $N)))
${block(mr, 2, rows, madd)}
(local.set $j (i32.add (local.get $j) (i32.const 8)))
(br $j_next)))
(if (i32.lt_u (local.get $j) (local.get $N)) (then
${block(mr, 1, rows, madd)}))`;
}

/** Copies A's columns $i..$i+3 (A is [K, M]) into the panel, 16 bytes a k. */
const PACK_PANEL = `(local.set $p0 (i32.add (local.get $a) (i32.shl (local.get $i) (i32.const 2))))
(local.set $p1 (local.get $panel))
(local.set $k (local.get $K))
(block $pack_done (loop $pack_next (br_if $pack_done (i32.eqz (local.get $k)))
  (v128.store (local.get $p1) (v128.load (local.get $p0)))
  (local.set $p0 (i32.add (local.get $p0) (local.get $sak)))
  (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
  (local.set $k (i32.sub (local.get $k) (i32.const 1)))
  (br $pack_next)))`;

/**
 * C = A·B over rows of A addressed by strides: element (i, k) at a + i·$sai + k·$sak bytes. Blocks
 * of 4 rows read A through four pointers (packed: through the panel), the last M % 4 rows one by one.
 */
function gemmBody(packed: boolean, madd: MultiplyAdd): string {
  return `(local.set $ldb (i32.shl (local.get $N) (i32.const 2)))
(block $i_done (loop $i_next (br_if $i_done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $M)))
${packed ? PACK_PANEL : ""}
${rowStrip(4, packed ? "panel" : "pointers", madd)}
(local.set $i (i32.add (local.get $i) (i32.const 4)))
(br $i_next)))
(block $r_done (loop $r_next (br_if $r_done (i32.ge_u (local.get $i) (local.get $M)))
${rowStrip(1, "pointers", madd)}
(local.set $i (i32.add (local.get $i) (i32.const 1)))
(br $r_next)))`;
}

/**
 * One Adam step on 4 values (`lanes` 4) or 1 (lane 0 of the vectors: the last n % 4 values):
 * g' = g + λ·w; m = β1·m + (1-β1)·g'; v = β2·v + (1-β2)·g'²; w -= step·m / (√(v·correct2) + ε),
 * with x holding w.
 */
function adamUpdate(lanes: 4 | 1): string {
  const load = (p: string) => `(${lanes === 4 ? "v128.load" : "v128.load32_splat"} (local.get ${p}))`;
  const store = (p: string, value: string) =>
    lanes === 4
      ? `(v128.store (local.get ${p}) ${value})`
      : `(v128.store32_lane 0 (local.get ${p}) ${value})`;
  return `(local.set $gj (f32x4.add ${load("$gp")} (f32x4.mul (local.get $l2) (local.get $x))))
(local.set $mj (f32x4.add (f32x4.mul (local.get $b1) ${load("$mp")}) (f32x4.mul (local.get $c1) (local.get $gj))))
(local.set $vj (f32x4.add (f32x4.mul (local.get $b2) ${load("$vp")})
  (f32x4.mul (local.get $c2) (f32x4.mul (local.get $gj) (local.get $gj)))))
${store("$mp", "(local.get $mj)")}
${store("$vp", "(local.get $vj)")}
${store(
  "$op",
  `(f32x4.sub (local.get $x) (f32x4.div (f32x4.mul (local.get $step) (local.get $mj))
  (f32x4.add (f32x4.sqrt (f32x4.mul (local.get $vj) (local.get $correct))) (local.get $eps))))`,
)}`;
}

/** The five pointers' advance by `bytes`. */
function advance(bytes: number): string {
  return ["$wp", "$op", "$gp", "$mp", "$vp"]
    .map((p) => `(local.set ${p} (i32.add (local.get ${p}) (i32.const ${bytes})))`)
    .join("\n");
}

/** Σw² is summed in float64: the penalty's value is a sum over up to millions of weights. */
const ADAM = `(func (export "adam") (param $wp i32) (param $op i32) (param $gp i32) (param $mp i32) (param $vp i32) (param $n i32)
  (param $sb1 f32) (param $sc1 f32) (param $sb2 f32) (param $sc2 f32)
  (param $sstep f32) (param $scorrect f32) (param $seps f32) (param $sl2 f32)
  (result f64)
(local $b1 v128) (local $c1 v128) (local $b2 v128) (local $c2 v128)
(local $step v128) (local $correct v128) (local $eps v128) (local $l2 v128)
(local $x v128) (local $gj v128) (local $mj v128) (local $vj v128) (local $squares v128) (local $sq v128)
(local $tail f64)
(local.set $b1 (f32x4.splat (local.get $sb1)))
(local.set $c1 (f32x4.splat (local.get $sc1)))
(local.set $b2 (f32x4.splat (local.get $sb2)))
(local.set $c2 (f32x4.splat (local.get $sc2)))
(local.set $step (f32x4.splat (local.get $sstep)))
(local.set $correct (f32x4.splat (local.get $scorrect)))
(local.set $eps (f32x4.splat (local.get $seps)))
(local.set $l2 (f32x4.splat (local.get $sl2)))
(block $done (loop $next (br_if $done (i32.lt_u (local.get $n) (i32.const 4)))
  (local.set $x (v128.load (local.get $wp)))
  (local.set $sq (f32x4.mul (local.get $x) (local.get $x)))
  (local.set $squares (f64x2.add (local.get $squares) (f64x2.promote_low_f32x4 (local.get $sq))))
  (local.set $squares (f64x2.add (local.get $squares) (f64x2.promote_low_f32x4
    (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $sq) (local.get $sq)))))
  ${adamUpdate(4)}
  ${advance(16)}
  (local.set $n (i32.sub (local.get $n) (i32.const 4)))
  (br $next)))
(block $tail_done (loop $tail_next (br_if $tail_done (i32.eqz (local.get $n)))
  (local.set $x (v128.load32_splat (local.get $wp)))
  (local.set $tail (f64.add (local.get $tail)
    (f64.promote_f32 (f32.mul (f32x4.extract_lane 0 (local.get $x)) (f32x4.extract_lane 0 (local.get $x))))))
  ${adamUpdate(1)}
  ${advance(4)}
  (local.set $n (i32.sub (local.get $n) (i32.const 1)))
  (br $tail_next)))
(f64.add (local.get $tail)
  (f64.add (f64x2.extract_lane 0 (local.get $squares)) (f64x2.extract_lane 1 (local.get $squares)))))`;

const LOCALS = [
  "(local $i i32) (local $j i32) (local $k i32) (local $q i32) (local $o i32) (local $ldb i32)",
  "(local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32)",
  "(local $b0 v128) (local $b1 v128) (local $x v128)",
  "(local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)",
  "(local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)",
].join("\n");

const PARAMS = "(param $a i32) (param $b i32) (param $c i32) (param $M i32) (param $K i32) (param $N i32)";

/** The module's text; `fused`: products with relaxed SIMD's multiply-add. */
export function kernelsWat(fused: boolean): string {
  const madd = fused ? fusedMultiplyAdd : plainMultiplyAdd;
  return `(module
(import "env" "memory" (memory 1))

(func $gemm_nn (export "gemm_nn") ${PARAMS}
${LOCALS}
(local $sai i32) (local $sak i32) (local $panel i32)
(local.set $sai (i32.shl (local.get $K) (i32.const 2)))
(local.set $sak (i32.const 4))
${gemmBody(false, madd)})

(func (export "gemm_tn") ${PARAMS} (param $panel i32)
${LOCALS}
(local $sai i32) (local $sak i32)
(local.set $sai (i32.const 4))
(local.set $sak (i32.shl (local.get $M) (i32.const 2)))
${gemmBody(true, madd)})

;; Bᵀ [K, N] into the panel, then C = A·Bᵀ.
(func (export "gemm_nt") ${PARAMS} (param $panel i32)
(local $n i32) (local $k i32) (local $from i32) (local $to i32) (local $ldt i32)
(local.set $ldt (i32.shl (local.get $N) (i32.const 2)))
(local.set $from (local.get $b))
(block $n_done (loop $n_next (br_if $n_done (i32.ge_u (local.get $n) (local.get $N)))
  (local.set $to (i32.add (local.get $panel) (i32.shl (local.get $n) (i32.const 2))))
  (local.set $k (local.get $K))
  (block $k_done (loop $k_next (br_if $k_done (i32.eqz (local.get $k)))
    (f32.store (local.get $to) (f32.load (local.get $from)))
    (local.set $from (i32.add (local.get $from) (i32.const 4)))
    (local.set $to (i32.add (local.get $to) (local.get $ldt)))
    (local.set $k (i32.sub (local.get $k) (i32.const 1)))
    (br $k_next)))
  (local.set $n (i32.add (local.get $n) (i32.const 1)))
  (br $n_next)))
(call $gemm_nn (local.get $a) (local.get $panel) (local.get $c) (local.get $M) (local.get $K) (local.get $N)))

${ADAM}
)`;
}
