using System.Text.RegularExpressions;
using NativeReasoner.IO;
using NativeReasoner.Kernels;

namespace NativeReasoner.Model;

/// <summary>
/// The fused-experts spelling of MoE weights (transformers ≥ 5's Qwen3MoeExperts in modeling_qwen3_moe.py):
/// <c>P.experts.gate_up_proj</c> [E, 2·I, H] holds each expert's gate rows then its up rows
/// (gate, up = (x @ gate_up_proj[e].T).chunk(2, dim=-1)) and <c>P.experts.down_proj</c> [E, H, I]; the model keeps
/// one parameter per expert (<c>P.experts.{e}.{gate,up,down}_proj.weight</c>). Each per-expert weight is a contiguous
/// run of the fused tensor's elements, so loading maps a name to (fused tensor, element offset) and copies that run.
/// </summary>
public static partial class FusedExpertWeights
{
    /// <summary>Where a parameter's values lie in the file: a tensor and the element its run starts at.</summary>
    public readonly record struct Slice(string Tensor, long ElementOffset);

    [GeneratedRegex(@"^(?<prefix>.+\.experts)\.(?<e>\d+)\.(?<proj>gate_proj|up_proj|down_proj)\.weight$")]
    private static partial Regex ExpertWeight();

    /// <summary>
    /// For every model tensor the file lacks under its own name but holds inside a fused experts tensor, where its
    /// values are. Checks each fused tensor's shape against [E, 2·I, H] / [E, H, I] (E the model's expert count,
    /// I and H from the per-expert weights) and that it is not FP8 (no block-scale layout is defined for it).
    /// </summary>
    public static Dictionary<string, Slice> Resolve(IReadOnlyDictionary<string, Tensor> own,
        SafetensorsCheckpoint ckpt, string directory)
    {
        var slices = new Dictionary<string, Slice>(StringComparer.Ordinal);
        var expertsPerPrefix = new Dictionary<string, int>(StringComparer.Ordinal);
        var matches = new List<(string Name, string Prefix, int Expert, string Proj, Tensor Target)>();
        foreach (var (name, target) in own)
        {
            var m = ExpertWeight().Match(name);
            if (!m.Success) continue;
            string prefix = m.Groups["prefix"].Value;
            int e = int.Parse(m.Groups["e"].Value, System.Globalization.CultureInfo.InvariantCulture);
            expertsPerPrefix[prefix] = Math.Max(expertsPerPrefix.GetValueOrDefault(prefix), e + 1);
            if (!ckpt.Contains(name)) matches.Add((name, prefix, e, m.Groups["proj"].Value, target));
        }
        foreach (var (name, prefix, e, proj, target) in matches)
        {
            if (target.Rank != 2) continue;
            bool down = proj == "down_proj";
            string fused = prefix + (down ? ".down_proj" : ".gate_up_proj");
            if (!ckpt.Contains(fused)) continue; // reported as missing under the model's own name
            int experts = expertsPerPrefix[prefix];
            // gate/up weight: [I, H]; down weight: [H, I].
            long rows = target.Shape[0], cols = target.Shape[1];
            long[] expected = down ? [experts, rows, cols] : [experts, 2 * rows, cols];
            var entry = ckpt.GetEntry(fused);
            if (!entry.Shape.SequenceEqual(expected))
                throw new CheckpointMismatchException(
                    $"checkpoint {directory}: fused experts tensor '{fused}' has shape {ShapeText(entry.Shape)}, " +
                        $"the model expects {ShapeText(expected)} " +
                        (down ? "([experts, hidden, moe_intermediate])" : "([experts, 2·moe_intermediate, hidden])"));
            if (!entry.DType.IsFloating())
                throw new CheckpointMismatchException(
                    $"checkpoint {directory}: fused experts tensor '{fused}' is {entry.DType}; F32, BF16 or F16 " +
                        "was expected (FP8 experts are read only in the one-by-one spelling)");
            long block = expected[1] * expected[2];
            long offset = e * block + (proj == "up_proj" ? rows * cols : 0);
            slices[name] = new Slice(fused, offset);
        }
        return slices;
    }

    private static string ShapeText(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
