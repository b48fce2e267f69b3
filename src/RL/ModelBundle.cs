// Source: HF's from_pretrained of a model directory: config + weights + tokenizer + template.
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.IO;
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>
/// A model directory as the RL commands use it: a checkpoint of any supported family in HF layout (config.json +
/// safetensors, the family from its model_type), its <c>tokenizer.json</c> and optional <c>prompt_template.json</c>.
/// </summary>
public sealed class ModelBundle : IDisposable
{
    public CausalLMPolicy Policy { get; }
    public ITokenizer Tokenizer { get; }
    public PromptTemplate Template { get; }

    private ModelBundle(CausalLMPolicy policy, ITokenizer tokenizer, PromptTemplate template)
    {
        Policy = policy;
        Tokenizer = tokenizer;
        Template = template;
    }

    /// <summary>A bundle around a model built in memory (a distillation student); the bundle owns the model.</summary>
    public static ModelBundle Create(ICausalLM model, ITokenizer tokenizer, PromptTemplate template)
    {
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {model.Config.VocabSize}");
        return new ModelBundle(new CausalLMPolicy(model), tokenizer, template);
    }

    /// <summary>
    /// What loading the checkpoint did (notes, weight and resident bytes); null for a bundle built in memory.
    /// </summary>
    public CheckpointLoadReport? LoadReport { get; private init; }

    /// <summary>
    /// Loads the tokenizer first, so a directory without one fails fast with a clear message. The weights are float32
    /// masters unless <paramref name="options"/> says otherwise (<see cref="CheckpointLoadOptions.Inference"/>).
    /// </summary>
    public static ModelBundle Load(string directory, Device? device = null, CheckpointLoadOptions? options = null)
    {
        var tokenizer = TokenizerLoader.Load(directory);
        var template = PromptTemplate.Load(directory);
        var model = CausalLMRegistry.Load(directory, device, options ?? CheckpointLoadOptions.Training,
            out var report);
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            model.Dispose();
            throw new InvalidDataException($"{directory}: the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {model.Config.VocabSize}");
        }
        model.Eval();
        return new ModelBundle(new CausalLMPolicy(model), tokenizer, template) { LoadReport = report };
    }

    /// <summary>Writes the checkpoint (HF layout), tokenizer.json and prompt_template.json into <paramref name="directory"/>.</summary>
    public void Save(string directory)
    {
        Policy.Model.Save(directory);
        Tokenizer.Save(directory);
        Template.Save(directory);
    }

    public long[] EncodePrompt(string question) => Tokenizer.EncodePrompt(Template.Format(question));

    public void Dispose() => Policy.Model.Dispose();
}

/// <summary>Prompt files for <c>nr generate</c>: JSONL, one <c>{"prompt": "…"}</c> per line.</summary>
public static class PromptFile
{
    public static List<string> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"prompts file '{path}' does not exist", path);
        var prompts = new List<string>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            using var doc = StrictJson.Parse(line, $"{path}:{lineNo}");
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("prompt", out var p)
                || p.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{path}:{lineNo}: expected an object with a string \"prompt\", got " +
                                               (line.Length <= 200 ? line.Trim() : line[..200] + "…"));
            var prompt = p.GetString()!;
            prompts.Add(prompt);
        }
        return prompts;
    }

    /// <summary>
    /// One output line: {"prompt": …, "completions": [{"text": …, "reasoning": …, "answer": …, "tokens": n,
    /// "finish_reason": "stop"|"length"}]}; reasoning and answer come from <see cref="Chat.ThinkingSplit"/>
    /// (<paramref name="thinkingForced"/>: the prompt ended inside a thinking block).
    /// </summary>
    public static string ResultLine(string prompt, IEnumerable<(string Text, int Tokens, bool Truncated)> completions,
        bool thinkingForced = false)
    {
        var arr = new JsonArray();
        foreach (var (text, tokens, truncated) in completions)
        {
            var parts = Chat.ThinkingSplit.Split(text, thinkingForced);
            arr.Add(new JsonObject
            {
                ["text"] = text, ["reasoning"] = parts.Reasoning, ["answer"] = parts.Answer, ["tokens"] = tokens,
                ["finish_reason"] = truncated ? "length" : "stop",
            });
        }
        return new JsonObject { ["prompt"] = prompt, ["completions"] = arr }
            .ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }
}
