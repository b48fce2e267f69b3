using NativeReasoner.Nn;

namespace NativeReasoner.Optim;

/// <summary>
/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and (L2, coupled)
/// weight decay, as torch.optim.SGD (maximize=False):
/// <code>
/// g' ← g + wd·p
/// buf ← g'                                  on the parameter's first update
/// buf ← momentum·buf + (1−dampening)·g'     afterwards
/// d  ← nesterov ? g' + momentum·buf : buf   (d = g' when momentum = 0; no buffer exists then)
/// p  ← p − lr·d
/// </code>
/// The momentum buffer is created on a parameter's first update (with momentum &gt; 0) and freed by Dispose.
/// </summary>
public sealed unsafe class Sgd : Optimizer
{
    private readonly Dictionary<Parameter, Tensor> _momentum = new(ReferenceEqualityComparer.Instance);

    public float Momentum { get; }
    public float Dampening { get; }
    public bool Nesterov { get; }

    public Sgd(IEnumerable<Parameter> parameters, float lr, float momentum = 0f, float dampening = 0f,
        float weightDecay = 0f, bool nesterov = false)
        : this(SingleGroup(parameters), lr, momentum, dampening, weightDecay, nesterov)
    {
    }

    /// <summary>Groups may set their own learning rate and weight decay; the rest come from here.</summary>
    public Sgd(IEnumerable<ParamGroup> groups, float lr, float momentum = 0f, float dampening = 0f,
        float weightDecay = 0f, bool nesterov = false)
        : base(groups, lr, weightDecay)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(momentum);
        ArgumentOutOfRangeException.ThrowIfNegative(dampening);
        // As torch: Nesterov's look-ahead is only defined for undamped momentum.
        if (nesterov && (momentum <= 0f || dampening != 0f))
            throw new ArgumentException("Nesterov momentum requires momentum > 0 and dampening = 0");
        Momentum = momentum;
        Dampening = dampening;
        Nesterov = nesterov;
    }

    protected override void Update(ParamGroup group, Parameter p, Tensor grad)
    {
        float* buffer = null;
        bool firstStep = false;
        if (Momentum != 0f)
        {
            if (!_momentum.TryGetValue(p, out var buf))
            {
                // The kernel overwrites it with g' on the first step, so its initial value is irrelevant.
                buf = NewState(p);
                _momentum[p] = buf;
                firstStep = true;
            }
            buffer = buf.Data;
        }
        p.Device.Kernels.SgdStep(p.Data, grad.Data, buffer, p.Numel, group.LearningRate, Momentum, Dampening,
            group.WeightDecay, Nesterov, firstStep);
    }

    protected override void DisposeState()
    {
        foreach (var b in _momentum.Values) b.Dispose();
        _momentum.Clear();
    }
}
