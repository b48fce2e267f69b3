using NativeReasoner.Model;
using NativeReasoner.Nn;
using NativeReasoner.RL;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// A bigram language model (logits of the next token = a learned row per current token) built from
/// src/Tensor modules: small enough that the GRPO / SFT loops run end to end in milliseconds.
/// </summary>
public sealed class BigramPolicy : Module, IPolicy
{
    public Embedding Table { get; }

    public BigramPolicy(int vocab, ulong seed)
    {
        Table = RegisterModule("table", new Embedding(vocab, vocab, new Generator(seed)));
        // Start near uniform so every token gets sampled now and then.
        using (Tensor.NoGrad()) Table.Weight.MulInPlace_(0.1f);
    }

    public int VocabSize => Table.NumEmbeddings;

    /// <summary>ids [B, T] → logits [B, T, V] (row ids[b, t] of the table).</summary>
    public Tensor Logits(Tensor inputIds) => Table.Forward(inputIds);

    IEnumerable<Parameter> IPolicy.Parameters() => Parameters();

    public IReadOnlyList<SampledSequence> Generate(IReadOnlyList<long[]> prompts, GenerationOptions options, Generator rng) =>
        Sampling.GenerateByRecompute(this, prompts, options, rng);
}

/// <summary>A policy that answers from a script (for rejection sampling); it has no logits.</summary>
public sealed class ScriptedPolicy(ITokenizer tokenizer, Func<int, string> completionForSample) : IPolicy
{
    private int _calls;

    public int VocabSize => tokenizer.VocabSize;

    public Tensor Logits(Tensor inputIds) => throw new NotSupportedException();

    public IEnumerable<Parameter> Parameters() => [];

    public IReadOnlyList<SampledSequence> Generate(IReadOnlyList<long[]> prompts, GenerationOptions options, Generator rng) =>
        prompts.Select(_ =>
        {
            var ids = tokenizer.Encode(completionForSample(_calls++)).Append(tokenizer.EosId).Select(i => (long)i).ToArray();
            return new SampledSequence(ids, FinishReason.Eos);
        }).ToArray();
}

/// <summary>
/// A unigram model: one learned logit vector shared by every position (logits [B, T, V] = bias broadcast).
/// All samples train the same row, so a reward on token choice shows up within a few GRPO steps.
/// </summary>
public sealed class UnigramPolicy : Module, IPolicy
{
    public Parameter Bias { get; }

    public UnigramPolicy(int vocab) => Bias = RegisterParameter("bias", new Parameter(Tensor.Zeros(vocab)));

    public int VocabSize => Bias.Shape[0];

    public Tensor Logits(Tensor inputIds)
    {
        using var row = Bias.Reshape(1, 1, VocabSize);
        return row.Expand(inputIds.Shape[0], inputIds.Shape[1], VocabSize);
    }

    IEnumerable<Parameter> IPolicy.Parameters() => Parameters();

    public IReadOnlyList<SampledSequence> Generate(IReadOnlyList<long[]> prompts, GenerationOptions options, Generator rng) =>
        Sampling.GenerateByRecompute(this, prompts, options, rng);
}
