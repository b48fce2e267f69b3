// Source: Hugging Face tokenizers' post-processors (tokenizers/src/processors/{template.rs,byte_level.rs,
// roberta.rs,bert.rs,sequence.rs}), for a single sequence.
namespace NativeReasoner.RL.Tokenizers;

/// <summary>Adds a tokenizer's special tokens (BOS, CLS/SEP, …) around one encoded sequence.</summary>
public abstract class PostProcessor
{
    /// <summary>The ids of <paramref name="sequence"/> with the special tokens added.</summary>
    public abstract List<int> Process(List<int> sequence);
}

/// <summary>ByteLevel post-processing only trims offsets; ids are left as they are.</summary>
public sealed class ByteLevelPostProcessor : PostProcessor
{
    public override List<int> Process(List<int> sequence) => sequence;
}

/// <summary>
/// TemplateProcessing's <c>single</c> template: special-token items (each may stand for several ids) and the
/// sequence <c>$A</c>, in order.
/// </summary>
public sealed class TemplatePostProcessor : PostProcessor
{
    /// <summary>Each item: the ids of a special token, or null for the sequence.</summary>
    public IReadOnlyList<int[]?> Single { get; }

    public TemplatePostProcessor(IReadOnlyList<int[]?> single)
    {
        if (single.Count(i => i == null) != 1)
            throw new InvalidDataException("TemplateProcessing: the single template must name the sequence $A " +
                "exactly once");
        Single = single;
    }

    public override List<int> Process(List<int> sequence)
    {
        var result = new List<int>(sequence.Count + Single.Count);
        foreach (var item in Single)
            if (item == null) result.AddRange(sequence);
            else result.AddRange(item);
        return result;
    }
}

/// <summary>BertProcessing / RobertaProcessing for one sequence: <c>[CLS] A [SEP]</c>.</summary>
public sealed class ClsSepPostProcessor(int clsId, int sepId) : PostProcessor
{
    public override List<int> Process(List<int> sequence)
    {
        var result = new List<int>(sequence.Count + 2) { clsId };
        result.AddRange(sequence);
        result.Add(sepId);
        return result;
    }
}

/// <summary>Applies its post-processors in order.</summary>
public sealed class SequencePostProcessor(IReadOnlyList<PostProcessor> processors) : PostProcessor
{
    public IReadOnlyList<PostProcessor> Processors { get; } = processors;

    public override List<int> Process(List<int> sequence)
    {
        foreach (var p in Processors) sequence = p.Process(sequence);
        return sequence;
    }
}
