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
        if (!_state.TryGetValue(p, out var s))
        {
            s = new State(NewState(p), NewState(p));
            _state[p] = s;
        }
        s.Step++;
        // Powers in double: for β2 = 0.999 the float rounding of 1 − β2^t is visible in the first steps.
        double bias1 = 1.0 - Math.Pow(Beta1, s.Step);
        double bias2 = 1.0 - Math.Pow(Beta2, s.Step);
        p.Device.Kernels.AdamWStep(p.Data, grad.Data, s.M.Data, s.V.Data, p.Numel, group.LearningRate,
            Beta1, Beta2, Eps, group.WeightDecay, (float)bias1, (float)bias2);
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
