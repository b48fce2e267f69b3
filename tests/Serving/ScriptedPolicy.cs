using NativeReasoner.Model;
using NativeReasoner.Nn;
using NativeReasoner.RL;

namespace NativeReasoner.Tests.Serving;

/// <summary>
/// A policy that "generates" a text chosen from the prompt, token by token through the same callbacks, stop checks
/// and cancellation as <see cref="TextGeneration"/>, then EOS: the random tiny model cannot be made to write a
/// thinking block or a tool call, this can. Records every prompt and how many tokens each call produced.
/// </summary>
internal sealed class ScriptedPolicy(ITokenizer tokenizer, Func<string, string> script, int delayMs = 0) : IPolicy
{
    public List<string> Prompts { get; } = [];
    public List<int> Produced { get; } = [];
    public List<int> ScriptLengths { get; } = [];

    public int VocabSize => tokenizer.VocabSize;

    public Tensor Logits(Tensor inputIds) => throw new NotSupportedException("a scripted policy has no logits");

    public IEnumerable<Parameter> Parameters() => [];

    public IReadOnlyList<SampledSequence> Generate(IReadOnlyList<long[]> prompts, GenerationOptions options,
        Generator rng)
    {
        var prompt = tokenizer.Decode(prompts[0].Select(i => (int)i));
        Prompts.Add(prompt);
        var ids = tokenizer.Encode(script(prompt)).Select(i => (long)i).Append(tokenizer.EosId).ToArray();
        ScriptLengths.Add(ids.Length);
        var output = new List<long>();
        var reason = FinishReason.Length;
        foreach (var id in ids)
        {
            if (output.Count >= options.MaxNewTokens) break;
            if (options.Cancellation.IsCancellationRequested) { reason = FinishReason.Cancelled; break; }
            if (delayMs > 0) Thread.Sleep(delayMs);
            output.Add(id);
            options.OnToken?.Invoke(0, id);
            if (id == tokenizer.EosId) { reason = FinishReason.Eos; break; }
            if (options.StopStrings.Count > 0
                && options.StopStrings.Any(s => options.Detokenize!(output).Contains(s, StringComparison.Ordinal)))
            {
                reason = FinishReason.StopString;
                break;
            }
        }
        Produced.Add(output.Count);
        return [new SampledSequence(output.ToArray(), reason)];
    }
}
