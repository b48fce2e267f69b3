using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Fallback;

namespace NativeReasoner;

// Mixture-of-experts building blocks over the device kernels: the router's discrete selection, the token
// permutation by expert, the (weighted) dispatch / combine between token order and expert-sorted order, and
// the experts' SwiGLU run as one GEMM chain per expert on contiguous sorted rows. The int32 ids these take
// come from MoeRoute / MoePermute and are in range by construction, so they are not re-validated (that
// would copy them to the host on a device backend).
public static unsafe partial class Functional
{
    /// <summary>
    /// The group-limited top-k of the DeepSeek-V3 router (see <see cref="IKernels.MoeRoute"/> for the rules
    /// and ties). scores: [n, E] unbiased affinities; bias: [E] (used when useBias). Returns the chosen
    /// experts, int32 [n, k], best first, and their routing weights [n, k] (not differentiable: build the
    /// differentiable ones with <see cref="MoeGatherScores"/>). Nothing is copied to the host.
    /// </summary>
    public static (Tensor Indices, Tensor Weights) MoeRoute(Tensor scores, Tensor? bias, int groups, int topkGroups, int k,
        bool useBias, bool normalize, float scale)
    {
        const string op = "moe_route";
        RequireFloatOn(scores, scores, op, "scores");
        if (scores.Rank != 2) throw new ArgumentException($"{op}: scores must be [n, E], got {Tensor.FormatShape(scores.Shape)}");
        int n = scores.Shape[0], e = scores.Shape[1];
        if (useBias)
        {
            if (bias == null) throw new ArgumentNullException(nameof(bias), $"{op}: useBias needs the correction bias");
            RequireFloatOn(bias, scores, op, "bias");
            if (bias.Rank != 1 || bias.Shape[0] != e)
                throw new ArgumentException($"{op}: bias must be [{e}], got {Tensor.FormatShape(bias.Shape)}");
        }
        var indices = Tensor.Empty([n, k], DType.Int32, scores.Device);
        var weights = Tensor.Empty([n, k], DType.Float32, scores.Device);
        using var selection = Tensor.Empty([n, e], DType.Float32, scores.Device); // [n, E] scratch
        using var sc = scores.ContiguousNoGrad();
        using var bc = useBias ? bias!.ContiguousNoGrad() : null;
        scores.Device.Kernels.MoeRoute(sc.Data, bc == null ? null : bc.Data, n, e, groups, topkGroups, k, useBias,
            selection.Data, (int*)indices.RawPointer, weights.Data, normalize, scale);
        return (indices, weights);
    }

    /// <summary>
    /// w[t, j] = scores[t, indices[t, j]]: scores [n, E], indices int32 [n, k] from <see cref="MoeRoute"/> →
    /// [n, k], differentiable in scores (the gradient scatters back to the chosen experts).
    /// </summary>
    public static Tensor MoeGatherScores(Tensor scores, Tensor indices)
    {
        const string op = "moe_gather_scores";
        RequireFloatOn(scores, scores, op, "scores");
        scores.SameDevice(indices, op);
        if (scores.Rank != 2 || indices.Rank != 2 || indices.DType != DType.Int32 || indices.Shape[0] != scores.Shape[0])
            throw new ArgumentException($"{op}: scores must be [n, E] and indices int32 [n, k], got {Tensor.FormatShape(scores.Shape)} and {indices.DType} {Tensor.FormatShape(indices.Shape)}");
        int n = scores.Shape[0], e = scores.Shape[1], k = indices.Shape[1];
        // The gather kernels take int64 ids: [n, k].
        var idx = indices.ToDTypeNoGrad(DType.Int64);
        var y = Tensor.Empty([n, k], DType.Float32, scores.Device);
        using (var sc = scores.ContiguousNoGrad())
            if (y.Numel > 0) scores.Device.Kernels.Gather(sc.Data, (long*)idx.RawPointer, y.Data, n, e, k, 1);
        if (!Tensor.NeedsGrad(scores))
        {
            idx.Dispose();
            return y;
        }
        var result = Tensor.Record(y, op, [scores], g =>
        {
            using var gc = g.ContiguousNoGrad();
            var ds = Tensor.Zeros([n, e], DType.Float32, g.Device);
            if (gc.Numel > 0) g.Device.Kernels.ScatterAdd(gc.Data, (long*)idx.RawPointer, ds.Data, n, k, e, 1);
            return [ds];
        }, idx);
        idx.Dispose(); // freed when the node that saved it is released
        return result;
    }

    /// <summary>
    /// The token permutation by expert (<see cref="IKernels.MoePermute"/>): indices int32 [n, k] →
    /// the per-expert offsets [E + 1] on the host (the only thing read back: it sizes the expert batches),
    /// slotOrder int32 [n·k] (slot at each sorted position) and slotPosition int32 [n·k] (its inverse).
    /// </summary>
    public static (int[] Offsets, Tensor SlotOrder, Tensor SlotPosition) MoePermute(Tensor indices, int experts)
    {
        const string op = "moe_permute";
        if (indices.Rank != 2 || indices.DType != DType.Int32)
            throw new ArgumentException($"{op}: indices must be int32 [n, k], got {indices.DType} {Tensor.FormatShape(indices.Shape)}");
        int n = indices.Shape[0], k = indices.Shape[1];
        using var ic = indices.ContiguousNoGrad();
        using var offsets = Tensor.Empty([experts + 1], DType.Int32, indices.Device);
        var order = Tensor.Empty([n * k], DType.Int32, indices.Device);
        var position = Tensor.Empty([n * k], DType.Int32, indices.Device);
        indices.Device.Kernels.MoePermute((int*)ic.RawPointer, n, k, experts, (int*)offsets.RawPointer,
            (int*)order.RawPointer, (int*)position.RawPointer);
        var host = new int[experts + 1];
        offsets.CopyToHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(host.AsSpan()));
        if (host[experts] != n * k)
            throw new ArgumentOutOfRangeException(nameof(indices), $"{op}: {n * k - host[experts]} expert ids are outside [0, {experts})");
        return (host, order, position);
    }

    /// <summary>
    /// x: [n, d] → [n·k, d] in expert-sorted order: row slotPosition[t·k + j] = x[t] (<see
    /// cref="IKernels.MoeDispatch"/>).
    /// Differentiable in x: the backward sums each token's k slot gradients (<see cref="IKernels.MoeCombine"/>).
    /// </summary>
    public static Tensor MoeDispatch(Tensor x, Tensor slotPosition, int k)
    {
        const string op = "moe_dispatch";
        RequireFloatOn(x, x, op, "x");
        CheckSlots(slotPosition, x, op, x.Rank == 2 ? (long)x.Shape[0] * k : -1);
        int n = x.Shape[0], d = x.Shape[1];
        var y = Tensor.Empty([n * k, d], DType.Float32, x.Device);
        using (var xc = x.ContiguousNoGrad())
            x.Device.Kernels.MoeDispatch(xc.Data, (int*)slotPosition.RawPointer, null, n, k, d, y.Data);
        if (!Tensor.NeedsGrad(x)) return y;
        var pos = slotPosition.ContiguousNoGrad();
        var result = Tensor.Record(y, op, [x], g =>
        {
            using var gc = g.ContiguousNoGrad();
            var dx = Tensor.Empty([n, d], DType.Float32, g.Device);
            g.Device.Kernels.MoeCombine(gc.Data, (int*)pos.RawPointer, null, n, k, d, dx.Data);
            return [dx];
        }, pos);
        pos.Dispose();
        return result;
    }

    /// <summary>
    /// src: [n·k, d] in expert-sorted order, weights [n, k] → y [n, d], y[t] = Σ_j w[t, j] · src[slotPosition[t·k + j]]
    /// (<see cref="IKernels.MoeCombine"/>). Differentiable in src (dsrc = the weighted dispatch of dy) and in
    /// the weights (dw[t, j] = dy[t] · src[slotPosition[t·k + j]]).
    /// </summary>
    public static Tensor MoeCombine(Tensor src, Tensor slotPosition, Tensor weights)
    {
        const string op = "moe_combine";
        RequireFloatOn(src, src, op, "src");
        RequireFloatOn(weights, src, op, "weights");
        if (weights.Rank != 2) throw new ArgumentException($"{op}: weights must be [n, k], got {Tensor.FormatShape(weights.Shape)}");
        int n = weights.Shape[0], k = weights.Shape[1];
        CheckSlots(slotPosition, src, op, (long)n * k);
        if (src.Rank != 2 || src.Shape[0] != n * k)
            throw new ArgumentException($"{op}: src must be [{n * k}, d], got {Tensor.FormatShape(src.Shape)}");
        int d = src.Shape[1];
        var sc = src.ContiguousNoGrad();
        var wc = weights.ContiguousNoGrad();
        var pos = slotPosition.ContiguousNoGrad();
        var y = Tensor.Empty([n, d], DType.Float32, src.Device);
        src.Device.Kernels.MoeCombine(sc.Data, (int*)pos.RawPointer, wc.Data, n, k, d, y.Data);
        if (!Tensor.NeedsGrad(src) && !Tensor.NeedsGrad(weights))
        {
            sc.Dispose();
            wc.Dispose();
            pos.Dispose();
            return y;
        }
        var result = Tensor.Record(y, op, [src, weights], g =>
        {
            using var gc = g.ContiguousNoGrad();
            Tensor? ds = null, dw = null;
            if (src.RequiresGrad)
            {
                ds = Tensor.Empty([n * k, d], DType.Float32, g.Device);
                g.Device.Kernels.MoeDispatch(gc.Data, (int*)pos.RawPointer, wc.Data, n, k, d, ds.Data);
            }
            if (weights.RequiresGrad)
            {
                dw = Tensor.Empty([n, k], DType.Float32, g.Device);
                g.Device.Kernels.MoeCombineWeightGrad(gc.Data, sc.Data, (int*)pos.RawPointer, n, k, d, dw.Data);
            }
            return [ds, dw];
        }, sc, wc, pos);
        sc.Dispose();
        wc.Dispose();
        pos.Dispose();
        return result;
    }

    private static void CheckSlots(Tensor slotPosition, Tensor like, string op, long slots)
    {
        like.SameDevice(slotPosition, op);
        if (like.Rank != 2 || slotPosition.DType != DType.Int32 || slotPosition.Rank != 1 || slotPosition.Shape[0] != slots || !slotPosition.IsContiguous)
            throw new ArgumentException($"{op}: needs a 2-D input and contiguous int32 slot positions [{slots}], got {Tensor.FormatShape(like.Shape)} and {slotPosition.DType} {Tensor.FormatShape(slotPosition.Shape)}");
    }

    /// <summary>
    /// The routed experts' SwiGLU on expert-sorted rows: rows [offsets[e], offsets[e+1]) of xs go through
    /// expert e, y_e = (silu(xs_e·gate_eᵀ) ⊙ xs_e·up_eᵀ)·down_eᵀ. xs: [rows, d]; offsets: [E + 1] on the host;
    /// gate[e], up[e]: [I, d]; down[e]: [d, I] → [rows, d]. One GEMM per expert and projection on the
    /// weights' own memory (no stacking, no padding); differentiable in xs and every weight (experts without
    /// rows get no gradient).
    /// </summary>
    public static Tensor GroupedSwiGlu(Tensor xs, int[] offsets, IReadOnlyList<Tensor> gate, IReadOnlyList<Tensor> up, IReadOnlyList<Tensor> down)
    {
        const string op = "grouped_swiglu";
        RequireFloatOn(xs, xs, op, "xs");
        if (gate.Concat(up).Concat(down).Any(w => w.DType != DType.Float32 && !w.RequiresGrad))
            return GroupedSwiGluStored(xs, offsets, gate, up, down);
        int experts = gate.Count;
        if (xs.Rank != 2 || up.Count != experts || down.Count != experts || offsets.Length != experts + 1
            || offsets[0] != 0 || offsets[experts] != xs.Shape[0])
            throw new ArgumentException($"{op}: xs {Tensor.FormatShape(xs.Shape)}, {experts}/{up.Count}/{down.Count} experts and {offsets.Length} offsets ending at {offsets[^1]} do not fit");
        int rows = xs.Shape[0], d = xs.Shape[1], inter = gate.Count > 0 ? gate[0].Shape[0] : 0;
        for (int e = 0; e < experts; e++)
        {
            RequireFloatOn(gate[e], xs, op, "gate");
            RequireFloatOn(up[e], xs, op, "up");
            RequireFloatOn(down[e], xs, op, "down");
            if (!Is2D(gate[e], inter, d) || !Is2D(up[e], inter, d) || !Is2D(down[e], d, inter)
                || !gate[e].IsContiguous || !up[e].IsContiguous || !down[e].IsContiguous || offsets[e + 1] < offsets[e])
                throw new ArgumentException($"{op}: expert {e}: gate/up must be contiguous [{inter}, {d}], down [{d}, {inter}], offsets ascending");
        }
        var k = xs.Device.Kernels;
        var xc = xs.ContiguousNoGrad();
        // The experts with rows, in expert order; each GEMM below is one grouped call over them.
        var active = new List<int>(experts);
        for (int e = 0; e < experts; e++)
            if (offsets[e + 1] > offsets[e]) active.Add(e);
        // g, u: [rows, I] pre-activations; h = silu(g) ⊙ u; y: [rows, d].
        var g = Tensor.Empty([rows, inter], DType.Float32, xs.Device);
        var u = Tensor.Empty([rows, inter], DType.Float32, xs.Device);
        var sg = Tensor.Empty([rows, inter], DType.Float32, xs.Device);
        var h = Tensor.Empty([rows, inter], DType.Float32, xs.Device);
        var y = Tensor.Empty([rows, d], DType.Float32, xs.Device);
        var launch = new GroupedLaunch(2 * active.Count, xs.Device);
        // g_e = xs_e·gate_eᵀ and u_e = xs_e·up_eᵀ: [m, I], both in one call.
        foreach (int e in active)
        {
            long r0 = offsets[e];
            int m = offsets[e + 1] - offsets[e];
            launch.Add(m, d, xc.Data + r0 * d, gate[e].Data, g.Data + r0 * inter);
            launch.Add(m, d, xc.Data + r0 * d, up[e].Data, u.Data + r0 * inter);
        }
        launch.Run(k, false, true, inter, d, d, 0f, inter);
        if (rows > 0)
        {
            k.Unary(UnaryOp.Silu, g.Data, sg.Data, (long)rows * inter, 0f);
            Binary(k, BinaryOp.Mul, sg, u, h);
        }
        // y_e = h_e·down_eᵀ: [m, d].
        foreach (int e in active)
        {
            long r0 = offsets[e];
            launch.Add(offsets[e + 1] - offsets[e], inter, h.Data + r0 * inter, down[e].Data, y.Data + r0 * d);
        }
        launch.Run(k, false, true, d, inter, inter, 0f, d);

        bool anyWeight = false;
        for (int e = 0; e < experts && !anyWeight; e++)
            anyWeight = Tensor.NeedsGrad(gate[e]) || Tensor.NeedsGrad(up[e]) || Tensor.NeedsGrad(down[e]);
        if (!Tensor.NeedsGrad(xs) && !anyWeight)
        {
            xc.Dispose(); g.Dispose(); u.Dispose(); sg.Dispose(); h.Dispose();
            return y;
        }
        var inputs = new Tensor?[1 + 3 * experts];
        inputs[0] = xs;
        for (int e = 0; e < experts; e++)
        {
            inputs[1 + e] = gate[e];
            inputs[1 + experts + e] = up[e];
            inputs[1 + 2 * experts + e] = down[e];
        }
        var offs = (int[])offsets.Clone();
        var result = Tensor.Record(y, op, inputs, dyT =>
        {
            var kk = dyT.Device.Kernels;
            var grads = new Tensor?[inputs.Length];
            using var dy = dyT.ContiguousNoGrad();
            using var dh = Tensor.Empty([rows, inter], DType.Float32, dyT.Device);
            // dh_e = dy_e·down_e: [m, I].
            foreach (int e in active)
            {
                long r0 = offs[e];
                launch.Add(offs[e + 1] - offs[e], d, dy.Data + r0 * d, down[e].Data, dh.Data + r0 * inter);
            }
            launch.Run(kk, false, false, inter, d, inter, 0f, inter);
            // d down_e = dy_eᵀ·h_e: [d, I] (op(A) = dy_eᵀ is d × m).
            foreach (int e in active)
            {
                if (!down[e].RequiresGrad) continue;
                long r0 = offs[e];
                var dd = Tensor.Empty([d, inter], DType.Float32, dyT.Device);
                grads[1 + 2 * experts + e] = dd;
                launch.Add(d, offs[e + 1] - offs[e], dy.Data + r0 * d, h.Data + r0 * inter, dd.Data);
            }
            launch.Run(kk, true, false, inter, d, inter, 0f, inter);
            // dg = dh ⊙ u ⊙ silu'(g); du = dh ⊙ silu(g): [rows, I].
            using var du = Tensor.Empty([rows, inter], DType.Float32, dyT.Device);
            using var dg = Tensor.Empty([rows, inter], DType.Float32, dyT.Device);
            if (rows > 0)
            {
                Binary(kk, BinaryOp.Mul, dh, sg, du);
                Binary(kk, BinaryOp.Mul, dh, u, dg);
                kk.UnaryBackward(UnaryOp.Silu, g.Data, sg.Data, dg.Data, dg.Data, (long)rows * inter, 0f);
            }
            // d gate_e = dg_eᵀ·xs_e and d up_e = du_eᵀ·xs_e: [I, d], in one call.
            foreach (int e in active)
            {
                long r0 = offs[e];
                int m = offs[e + 1] - offs[e];
                if (gate[e].RequiresGrad)
                {
                    var dwg = Tensor.Empty([inter, d], DType.Float32, dyT.Device);
                    grads[1 + e] = dwg;
                    launch.Add(inter, m, dg.Data + r0 * inter, xc.Data + r0 * d, dwg.Data);
                }
                if (up[e].RequiresGrad)
                {
                    var dwu = Tensor.Empty([inter, d], DType.Float32, dyT.Device);
                    grads[1 + experts + e] = dwu;
                    launch.Add(inter, m, du.Data + r0 * inter, xc.Data + r0 * d, dwu.Data);
                }
            }
            launch.Run(kk, true, false, d, inter, d, 0f, d);
            if (xs.RequiresGrad)
            {
                // dxs_e = dg_e·gate_e + du_e·up_e: [m, d]; the second call accumulates (beta = 1).
                var dxs = Tensor.Empty([rows, d], DType.Float32, dyT.Device);
                grads[0] = dxs;
                foreach (int e in active)
                {
                    long r0 = offs[e];
                    launch.Add(offs[e + 1] - offs[e], inter, dg.Data + r0 * inter, gate[e].Data, dxs.Data + r0 * d);
                }
                launch.Run(kk, false, false, d, inter, d, 0f, d);
                foreach (int e in active)
                {
                    long r0 = offs[e];
                    launch.Add(offs[e + 1] - offs[e], inter, du.Data + r0 * inter, up[e].Data, dxs.Data + r0 * d);
                }
                launch.Run(kk, false, false, d, inter, d, 1f, d);
            }
            return grads;
        }, xc, g, u, sg, h);
        xc.Dispose(); g.Dispose(); u.Dispose(); sg.Dispose(); h.Dispose();
        return result;
    }

    /// <summary>
    /// <see cref="GroupedSwiGlu"/> with expert weights kept as stored (bfloat16/float16): only the experts that have
    /// rows are widened to float32, for this call; the others are never read, so they are handed the first widened
    /// expert's tensors to satisfy the shape checks; bfloat16 experts run the bf16 grouped products. Inference only
    /// (no gradient through the widened copies).
    /// </summary>
    private static Tensor GroupedSwiGluStored(Tensor xs, int[] offsets, IReadOnlyList<Tensor> gate,
        IReadOnlyList<Tensor> up, IReadOnlyList<Tensor> down)
    {
        const string op = "grouped_swiglu";
        if (Tensor.NeedsGrad(xs))
            throw new InvalidOperationException(
                $"{op}: the expert weights are stored in 16 bits for inference; load the checkpoint with float32 "
                + "master weights to train through them");
        int experts = gate.Count;
        if (up.Count != experts || down.Count != experts || offsets.Length != experts + 1)
            throw new ArgumentException(
                $"{op}: {experts}/{up.Count}/{down.Count} experts and {offsets.Length} offsets do not fit");
        if (gate.Concat(up).Concat(down).Any(w => w.DType == DType.Packed))
            return GroupedSwiGluPacked(xs, offsets, gate, up, down);
        var widened = new List<Tensor>();
        try
        {
            Tensor Wide(Tensor w)
            {
                if (w.DType == DType.Float32) return w;
                var t = w.ToDTypeNoGrad(DType.Float32);
                widened.Add(t);
                return t;
            }
            var g = new Tensor[experts];
            var u = new Tensor[experts];
            var dn = new Tensor[experts];
            int first = -1;
            for (int e = 0; e < experts; e++)
            {
                if (offsets[e + 1] <= offsets[e]) continue;
                (g[e], u[e], dn[e]) = (Wide(gate[e]), Wide(up[e]), Wide(down[e]));
                if (first < 0) first = e;
            }
            if (first < 0)
            {
                // No rows at all: widen one expert so the (empty) product still checks shapes.
                first = 0;
                if (experts > 0) (g[0], u[0], dn[0]) = (Wide(gate[0]), Wide(up[0]), Wide(down[0]));
            }
            for (int e = 0; e < experts; e++)
                if (g[e] is null) (g[e], u[e], dn[e]) = (g[first], u[first], dn[first]);
            // bfloat16 experts multiply as MatMul multiplies a bfloat16 weight: the activations rounded to bf16, fp32
            // accumulation (so the stored model equals its float32 upcast under autocast, bit for bit).
            bool bf16 = gate.Concat(up).Concat(down).Any(w => w.DType == DType.BFloat16);
            using var autocast = bf16 && !Autocast.IsBf16 ? Autocast.Bf16() : null;
            return GroupedSwiGlu(xs, offsets, g, u, dn);
        }
        finally
        {
            foreach (var t in widened) t.Dispose();
        }
    }

    /// <summary>
    /// <see cref="GroupedSwiGlu"/> with packed expert weights (inference). When every expert's gate and up share one
    /// format and every down one format (a model quantised as a whole), the three projections are three grouped
    /// calls (<see cref="Kernels.Quant.IQuantizedMatMul.GroupedQuantizedMatMul"/>): gate and up in one over xs, then
    /// down over h — each quantises its input rows once and shares all experts' rows out over the threads. Mixed
    /// formats go expert by expert through <see cref="Tensor.Linear"/>. Nothing is widened either way.
    /// </summary>
    private static Tensor GroupedSwiGluPacked(Tensor xs, int[] offsets, IReadOnlyList<Tensor> gate,
        IReadOnlyList<Tensor> up, IReadOnlyList<Tensor> down)
    {
        int experts = gate.Count, rows = xs.Shape[0], d = xs.Shape[1];
        if (xs.Rank != 2 || offsets[0] != 0 || offsets[experts] != rows)
            throw new ArgumentException(
                $"grouped_swiglu: xs {Tensor.FormatShape(xs.Shape)} and offsets ending at {offsets[^1]} do not fit");
        if (experts > 0 && UniformlyPacked(gate.Concat(up), gate[0]) && UniformlyPacked(down, down[0]))
            return GroupedSwiGluUniform(xs, offsets, gate, up, down);
        var parts = new List<Tensor>();
        try
        {
            for (int e = 0; e < experts; e++)
            {
                int m = offsets[e + 1] - offsets[e];
                if (m <= 0) continue;
                using var xe = xs.Narrow(0, offsets[e], m);                  // [m, d]
                using var g = Tensor.Linear(xe, gate[e]);                     // [m, I]
                using var u = Tensor.Linear(xe, up[e]);
                using var sg = g.Silu();
                using var h = sg * u;
                parts.Add(Tensor.Linear(h, down[e]));                        // [m, d]
            }
            if (parts.Count == 0) return Tensor.Empty([0, d], DType.Float32, xs.Device);
            return parts.Count == 1 ? parts[0].ContiguousNoGrad() : Tensor.Cat(parts, 0);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    /// <summary>True when every weight is packed in <paramref name="first"/>'s format with its shape.</summary>
    private static bool UniformlyPacked(IEnumerable<Tensor> weights, Tensor first) =>
        first.PackedFormat != null && weights.All(w => w.PackedFormat == first.PackedFormat
            && w.Shape[0] == first.Shape[0] && w.Shape[1] == first.Shape[1] && w.Device == first.Device);

    private static Tensor GroupedSwiGluUniform(Tensor xs, int[] offsets, IReadOnlyList<Tensor> gate,
        IReadOnlyList<Tensor> up, IReadOnlyList<Tensor> down)
    {
        int experts = gate.Count, rows = xs.Shape[0], d = xs.Shape[1], inter = gate[0].Shape[0];
        if (gate[0].Shape[1] != d || down[0].Shape[0] != d || down[0].Shape[1] != inter)
            throw new ArgumentException($"grouped_swiglu: packed gate/up must be [{inter}, {d}] and down " +
                $"[{d}, {inter}], got {Tensor.FormatShape(gate[0].Shape)} and {Tensor.FormatShape(down[0].Shape)}");
        xs.SameDevice(gate[0], "grouped_swiglu");
        var op = KernelFallback.QuantizedMatMul(xs.Device.Kernels, xs.Device.Memory);
        // g, u: [rows, I] pre-activations; h = silu(g) ⊙ u; y: [rows, d].
        using var xc = xs.ContiguousNoGrad();
        using var g = Tensor.Empty([rows, inter], DType.Float32, xs.Device);
        using var u = Tensor.Empty([rows, inter], DType.Float32, xs.Device);
        var y = Tensor.Empty([rows, d], DType.Float32, xs.Device);
        if (rows == 0) return y;
        // w: gate of every expert, then up of every expert (set 0, set 1); the unused experts' are never read.
        var w = new nint[2 * experts];
        for (int e = 0; e < experts; e++)
        {
            w[e] = (nint)gate[e].RawPointer;
            w[experts + e] = (nint)up[e].RawPointer;
        }
        try
        {
            fixed (int* off = offsets)
            fixed (nint* pw = w)
            {
                float** gu = stackalloc float*[2] { g.Data, u.Data };
                op.GroupedQuantizedMatMul(gate[0].PackedFormat!.Value, 2, experts, off, inter, d, xc.Data,
                    (byte**)pw, gu);
                using var sg = g.Silu();
                using var h = sg * u;
                using var hc = h.ContiguousNoGrad();
                for (int e = 0; e < experts; e++) pw[e] = (nint)down[e].RawPointer;
                float** yp = stackalloc float*[1] { y.Data };
                op.GroupedQuantizedMatMul(down[0].PackedFormat!.Value, 1, experts, off, d, inter, hc.Data,
                    (byte**)pw, yp);
            }
            return y;
        }
        catch
        {
            y.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The host-side description of one <see cref="IKernels.GemmGrouped"/> call, filled item by item and
    /// reused for the next call (one set of arrays per layer forward, kept by its backward). Made inside
    /// <see cref="Autocast.Bf16"/>, it runs every item in bf16 with fp32 accumulation, in the forward and in the
    /// backward that keeps it (wherever that backward is called), as autocast runs the expert products.
    /// </summary>
    private sealed class GroupedLaunch(int capacity, Device device)
    {
        private readonly int[] _m = new int[capacity], _k = new int[capacity];
        private readonly nint[] _a = new nint[capacity], _b = new nint[capacity], _c = new nint[capacity];
        private readonly bool _bf16 = Autocast.IsBf16;
        private int _count;

        /// <summary>One item: op(A) is m × k, C = op(A)·op(B) at c.</summary>
        public void Add(int m, int k, float* a, float* b, float* c)
        {
            _m[_count] = m;
            _k[_count] = k;
            _a[_count] = (nint)a;
            _b[_count] = (nint)b;
            _c[_count] = (nint)c;
            _count++;
        }

        /// <summary>Runs the items added since the last run, then forgets them.</summary>
        public void Run(IKernels kernels, bool transA, bool transB, int n, int lda, int ldb, float beta, int ldc)
        {
            if (_count == 0) return;
            if (_bf16) RunBf16(kernels, transA, transB, n, lda, ldb, beta, ldc);
            else
                fixed (int* m = _m, k = _k)
                fixed (nint* a = _a, b = _b, c = _c)
                    kernels.GemmGrouped(_count, transA, transB, m, n, k, 1f, (float**)a, lda, (float**)b, ldb, beta,
                        (float**)c, ldc);
            _count = 0;
        }

        // Item by item: each operand's memory footprint rounded to bf16 in scratch, then one GemmBf16. No backend has
        // a grouped bf16 GEMM yet, so this is a launch or three per expert instead of one for the layer.
        private void RunBf16(IKernels kernels, bool transA, bool transB, int n, int lda, int ldb, float beta, int ldc)
        {
            for (int i = 0; i < _count; i++)
            {
                int m = _m[i], k = _k[i];
                if (m <= 0) continue;
                if (k <= 0 || n <= 0)
                {
                    // Nothing to multiply: C = beta · C, which the fp32 call does without reading A or B.
                    fixed (int* pm = &_m[i], pk = &_k[i])
                    fixed (nint* pa = &_a[i], pb = &_b[i], pc = &_c[i])
                        kernels.GemmGrouped(1, transA, transB, pm, n, pk, 1f, (float**)pa, lda, (float**)pb, ldb, beta,
                            (float**)pc, ldc);
                    continue;
                }
                long na = transA ? (long)(k - 1) * lda + m : (long)(m - 1) * lda + k;
                long nb = transB ? (long)(n - 1) * ldb + k : (long)(k - 1) * ldb + n;
                var a16 = device.Allocate(na * sizeof(ushort));
                var b16 = device.Allocate(nb * sizeof(ushort));
                try
                {
                    kernels.FloatToBFloat16((float*)_a[i], (ushort*)a16.Pointer, na);
                    kernels.FloatToBFloat16((float*)_b[i], (ushort*)b16.Pointer, nb);
                    kernels.GemmBf16(1, transA, transB, m, n, k, 1f, (ushort*)a16.Pointer, lda, 0,
                        (ushort*)b16.Pointer, ldb, 0, beta, (float*)_c[i], ldc, 0);
                }
                finally
                {
                    b16.Release();
                    a16.Release();
                }
            }
        }
    }

    private static bool Is2D(Tensor t, int rows, int cols) => t.Rank == 2 && t.Shape[0] == rows && t.Shape[1] == cols;

    /// <summary>c = a op b for three contiguous float tensors of one shape.</summary>
    private static void Binary(IKernels k, BinaryOp op, Tensor a, Tensor b, Tensor c)
    {
        Span<long> strides = stackalloc long[1];
        strides[0] = 1;
        Span<int> shape = stackalloc int[1];
        shape[0] = checked((int)a.Numel);
        k.Binary(op, a.Data, strides, b.Data, strides, c.Data, shape);
    }
}
