using NativeReasoner.Nn;

namespace NativeReasoner.Optim;

/// <summary>
/// A set of parameters that share hyperparameters inside one optimizer (torch's param_groups), e.g. no
/// weight decay for norms and biases. A hyperparameter left null takes the optimizer's default when the
/// group is given to the optimizer; after that the group's values can be changed between steps.
/// </summary>
public sealed class ParamGroup
{
    private float? _learningRate;
    private float? _weightDecay;

    public ParamGroup(IEnumerable<Parameter> parameters, float? learningRate = null, float? weightDecay = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = parameters.ToArray();
        if (learningRate is < 0f) throw new ArgumentOutOfRangeException(nameof(learningRate), $"learning rate must be ≥ 0, got {learningRate}");
        if (weightDecay is < 0f) throw new ArgumentOutOfRangeException(nameof(weightDecay), $"weight decay must be ≥ 0, got {weightDecay}");
        _learningRate = learningRate;
        _weightDecay = weightDecay;
    }

    public IReadOnlyList<Parameter> Parameters { get; }

    public float LearningRate
    {
        get => _learningRate ?? throw new InvalidOperationException("this group's learning rate is not set and it has not been given to an optimizer yet");
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _learningRate = value;
        }
    }

    public float WeightDecay
    {
        get => _weightDecay ?? throw new InvalidOperationException("this group's weight decay is not set and it has not been given to an optimizer yet");
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _weightDecay = value;
        }
    }

    internal void ApplyDefaults(float learningRate, float weightDecay)
    {
        _learningRate ??= learningRate;
        _weightDecay ??= weightDecay;
    }
}
