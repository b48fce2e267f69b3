using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>
/// One GRPO loss and its weight gradients on a checkpoint, in the layout of TRL's golden case
/// (<c>nr grpo-grad</c>): the external check of the model's backward and the GRPO loss together.
/// Input safetensors: <c>input_ids</c> I64 [N, T], <c>completion_mask</c> F32 [N, T], <c>rewards</c> F32 [N],
/// <c>old_per_token_logps</c>, <c>ref_per_token_logps</c> F32 [N, T] (both optional; old defaults to
/// logps.detach()). Output: <c>loss</c> [1], <c>per_token_logps</c> [N, T] (position t scores token t given
/// 0..t−1; position 0 holds 0), <c>advantages</c> [N] and <c>grad.&lt;HF name&gt;</c> for every weight with a gradient.
/// </summary>
public static class GrpoGrad
{
    public sealed record Settings(GrpoLossOptions Loss, float Temperature, ScaleRewards ScaleRewards, int NumGenerations);

    public static void Run(string modelDir, string inputPath, string outPath, Settings settings, Device? device = null)
    {
        using var f = SafetensorsFile.Open(inputPath);
        foreach (var name in new[] { "input_ids", "completion_mask", "rewards" })
            if (!f.Contains(name)) throw new ArgumentException($"{inputPath} has no tensor '{name}' (needs input_ids, completion_mask, rewards)");
        var idsShape = f.GetEntry("input_ids").Shape;
        if (idsShape.Length != 2) throw new ArgumentException($"{inputPath}: input_ids must be [N, T]");
        int N = (int)idsShape[0], T = (int)idsShape[1];
        var ids = f.ReadInt64("input_ids");
        float[] ReadNT(string name)
        {
            var e = f.GetEntry(name);
            if (e.Shape.Length != 2 || e.Shape[0] != N || e.Shape[1] != T) throw new ArgumentException($"{inputPath}: {name} must be [{N}, {T}]");
            return f.ReadFloat32(name);
        }
        var mask = ReadNT("completion_mask");
        var rewards = f.ReadFloat32("rewards");
        if (rewards.Length != N) throw new ArgumentException($"{inputPath}: rewards must have {N} values, got {rewards.Length}");
        var old = f.Contains("old_per_token_logps") ? ReadNT("old_per_token_logps") : null;
        var refp = f.Contains("ref_per_token_logps") ? ReadNT("ref_per_token_logps") : null;

        using var model = CausalLMRegistry.Load(modelDir, device);
        var adv = Advantages.Compute(rewards, settings.NumGenerations, settings.ScaleRewards);
        var loss = settings.Loss with { MaxCompletionLength = settings.Loss.MaxCompletionLength > 0 ? settings.Loss.MaxCompletionLength : T };
        var outputs = new List<SafetensorsTensor>();
        using (var scope = new TensorScope())
        {
            var dev = model.Device;
            var input = Tensor.FromArray(ids, N, T).To(dev);
            var logits = model.Forward(input);                                          // [N, T, V]
            var window = logits.Narrow(1, 0, T - 1);                                    // [N, T−1, V]: position t−1 predicts token t
            var next = input.Narrow(1, 1, T - 1);                                       // [N, T−1]
            var lp = TokenLogProbs.Selected(window, next, settings.Temperature);        // [N, T−1]
            var logps = Tensor.Cat([Tensor.Zeros([N, 1], DType.Float32, dev), lp], 1);  // [N, T]
            Tensor? T2(float[]? a) => a == null ? null : Tensor.FromArray(a, N, T).To(dev);
            using var result = GrpoLoss.Compute(logps, T2(old), T2(refp), Tensor.FromArray(adv.Values, N).To(dev), T2(mask)!, loss);
            result.Loss.Backward();
            outputs.Add(F32("loss", [1], [result.Loss.Item()]));
            outputs.Add(F32("per_token_logps", [N, T], logps.ToArray()));
            outputs.Add(F32("advantages", [N], adv.Values));
            foreach (var (name, p) in model.NamedParameters())
                if (p.Grad is { } g) outputs.Add(F32("grad." + name, p.Shape.ToArray().Select(d => (long)d).ToArray(), g.ToArray()));
        }
        SafetensorsWriter.Write(outPath, outputs);
    }

    private static SafetensorsTensor F32(string name, long[] shape, float[] data)
    {
        var bytes = new byte[data.Length * sizeof(float)];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
        return new SafetensorsTensor(name, DType.Float32, shape, bytes);
    }
}
