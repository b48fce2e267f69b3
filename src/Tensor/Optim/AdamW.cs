using NativeReasoner.Kernels;
using NativeReasoner.Nn;

namespace NativeReasoner.Optim;

/// <summary>
/// Adam with decoupled weight decay (torch.optim.AdamW, amsgrad=False, maximize=False). For each
/// parameter with a gradient, with t its own step count (incremented only on steps where it has a
/// gradient, as in PyTorch's per-parameter state['step']):
/// <code>
/// p ← p − lr·wd·p
/// m ← β1·m + (1−β1)·g
/// v ← β2·v + (1−β2)·g²
/// p ← p − lr · (m / (1−β1^t)) / (√(v / (1−β2^t)) + eps)
/// </code>
/// m and v start at zero, are created on a parameter's first update, and are freed by Dispose.
/// </summary>
public sealed unsafe partial class AdamW : Optimizer
{
    private sealed class State(Tensor m, Tensor v)
    {
        public Tensor M { get; } = m;
        public Tensor V { get; } = v;
        public long Step { get; set; }
    }

    private readonly Dictionary<Parameter, State> _state = new(ReferenceEqualityComparer.Instance);

    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Eps { get; }

    /// <summary>
    /// torch's <c>foreach</c>: on a backend with <see cref="IMultiTensorAdamW"/>, update the tensors of a group that
    /// share a device and a step count in one launch (default). False takes one <see cref="IKernels.AdamWStep"/> per
    /// tensor everywhere; the results are the same.
    /// </summary>
    public bool Foreach { get; set; } = true;

    public AdamW(IEnumerable<Parameter> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0.01f)
        : this(SingleGroup(parameters), lr, beta1, beta2, eps, weightDecay)
    {
    }

    /// <summary>Groups may set their own learning rate and weight decay; the rest come from here.</summary>
    public AdamW(IEnumerable<ParamGroup> groups, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0.01f)
        : base(groups, lr, weightDecay)
    {
        if (beta1 is < 0f or >= 1f) throw new ArgumentOutOfRangeException(nameof(beta1), $"beta1 must be in [0, 1), got {beta1}");
        if (beta2 is < 0f or >= 1f) throw new ArgumentOutOfRangeException(nameof(beta2), $"beta2 must be in [0, 1), got {beta2}");
        ArgumentOutOfRangeException.ThrowIfNegative(eps);
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
    }

    /// <summary>How many updates <paramref name="p"/> has received (its bias-correction t); 0 before the first.</summary>
    public long ParameterStep(Parameter p) => _state.TryGetValue(p, out var s) ? s.Step : 0;

    protected override void Update(ParamGroup group, Parameter p, Tensor grad)
    {
        var s = Advance(p);
        BiasCorrections(s.Step, out float bias1, out float bias2);
        p.Device.Kernels.AdamWStep(p.Data, grad.Data, s.M.Data, s.V.Data, p.Numel, group.LearningRate,
            Beta1, Beta2, Eps, group.WeightDecay, bias1, bias2);
    }

    // Per-call scratch of UpdateGroup, grown to the largest group and then reused (Step allocates nothing once warm).
    private State[] _groupState = [];
    private bool[] _groupDone = [];
    private nint[] _ptrP = [], _ptrG = [], _ptrM = [], _ptrV = [];
    private long[] _sizes = [];

    /// <summary>
    /// On a backend with <see cref="IMultiTensorAdamW"/> (CUDA, CPU), the group's parameters that share a device and a
    /// step count — hence the same bias corrections — go to the device in one launch; on a GPU a per-tensor launch
    /// for each of a model's hundreds of small tensors (norms, biases) would cost more than the arithmetic.
    /// Parameters alone in their bucket (e.g. one that got its first gradient late and so has a smaller step) and
    /// every parameter on other backends take the per-tensor <see cref="IKernels.AdamWStep"/>. Same arithmetic
    /// element for element either way (the multi-tensor kernel shares the per-element update with AdamWStep).
    /// </summary>
    protected override void UpdateGroup(ParamGroup group, ReadOnlySpan<ParamUpdate> items)
    {
        int n = items.Length;
        if (_groupState.Length < n)
        {
            int cap = Math.Max(n, 2 * _groupState.Length);
            _groupState = new State[cap];
            _groupDone = new bool[cap];
            _ptrP = new nint[cap];
            _ptrG = new nint[cap];
            _ptrM = new nint[cap];
            _ptrV = new nint[cap];
            _sizes = new long[cap];
        }
        for (int i = 0; i < n; i++)
        {
            _groupState[i] = Advance(items[i].Parameter);
            _groupDone[i] = false;
        }
        try
        {
            float lr = group.LearningRate, wd = group.WeightDecay;
            for (int i = 0; i < n; i++)
            {
                if (_groupDone[i]) continue;
                var p = items[i].Parameter;
                var kernels = p.Device.Kernels;
                long step = _groupState[i].Step;
                BiasCorrections(step, out float bias1, out float bias2);
                int count = 0;
                if (Foreach && kernels is IMultiTensorAdamW)
                    for (int j = i; j < n; j++)
                    {
                        if (_groupDone[j] || _groupState[j].Step != step || !ReferenceEquals(items[j].Parameter.Device.Kernels, kernels)) continue;
                        var s = _groupState[j];
                        _ptrP[count] = (nint)items[j].Parameter.Data;
                        _ptrG[count] = (nint)items[j].Grad.Data;
                        _ptrM[count] = (nint)s.M.Data;
                        _ptrV[count] = (nint)s.V.Data;
                        _sizes[count] = items[j].Parameter.Numel;
                        _groupDone[j] = true;
                        count++;
                    }
                if (count > 1)
                {
                    fixed (nint* pp = _ptrP, pg = _ptrG, pm = _ptrM, pv = _ptrV)
                    fixed (long* pn = _sizes)
                        ((IMultiTensorAdamW)kernels).AdamWStepMulti(count, (float**)pp, (float**)pg, (float**)pm, (float**)pv, pn,
                            lr, Beta1, Beta2, Eps, wd, bias1, bias2);
                }
                else
                {
                    // A bucket of one gains nothing from the descriptor table: the plain launch.
                    var s = _groupState[i];
                    kernels.AdamWStep(p.Data, items[i].Grad.Data, s.M.Data, s.V.Data, p.Numel, lr, Beta1, Beta2, Eps, wd, bias1, bias2);
                    _groupDone[i] = true;
                }
            }
        }
        finally
        {
            // Drop the references so the scratch does not keep disposed state alive.
            Array.Clear(_groupState, 0, n);
        }
    }

    /// <summary>The state of <paramref name="p"/> (created at zero on its first update) with its step count advanced.</summary>
    private State Advance(Parameter p)
    {
        if (!_state.TryGetValue(p, out var s))
        {
            s = new State(NewState(p), NewState(p));
            _state[p] = s;
        }
        s.Step++;
        return s;
    }

    // Powers in double: for β2 = 0.999 the float rounding of 1 − β2^t is visible in the first steps.
    private void BiasCorrections(long step, out float bias1, out float bias2)
    {
        bias1 = (float)(1.0 - Math.Pow(Beta1, step));
        bias2 = (float)(1.0 - Math.Pow(Beta2, step));
    }

    protected override void DisposeState()
    {
        foreach (var s in _state.Values)
        {
            s.M.Dispose();
            s.V.Dispose();
        }
        _state.Clear();
    }
}
