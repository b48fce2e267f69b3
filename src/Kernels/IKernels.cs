namespace NativeReasoner.Kernels;

/// <summary>
/// The op set every backend implements. Pointers are element pointers into the backend's own memory
/// (host memory for the CPU and reference backends). Unless a parameter says otherwise, every buffer is
/// contiguous row-major, outputs are overwritten (never accumulated), and inputs and outputs do not
/// overlap except where noted ("may alias").
/// Shapes of the flattened views are given in comments as [outer, dim, inner].
/// </summary>
public unsafe interface IKernels
{
    /// <summary>Human-readable name ("reference", "cpu").</summary>
    string Name { get; }

    // ---------------------------------------------------------------- memory
    /// <summary>y[i] = value for i in [0, n).</summary>
    void Fill(float* y, long n, float value);

    /// <summary>
    /// Copies a strided view into another strided view of the same shape, element by element.
    /// Strides are in elements (may be 0 for broadcast on the source side, never on the destination).
    /// elementSize is 1, 2, 4 or 8 bytes. Rank ≤ 8; rank 0 copies one element.
    /// </summary>
    void StridedCopy(byte* src, ReadOnlySpan<long> srcStrides, byte* dst, ReadOnlySpan<long> dstStrides,
        ReadOnlySpan<int> shape, int elementSize);

    // ---------------------------------------------------------------- conversions
    /// <summary>float32 → bfloat16 bits, round to nearest even; NaN stays NaN.</summary>
    void FloatToBFloat16(float* x, ushort* y, long n);
    void BFloat16ToFloat(ushort* x, float* y, long n);
    /// <summary>float32 → IEEE half bits, round to nearest even; overflow → ±inf.</summary>
    void FloatToHalf(float* x, ushort* y, long n);
    void HalfToFloat(ushort* x, float* y, long n);
    /// <summary>Integer ↔ float conversions for id tensors (int32/int64 stored, float32 compute).</summary>
    void Int64ToFloat(long* x, float* y, long n);
    void FloatToInt64(float* x, long* y, long n);
    void Int32ToInt64(int* x, long* y, long n);
    void Int64ToInt32(long* x, int* y, long n);

    // ---------------------------------------------------------------- elementwise
    /// <summary>y = op(x), n elements; y may alias x.</summary>
    void Unary(UnaryOp op, float* x, float* y, long n, float alpha);

    /// <summary>
    /// dx = dy · op'(x), n elements (overwritten). y is the forward output (some derivatives are cheaper
    /// from it: exp, sigmoid, tanh, sqrt, rsqrt). dx may alias dy.
    /// </summary>
    void UnaryBackward(UnaryOp op, float* x, float* y, float* dy, float* dx, long n, float alpha);

    /// <summary>
    /// c = op(a, b) with broadcasting: c is contiguous of <paramref name="shape"/>; aStrides / bStrides are
    /// element strides of a and b aligned to that shape (0 on broadcast axes). Rank ≤ 8.
    /// c may alias a (or b) when that operand is contiguous with exactly <paramref name="shape"/> (in-place add).
    /// </summary>
    void Binary(BinaryOp op, float* a, ReadOnlySpan<long> aStrides, float* b, ReadOnlySpan<long> bStrides,
        float* c, ReadOnlySpan<int> shape);

    /// <summary>
    /// out = cond != 0 ? a : b, broadcast like <see cref="Binary"/>; out contiguous of <paramref name="shape"/>.
    /// </summary>
    void Where(float* cond, ReadOnlySpan<long> condStrides, float* a, ReadOnlySpan<long> aStrides,
        float* b, ReadOnlySpan<long> bStrides, float* output, ReadOnlySpan<int> shape);

    /// <summary>
    /// The reverse of broadcasting: for every element of the contiguous <paramref name="src"/> of
    /// <paramref name="shape"/>, dst[Σ index·dstStrides] += src[i]. dstStrides are 0 on the axes being summed
    /// away. Used for the gradients of broadcast operands.
    /// </summary>
    void AccumulateStrided(float* src, ReadOnlySpan<int> shape, float* dst, ReadOnlySpan<long> dstStrides);

    /// <summary>Σ x[i]², accumulated in double (gradient norms).</summary>
    double SumOfSquares(float* x, long n);

    // ---------------------------------------------------------------- reductions
    /// <summary>
    /// x: [outer, dim, inner] → y: [outer, inner]. Sum, Mean, Max or Min over the middle axis.
    /// For Max/Min, argIndex (may be null) receives the index along dim of the first extreme value;
    /// NaN propagates (a row with NaN yields NaN).
    /// </summary>
    void Reduce(ReduceOp op, float* x, float* y, int outer, int dim, int inner, int* argIndex);

    // ---------------------------------------------------------------- matmul
    /// <summary>
    /// Row-major C = alpha · op(A) · op(B) + beta · C for each of <paramref name="batch"/> matrices.
    /// op(A) is M×K (A stored K×M when transA), op(B) is K×N (B stored N×K when transB).
    /// lda/ldb/ldc are row strides in elements; strideA/B/C are the element distances between batch
    /// items (0 broadcasts that operand). beta = 0 means C is not read (may hold NaN).
    /// </summary>
    void Gemm(int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        float* A, int lda, long strideA, float* B, int ldb, long strideB,
        float beta, float* C, int ldc, long strideC);

    /// <summary>
    /// <see cref="Gemm"/> with bfloat16 operands (raw bits, as <see cref="FloatToBFloat16"/> writes them) and
    /// fp32 accumulation and output: C = alpha · op(A) · op(B) + beta · C, same layouts, strides and batching.
    /// </summary>
    void GemmBf16(int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        ushort* A, int lda, long strideA, ushort* B, int ldb, long strideB,
        float beta, float* C, int ldc, long strideC);

    /// <summary>
    /// Independent GEMMs in one call (the experts of an MoE layer, each on its own rows and weights): for
    /// every item i with M[i] &gt; 0, C_i = alpha · op(A_i) · op(B_i) + beta · C_i, where op(A_i) is
    /// M[i]×K[i] (A_i stored K[i]×M[i] when transA), op(B_i) is K[i]×N (B_i stored N×K[i] when transB), and
    /// A_i = A[i], B_i = B[i], C_i = C[i]. The leading dimensions are shared; beta = 0 means C_i is not read.
    /// M, K and the pointer arrays are host memory (they describe the work); the matrices are the backend's.
    /// One call instead of one per item: a fast backend schedules the items together.
    /// </summary>
    void GemmGrouped(int count, bool transA, bool transB, int* M, int N, int* K, float alpha,
        float** A, int lda, float** B, int ldb, float beta, float** C, int ldc);

    // ---------------------------------------------------------------- softmax
    /// <summary>x, y: [rows, cols]; y = softmax(x) or log_softmax(x) along cols, max-subtracted. y may alias x.</summary>
    void Softmax(float* x, float* y, int rows, int cols, bool log);

    /// <summary>
    /// From the forward output y and upstream dy: softmax: dx = y ⊙ (dy − Σ dy⊙y);
    /// log_softmax: dx = dy − exp(y) · Σ dy.
    /// </summary>
    void SoftmaxBackward(float* y, float* dy, float* dx, int rows, int cols, bool log);

    // ---------------------------------------------------------------- normalisation
    /// <summary>x, y: [rows, cols]; w: [cols]; rstd: [rows] = 1/sqrt(mean(x²) + eps); y = x · rstd · w.</summary>
    void RmsNorm(float* x, float* w, float* y, float* rstd, int rows, int cols, float eps);

    /// <summary>dx: [rows, cols] overwritten; dw: [cols] overwritten with the sum over rows.</summary>
    void RmsNormBackward(float* x, float* w, float* rstd, float* dy, float* dx, float* dw, int rows, int cols);

    // ---------------------------------------------------------------- rotary embedding
    /// <summary>
    /// Rotary embedding on interleaved pairs (x[2i], x[2i+1]) of the last axis.
    /// x, y: [outer, T, mid, D] (D even); cos, sin: [T, D/2] (already for the positions of the T axis).
    /// y[2i] = x[2i]·cos − x[2i+1]·sin; y[2i+1] = x[2i]·sin + x[2i+1]·cos. With inverse the angle is
    /// negated (this is the backward pass). y may alias x.
    /// </summary>
    void Rope(float* x, float* cos, float* sin, float* y, int outer, int T, int mid, int D, bool inverse);

    // ---------------------------------------------------------------- losses
    /// <summary>
    /// logits: [rows, V]; targets: [rows]; loss[r] = logsumexp(logits[r]) − logits[r, targets[r]], 0 where
    /// targets[r] == ignoreIndex; lse[r] = logsumexp(logits[r]) (max-subtracted). Target ids are already
    /// validated to be in [0, V) or ignoreIndex.
    /// </summary>
    void CrossEntropy(float* logits, long* targets, float* loss, float* lse, int rows, int V, long ignoreIndex);

    /// <summary>dlogits[r] = (softmax(logits[r]) − onehot(targets[r])) · dloss[r]; 0 rows where ignored.</summary>
    void CrossEntropyBackward(float* logits, float* lse, long* targets, float* dloss, float* dlogits,
        int rows, int V, long ignoreIndex);

    // ---------------------------------------------------------------- fused (one pass instead of several)
    /// <summary>SwiGLU: y = silu(gate) · up = gate · σ(gate) · up, n elements. y may alias gate or up exactly.</summary>
    void SiluMul(float* gate, float* up, float* y, long n);

    /// <summary>
    /// Backward of <see cref="SiluMul"/>: dgate = dy · up · σ(g) · (1 + g · (1 − σ(g))), dup = dy · g · σ(g).
    /// dgate and dup are distinct; each may alias an input exactly (every lane is read before it is written).
    /// </summary>
    void SiluMulBackward(float* gate, float* up, float* dy, float* dgate, float* dup, long n);

    /// <summary>
    /// Log-probability of one id per row after temperature: z = logits[r] · invTemperature (invTemperature &gt; 0),
    /// lse[r] = logsumexp(z) (max-subtracted), logp[r] = z[ids[r]] − lse[r]. logits: [rows, V]; ids, logp,
    /// lse: [rows]. Ids are already validated to be in [0, V). Never materialises the [rows, V] log-softmax.
    /// </summary>
    void LogSoftmaxGather(float* logits, long* ids, float* logp, float* lse, int rows, int V, float invTemperature);

    /// <summary>
    /// dlogits[r, c] = invTemperature · dlogp[r] · ([c = ids[r]] − exp(z[r, c] − lse[r])), z = logits · invTemperature,
    /// using lse of the forward. dlogits: [rows, V] (overwritten).
    /// </summary>
    void LogSoftmaxGatherBackward(float* logits, long* ids, float* lse, float* dlogp, float* dlogits,
        int rows, int V, float invTemperature);

    // ---------------------------------------------------------------- attention
    /// <summary>
    /// Scaled dot-product attention with grouped K/V heads (GQA; MQA when one K/V head serves all; plain
    /// multi-head attention when <paramref name="kvGroup"/> = 1): q: [BH, Tq, Dk], k: [BH / kvGroup, Tk, Dk],
    /// v: [BH / kvGroup, Tk, Dv], o: [BH, Tq, Dv], lse: [BH, Tq] (log-sum-exp of the scaled scores, saved for
    /// the backward). Query row bh reads K/V row bh / kvGroup: with BH = B·Hq and Hq = kvGroup·Hkv that is
    /// query head (b, h) → K/V head (b, h / kvGroup), the order of HF's repeat_kv. The repeated K/V are never
    /// materialised. BH must be a multiple of kvGroup (≥ 1). causal: query i (at absolute position
    /// Tk − Tq + i) sees keys 0..Tk − Tq + i (bottom-right aligned, so a decode step with Tq = 1 sees the
    /// whole cache). Online softmax: no Tq×Tk buffer.
    /// </summary>
    void AttentionForward(float* q, float* k, float* v, float* o, float* lse,
        int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal, int kvGroup);

    /// <summary>
    /// Gradients dq: [BH, Tq, Dk], dk: [BH / kvGroup, Tk, Dk], dv: [BH / kvGroup, Tk, Dv] (overwritten) from
    /// dO, using o and lse of the forward. dk and dv of a K/V head sum over the kvGroup query heads that read
    /// it, in a fixed order (no atomics: the result does not depend on the thread schedule).
    /// </summary>
    void AttentionBackward(float* q, float* k, float* v, float* o, float* lse, float* dO,
        float* dq, float* dk, float* dv, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal,
        int kvGroup);

    // ---------------------------------------------------------------- indexing
    /// <summary>x: [outer, dimIn, inner], idx: [n] → y: [outer, n, inner]; y[o,j,i] = x[o, idx[j], i].</summary>
    void IndexSelect(float* x, long* idx, float* y, int outer, int dimIn, int n, int inner);

    /// <summary>src: [outer, n, inner], idx: [n]; dst: [outer, dimDst, inner]; dst[o, idx[j], i] += src[o,j,i].</summary>
    void IndexAdd(float* src, long* idx, float* dst, int outer, int n, int dimDst, int inner);

    /// <summary>x: [outer, dimIn, inner], idx: [outer, dimOut, inner] → y: [outer, dimOut, inner]; y[o,j,i] = x[o, idx[o,j,i], i].</summary>
    void Gather(float* x, long* idx, float* y, int outer, int dimIn, int dimOut, int inner);

    /// <summary>src, idx: [outer, dimSrc, inner]; dst: [outer, dimDst, inner]; dst[o, idx[o,j,i], i] += src[o,j,i].</summary>
    void ScatterAdd(float* src, long* idx, float* dst, int outer, int dimSrc, int dimDst, int inner);

    /// <summary>
    /// x: [rows, cols] → the k largest of each row, sorted descending: values, indices: [rows, k].
    /// Ties: the lower index first. NaN counts as larger than every number.
    /// </summary>
    void TopK(float* x, float* values, long* indices, int rows, int cols, int k);

    // ---------------------------------------------------------------- mixture of experts
    /// <summary>
    /// The DeepSeek-V3 router's discrete part, one token per row. scores: [n, E], the unbiased affinities s
    /// (already sigmoid-ed or softmax-ed); bias: [E], the fp32 e_score_correction_bias (read only when
    /// <paramref name="useBias"/>; may be null otherwise).
    /// <list type="number">
    /// <item>selection[t, i] = s[t, i] + bias[i] (useBias, the noaux_tc rule) or s[t, i].</item>
    /// <item>When groups &gt; 1 (E divisible by groups, consecutive experts form a group): a group's score is
    /// the sum of its two largest selection scores when useBias, else its largest (the V2 rule); NaN scores are
    /// skipped and a missing second value counts −∞. The topkGroups best groups are kept (ties: lower group
    /// index; a NaN group score never beats another), every expert of the other groups gets −∞.</item>
    /// <item>indices[t, 0..k) = the k best experts by selection score, best first, in the total order: numbers
    /// descending, equal numbers (−0 = +0, −∞ = −∞) by lower index, NaN after every number (by lower index).</item>
    /// <item>weights[t, j] = s[t, indices[t, j]] (the UNBIASED score), divided by Σ_j of them (summed in j
    /// order, no epsilon) when <paramref name="normalize"/>, then times <paramref name="scale"/>.</item>
    /// </list>
    /// selection: [n, E] is an output (the biased, group-masked scores; also the kernel's scratch);
    /// indices, weights: [n, k]. Requires 1 ≤ k ≤ E, 1 ≤ topkGroups ≤ groups, E % groups == 0.
    /// </summary>
    void MoeRoute(float* scores, float* bias, int n, int experts, int groups, int topkGroups, int k, bool useBias,
        float* selection, int* indices, float* weights, bool normalize, float scale);

    /// <summary>
    /// The token permutation by expert: a stable counting sort of the n·k token-slots (slot s = t·k + j
    /// holds expert indices[s]). expertOffsets: [E + 1], exclusive prefix sum of the per-expert counts
    /// (expert e owns sorted positions [offsets[e], offsets[e+1]); offsets[E] = n·k); slotOrder: [n·k], the
    /// slot at each sorted position (within an expert, ascending slot order, so token order);
    /// slotPosition: [n·k] (may be null), the inverse: the sorted position of each slot.
    /// Every index must lie in [0, E): the host backends throw otherwise; a device backend (which cannot check
    /// without a read-back) leaves such slots out, so offsets[E] &lt; n·k betrays them.
    /// </summary>
    void MoePermute(int* indices, int n, int k, int experts, int* expertOffsets, int* slotOrder, int* slotPosition);

    /// <summary>
    /// Token rows out to their sorted slots: y[slotPosition[t·k + j], :] = w[t·k + j] · x[t, :] (w = 1 when
    /// <paramref name="weights"/> is null). x: [n, d]; slotPosition: [n·k], a permutation of [0, n·k) (from
    /// <see cref="MoePermute"/>); y: [n·k, d], every row written once. The adjoint of <see cref="MoeCombine"/>.
    /// </summary>
    void MoeDispatch(float* x, int* slotPosition, float* weights, int n, int k, int d, float* y);

    /// <summary>
    /// Sorted slot rows back to their tokens, weighted: y[t, :] = Σ_j w[t·k + j] · src[slotPosition[t·k + j], :]
    /// (j ascending; w = 1 when <paramref name="weights"/> is null). src: [n·k, d]; y: [n, d] (overwritten).
    /// The adjoint of <see cref="MoeDispatch"/>.
    /// </summary>
    void MoeCombine(float* src, int* slotPosition, float* weights, int n, int k, int d, float* y);

    /// <summary>
    /// The routing-weight gradient of <see cref="MoeCombine"/>: dw[t·k + j] = Σ_i dy[t, i] · src[slotPosition[t·k + j], i].
    /// dy: [n, d]; src: [n·k, d]; dw: [n·k] (overwritten).
    /// </summary>
    void MoeCombineWeightGrad(float* dy, float* src, int* slotPosition, int n, int k, int d, float* dw);

    // ---------------------------------------------------------------- optimizers
    /// <summary>
    /// One AdamW step on n parameters (PyTorch semantics): p −= lr·wd·p; m = β1·m + (1−β1)·g;
    /// v = β2·v + (1−β2)·g²; p −= lr · (m / bias1) / (sqrt(v / bias2) + eps), where bias1 = 1 − β1^t and
    /// bias2 = 1 − β2^t.
    /// </summary>
    void AdamWStep(float* p, float* g, float* m, float* v, long n, float lr, float beta1, float beta2,
        float eps, float weightDecay, float bias1, float bias2);

    /// <summary>
    /// One SGD step (PyTorch semantics): g' = g + wd·p; buf = firstStep ? g' : momentum·buf + (1−dampening)·g';
    /// d = nesterov ? g' + momentum·buf : buf (d = g' when momentum = 0, buf untouched then); p −= lr·d.
    /// </summary>
    void SgdStep(float* p, float* g, float* momentumBuffer, long n, float lr, float momentum, float dampening,
        float weightDecay, bool nesterov, bool firstStep);
}
