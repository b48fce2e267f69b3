using System.IO.Compression;
using System.Text.Json;
using NativeReasoner.RL;

namespace NativeReasoner.Tests.RL.Tokenizers;

/// <summary>
/// The three real tokenizers committed gzip-compressed under fixtures/tokenizers/NAME (tokenizer.json,
/// tokenizer_config.json and the reference encoder's expected.json, written by tests/reference/tokenizers/generate.js),
/// each unpacked once into a temporary model directory and loaded once.
/// </summary>
internal static class RealTokenizers
{
    public const string DeepseekV3 = "deepseek-v3", Qwen3 = "qwen3", Llama31 = "llama3.1";

    private static readonly Dictionary<string, Lazy<HfTokenizer>> Loaded = new()
    {
        [DeepseekV3] = new(() => Load(DeepseekV3)), [Qwen3] = new(() => Load(Qwen3)),
        [Llama31] = new(() => Load(Llama31)),
    };

    public static string FixtureDir(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "tokenizers",
        name);

    public static HfTokenizer Get(string name) => Loaded[name].Value;

    public static string ReadGz(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        return reader.ReadToEnd();
    }

    /// <summary>Unpacks a fixture tokenizer into a new temporary directory (the caller deletes it).</summary>
    public static string Unpack(string name, Func<string, string>? editTokenizerJson = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), "nr-bpe-" + name + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var json = ReadGz(Path.Combine(FixtureDir(name), "tokenizer.json.gz"));
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), editTokenizerJson == null ? json
            : editTokenizerJson(json));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), ReadGz(Path.Combine(FixtureDir(name),
            "tokenizer_config.json.gz")));
        return dir;
    }

    private static HfTokenizer Load(string name)
    {
        var dir = Unpack(name);
        try { return (HfTokenizer)TokenizerLoader.Load(dir); }
        finally { Directory.Delete(dir, true); }
    }

    public sealed record Case(string Text, int[] Ids, int[] WithSpecial, string Decoded, string DecodedSkipSpecial);

    public static List<Case> Expected(string name)
    {
        using var doc = JsonDocument.Parse(ReadGz(Path.Combine(FixtureDir(name), "expected.json.gz")));
        var cases = new List<Case>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var units = c.GetProperty("units").EnumerateArray().Select(u => (char)u.GetInt32()).ToArray();
            cases.Add(new Case(new string(units),
                c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray(),
                c.GetProperty("with_special").EnumerateArray().Select(i => i.GetInt32()).ToArray(),
                c.GetProperty("decoded").GetString()!, c.GetProperty("decoded_skip_special").GetString()!));
        }
        return cases;
    }
}
