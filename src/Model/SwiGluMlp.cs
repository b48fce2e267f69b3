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
        var gate = Tensor.Linear(x, GateProj.Weight); // [..., intermediate]
        var up = Tensor.Linear(x, UpProj.Weight);     // [..., intermediate]
        if (Autograd.GradMode.IsEnabled && (gate.RequiresGrad || up.RequiresGrad))
            return Tensor.Linear(gate.Silu() * up, DownProj.Weight);
        // Nothing to differentiate (decode, prefill, rollouts): silu(gate)·up in one fused pass instead of two
        // elementwise ops and two fresh intermediates, each freed as soon as it is used. On the CPU the fused kernel
        // computes exactly the unfused graph's float operations, so inference and training see the same values.
        using (gate)
        using (up)
        {
            using var act = Functional.SiluMul(gate, up);
            return Tensor.Linear(act, DownProj.Weight);
        }
    }
}
