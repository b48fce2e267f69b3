using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;

namespace NativeReasoner.Tests.Fuzz;

/// <summary>
/// Every reader of a file that a user or a run may hand the engine, with its documented exception types. To fuzz a
/// new reader (a GGUF file, the server's request bodies), add one entry here and its seeds under
/// <c>tests/fixtures/fuzz/NAME/seed-*</c>: the tests in <see cref="ReaderFuzzTests"/> pick it up.
/// </summary>
public static class ReaderFuzzTargets
{
    public static IReadOnlyList<ReaderFuzzTarget> All { get; } =
    [
        Safetensors(), SafetensorsIndex(), ConfigJson(), TokenizerJsonTarget(), TokenizerConfig(), ChatTemplateJinja(),
        PromptsJsonl(), SftJsonl(), MetricsJsonl(), SummaryJson(), RunJson(), CheckpointState(), CheckpointManifest(),
    ];

    public static ReaderFuzzTarget Get(string name) => All.Single(t => t.Name == name);

    /// <summary>A conversation with every role and a thinking block, as the chat commands send one.</summary>
    private static readonly ChatMessage[] Conversation =
    [
        new("system", "You are terse."), new("user", "What is 2 + 3?"),
        new("assistant", "5", ReasoningContent: "2 plus 3 is 5"), new("user", "And 47 * 6? 😀"),
    ];

    private const string SampleText = "Hello world! 47 * 6 = 282\n<think>ünïcödé 😀</think><|im_start|> \t  x";

    private static ReaderFuzzTarget Safetensors() => new()
    {
        Name = "safetensors",
        FileName = SafetensorsCheckpoint.SingleFileName,
        Read = ReadEveryTensor,
        IsDocumented = e => e is SafetensorsException,
    };

    private static ReaderFuzzTarget SafetensorsIndex() => new()
    {
        Name = "safetensors-index",
        FileName = SafetensorsCheckpoint.IndexFileName,
        Setup = dir =>
        {
            foreach (var shard in Directory.GetFiles(Fixture("deepseek-v3-fp8"), "*.safetensors"))
                File.Copy(shard, Path.Combine(dir, Path.GetFileName(shard)));
        },
        Read = ReadEveryTensor,
        IsDocumented = e => e is SafetensorsException,
    };

    private static void ReadEveryTensor(string dir)
    {
        using var checkpoint = SafetensorsCheckpoint.Open(dir);
        foreach (var name in checkpoint.Names)
        {
            var entry = checkpoint.GetEntry(name);
            _ = checkpoint.GetBytes(name).Length;
            if (entry.DType is DType.Float32 or DType.BFloat16 or DType.Float16 or DType.Float8E4M3)
                _ = checkpoint.ReadFloat32(name);
            else if (entry.DType == DType.Int64) _ = checkpoint.ReadInt64(name);
            checkpoint.ReleasePages(name);
        }
    }

    private static ReaderFuzzTarget ConfigJson() => new()
    {
        Name = "config-json",
        FileName = CausalLMRegistry.ConfigFileName,
        Read = dir =>
        {
            var config = CausalLMRegistry.LoadConfig(dir);
            _ = config.ToString();
            _ = QuantizationConfig.Load(dir);
        },
        IsDocumented = e => e is ModelConfigException,
    };

    private static ReaderFuzzTarget TokenizerJsonTarget() => new()
    {
        Name = "tokenizer-json",
        FileName = TokenizerLoader.FileName,
        Read = dir => UseTokenizer(TokenizerLoader.Load(dir)),
        IsDocumented = e => e is InvalidDataException or NotSupportedException,
    };

    private static void UseTokenizer(ITokenizer tokenizer)
    {
        var ids = tokenizer.Encode(SampleText);
        _ = tokenizer.Decode(ids);
        _ = tokenizer.Decode(ids, skipSpecialTokens: true);
        foreach (var id in ids) _ = tokenizer.IdToToken(id);
        _ = tokenizer.TokenToId("<|im_start|>");
    }

    private static ReaderFuzzTarget TokenizerConfig() => new()
    {
        Name = "tokenizer-config",
        FileName = ChatTemplate.ConfigFileName,
        // The Qwen3 tokenizer beside it: tokenizer_config.json feeds both the tokenizer and the chat template.
        Setup = dir => File.Copy(Path.Combine(Fixture("fuzz"), "tokenizer-json", "seed-qwen3.json"),
            Path.Combine(dir, TokenizerLoader.FileName)),
        Read = dir =>
        {
            UseTokenizer(TokenizerLoader.Load(dir));
            _ = ChatTemplate.TryLoad(dir)?.Render(Conversation, addGenerationPrompt: true);
        },
        IsDocumented = e => e is InvalidDataException or TemplateException or NotSupportedException,
    };

    private static ReaderFuzzTarget ChatTemplateJinja() => new()
    {
        Name = "chat-template",
        FileName = ChatTemplate.JinjaFileName,
        Setup = dir => File.WriteAllText(Path.Combine(dir, ChatTemplate.ConfigFileName),
            """{"bos_token": "<s>", "eos_token": {"content": "</s>"}}"""),
        Read = dir =>
        {
            var template = ChatTemplate.TryLoad(dir) ?? throw new InvalidOperationException("no template loaded");
            _ = template.Render(Conversation, addGenerationPrompt: true);
            _ = template.Render(Conversation[..2], addGenerationPrompt: false);
        },
        IsDocumented = e => e is TemplateException,
    };

    private static ReaderFuzzTarget PromptsJsonl() => new()
    {
        Name = "prompts-jsonl",
        FileName = "prompts.jsonl",
        Read = dir => _ = PromptFile.Read(Path.Combine(dir, "prompts.jsonl")),
        IsDocumented = e => e is InvalidDataException,
    };

    private static ReaderFuzzTarget SftJsonl() => new()
    {
        Name = "sft-jsonl",
        FileName = "sft.jsonl",
        Read = dir => _ = SftData.ReadJsonl(Path.Combine(dir, "sft.jsonl")),
        IsDocumented = e => e is InvalidDataException,
    };

    private static ReaderFuzzTarget MetricsJsonl() => new()
    {
        Name = "metrics-jsonl",
        FileName = "metrics.jsonl",
        Read = dir =>
        {
            var path = Path.Combine(dir, "metrics.jsonl");
            _ = RunReport.ReadGrpoRows(path);
            // What a resumed run does with it: keep the rows up to the checkpoint, rewrite the file.
            _ = MetricsLogger.KeepThrough(path, 1, 2, _ => { });
            _ = RunReport.ReadGrpoRows(path);
        },
        IsDocumented = e => e is InvalidDataException,
    };

    private static ReaderFuzzTarget SummaryJson() => new()
    {
        Name = "summary-json",
        FileName = "summary.json",
        Read = dir => _ = RunReport.Write(dir),
        IsDocumented = e => e is InvalidDataException,
    };

    private static ReaderFuzzTarget RunJson() => new()
    {
        Name = "run-json",
        FileName = RunIdentity.FileName,
        Read = dir => RunIdentity.Claim(dir, new TrainSettings(), _ => { }),
        // A run.json of another configuration is refused with ArgumentException (the settings conflict).
        IsDocumented = e => e is ArgumentException or InvalidDataException,
        GeneratedSeeds = () =>
        [
            Encoding.UTF8.GetBytes(new JsonObject { ["settings"] = RunIdentity.Describe(new TrainSettings()) }
                .ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })),
        ],
    };

    private const string CheckpointDir = "checkpoints/ckpt-0-0000010";
    private static readonly byte[] CheckpointWeights = Encoding.UTF8.GetBytes("weights of step 10");
    private const string CheckpointStateJson = """{"phase_elapsed_s": 12.5, "phase_index": 0, "steps_done": 10}""";

    /// <summary>state.json mutated, with a manifest that matches it: what a hand edit (or a writer bug) leaves.
    /// The documented outcome of a bad checkpoint is no exception: it is reported and skipped.</summary>
    private static ReaderFuzzTarget CheckpointState() => new()
    {
        Name = "checkpoint-state",
        FileName = Path.Combine(CheckpointDir, RunCheckpoints.StateName),
        Setup = dir => Directory.CreateDirectory(Path.Combine(dir, CheckpointDir)),
        Read = dir =>
        {
            var ckpt = Path.Combine(dir, CheckpointDir);
            File.WriteAllBytes(Path.Combine(ckpt, "model.safetensors"), CheckpointWeights);
            File.WriteAllText(Path.Combine(ckpt, RunCheckpoints.ManifestName), Manifest(ckpt));
            _ = new RunCheckpoints(dir, _ => { }).LoadNewest();
        },
        IsDocumented = _ => false,
        GeneratedSeeds = () => [Encoding.UTF8.GetBytes(CheckpointStateJson)],
    };

    private static ReaderFuzzTarget CheckpointManifest() => new()
    {
        Name = "checkpoint-manifest",
        FileName = Path.Combine(CheckpointDir, RunCheckpoints.ManifestName),
        Setup = dir =>
        {
            var ckpt = Path.Combine(dir, CheckpointDir);
            Directory.CreateDirectory(ckpt);
            File.WriteAllBytes(Path.Combine(ckpt, "model.safetensors"), CheckpointWeights);
            File.WriteAllText(Path.Combine(ckpt, RunCheckpoints.StateName), CheckpointStateJson);
        },
        Read = dir => _ = new RunCheckpoints(dir, _ => { }).LoadNewest(),
        IsDocumented = _ => false,
        GeneratedSeeds = () =>
        {
            var dir = Path.Combine(Path.GetTempPath(), $"nr-fuzz-manifest-{Guid.NewGuid():N}");
            Directory.CreateDirectory(dir);
            try
            {
                File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), CheckpointWeights);
                File.WriteAllText(Path.Combine(dir, RunCheckpoints.StateName), CheckpointStateJson);
                return [Encoding.UTF8.GetBytes(Manifest(dir))];
            }
            finally { Directory.Delete(dir, true); }
        },
    };

    /// <summary>manifest.json for the files of <paramref name="dir"/> (but itself), as RunCheckpoints writes it.
    /// </summary>
    private static string Manifest(string dir)
    {
        var files = new JsonObject();
        foreach (var f in Directory.GetFiles(dir).Where(f => Path.GetFileName(f) != RunCheckpoints.ManifestName)
                     .Order(StringComparer.Ordinal))
            files[Path.GetFileName(f)] = new JsonObject
            {
                ["bytes"] = new FileInfo(f).Length,
                ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f))),
            };
        return new JsonObject { ["files"] = files }.ToJsonString();
    }

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);
}
