// Source: SwiGLU (arXiv:2002.05202) as HF's DeepseekV3MLP (gate_proj, up_proj, down_proj).
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// down_proj( silu(gate_proj x) ⊙ up_proj x ), no biases: the dense MLP of the first layers, each routed
/// expert, and the (fused) shared experts.
/// </summary>
public sealed class SwiGluMlp : Module
{
    public Linear GateProj { get; }
    public Linear UpProj { get; }
    public Linear DownProj { get; }

    public SwiGluMlp(int hidden, int intermediate, Generator gen, Device? device = null)
    {
        GateProj = RegisterModule("gate_proj", new Linear(hidden, intermediate, false, gen, device));
        UpProj = RegisterModule("up_proj", new Linear(hidden, intermediate, false, gen, device));
        DownProj = RegisterModule("down_proj", new Linear(intermediate, hidden, false, gen, device));
    }

    /// <summary>x: [..., hidden] → [..., hidden].</summary>
    public override Tensor Forward(Tensor x)
    {
        var g = Tensor.Linear(x, GateProj.Weight).Silu();
        var u = Tensor.Linear(x, UpProj.Weight);
        return Tensor.Linear(g * u, DownProj.Weight);
    }
}
