namespace NativeReasoner.Tests.Verification;

/// <summary>Maps a fixture's "op" + attrs onto the engine's API (see tests/reference/README.md).</summary>
internal static class FixtureOps
{
    /// <summary>Ops whose outputs are one rounding of one formula or pure data movement: the tight tolerance.</summary>
    public static readonly IReadOnlySet<string> Elementwise = new HashSet<string>
    {
        "add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "rsqrt", "pow", "silu", "sigmoid", "tanh",
        "where", "masked_fill", "embedding", "gather", "index_select", "scatter_add", "cat", "stack", "split", "topk",
    };

    public static double Tolerance(string op) =>
        Elementwise.Contains(op) ? VerificationUtil.ElementwiseTolerance : VerificationUtil.AccumulatingTolerance;

    /// <summary>Runs the case's op; an op this table does not know is an error, never a skip.</summary>
    public static Tensor[] Apply(FixtureCase c, IReadOnlyDictionary<string, Tensor> t)
    {
        Tensor In(string name) => t.TryGetValue(name, out var x) ? x
            : throw new InvalidOperationException($"case '{c.Name}' ({c.Op}) has no input '{name}'");
        Tensor[] One(Tensor x) => [x];

        switch (c.Op)
        {
            case "add": return One(In("a").Add(In("b")));
            case "sub": return One(In("a").Sub(In("b")));
            case "mul": return One(In("a").Mul(In("b")));
            case "div": return One(In("a").Div(In("b")));
            case "neg": return One(In("x").Neg());
            case "exp": return One(In("x").Exp());
            case "log": return One(In("x").Log());
            case "sqrt": return One(In("x").Sqrt());
            case "rsqrt": return One(In("x").Rsqrt());
            case "pow": return One(In("x").Pow(c.Float("exponent")));
            case "silu": return One(In("x").Silu());
            case "sigmoid": return One(In("x").Sigmoid());
            case "tanh": return One(In("x").Tanh());
            case "matmul":
                {
                    // Transposes are views of the stored tensors: the gradients are w.r.t. the stored layout.
                    var a = c.Bool("transpose_a") ? In("a").Transpose(-1, -2) : In("a");
                    var b = c.Bool("transpose_b") ? In("b").Transpose(-1, -2) : In("b");
                    return One(a.MatMul(b));
                }
            case "linear":
                return One(Tensor.Linear(In("x"), In("weight"), c.Bool("bias") ? In("bias") : null));
            case "sum":
                {
                    var dims = c.Ints("dims");
                    return One(In("x").Sum(dims.Length == 0 ? null : dims, c.Bool("keepdim")));
                }
            case "mean":
                {
                    var dims = c.Ints("dims");
                    return One(In("x").Mean(dims.Length == 0 ? null : dims, c.Bool("keepdim")));
                }
            case "max": return One(In("x").Max(SingleDim(c), c.Bool("keepdim")));
            case "min": return One(In("x").Min(SingleDim(c), c.Bool("keepdim")));
            case "where": return One(Tensor.Where(In("cond"), In("a"), In("b")));
            case "masked_fill": return One(In("x").MaskedFill(In("mask"), c.Float("value")));
            case "softmax": return One(In("x").Softmax(c.Int("dim")));
            case "log_softmax": return One(In("x").LogSoftmax(c.Int("dim")));
            case "embedding": return One(Functional.Embedding(In("ids"), In("weight")));
            case "gather": return One(In("x").Gather(c.Int("dim"), In("index")));
            case "index_select": return One(In("x").IndexSelect(c.Int("dim"), In("index")));
            case "scatter_add": return One(In("x").ScatterAdd(c.Int("dim"), In("index"), In("src")));
            // cat/stack take every input, in call order.
            case "cat": return One(Tensor.Cat(c.Inputs.Select(In).ToList(), c.Int("dim")));
            case "stack": return One(Tensor.Stack(c.Inputs.Select(In).ToList(), c.Int("dim")));
            case "split": return In("x").Split(c.Ints("sizes"), c.Int("dim")).ToArray();
            case "rms_norm": return One(Functional.RmsNorm(In("x"), In("weight"), c.Float("eps")));
            case "rope":
                {
                    int seqDim = c.Str("layout") switch
                    {
                        "BTHD" => 1,
                        "BHTD" => 2,
                        var l => throw new InvalidOperationException($"case '{c.Name}': unknown rope layout '{l}'"),
                    };
                    return One(Functional.Rope(In("x"), In("cos"), In("sin"), seqDim));
                }
            case "cross_entropy":
                return One(Functional.CrossEntropy(In("logits"), In("targets"), Attrs64(c, "ignore_index")));
            case "sdpa":
                {
                    // Both the fixture and the engine align the causal mask bottom-right (a query block after a
                    // cached prefix), so cases with Tq < Tk check the decode/prefill-with-cache layout too.
                    return One(Functional.ScaledDotProductAttention(In("q"), In("k"), In("v"), c.Bool("causal"), c.Has("scale") ? c.Float("scale") : null));
                }
            case "topk":
                {
                    var (values, indices) = In("x").TopK(c.Int("k"));
                    return [values, indices];
                }
            default:
                throw new UnknownFixtureOpException(c);
        }
    }

    private static long Attrs64(FixtureCase c, string key) => c.Attrs.GetProperty(key).GetInt64();

    private static int SingleDim(FixtureCase c)
    {
        var dims = c.Ints("dims");
        if (dims.Length != 1) throw new InvalidOperationException($"case '{c.Name}': {c.Op} takes exactly one dim, got [{string.Join(", ", dims)}]");
        return dims[0];
    }
}

/// <summary>The fixture names an op the mapping does not know: the test must fail, not skip it.</summary>
internal sealed class UnknownFixtureOpException(FixtureCase c)
    : Exception($"case '{c.Name}': unknown op '{c.Op}' — add it to FixtureOps.Apply (a fixture case is never skipped)");
