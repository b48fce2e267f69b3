// Source: refusing to resume a run directory written with other settings (as Lightning/TRL output_dir checks).
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.IO;

namespace NativeReasoner.RL;

/// <summary>
/// Which configuration a run directory belongs to: <c>run.json</c> holds the settings that decide the result (not
/// the name, the directory, the wall-time limits or the checkpoint cadence). A rerun with other settings would mix
/// two runs in one metrics file and resume weights that do not fit, so it is refused unless told to overwrite.
/// </summary>
public static class RunIdentity
{
    public const string FileName = "run.json";

    /// <summary>The result-deciding settings of <paramref name="s"/> as JSON.</summary>
    public static JsonObject Describe(TrainSettings s)
    {
        var options = new JsonSerializerOptions
        {
            NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        };
        var rest = s with
        {
            Name = "",
            RunsDirectory = "",
            PretrainMaxMinutes = 1,
            RlMaxMinutes = 1,
            CheckpointEveryMinutes = 0,
            Overwrite = false,
        };
        var node = JsonSerializer.SerializeToNode(rest, options)!.AsObject();
        node.Remove(nameof(TrainSettings.Name));
        node.Remove(nameof(TrainSettings.RunsDirectory));
        node.Remove(nameof(TrainSettings.PretrainMaxMinutes));
        node.Remove(nameof(TrainSettings.RlMaxMinutes));
        node.Remove(nameof(TrainSettings.CheckpointEveryMinutes));
        node.Remove(nameof(TrainSettings.Overwrite));
        // The model by its own type: the interface alone would leave out the family's fields.
        node[nameof(TrainSettings.Model)] = JsonSerializer.SerializeToNode(s.Model, s.Model.GetType(), options);
        node["ModelType"] = s.Model.GetType().Name;
        return node;
    }

    /// <summary>
    /// Prepares <paramref name="runDir"/> for <paramref name="s"/>: a new or empty directory gets its
    /// <c>run.json</c>; one of the same configuration is kept (to resume); one of another configuration, or an
    /// older run without <c>run.json</c>, is refused unless <see cref="TrainSettings.Overwrite"/>, which empties it.
    /// </summary>
    public static void Claim(string runDir, TrainSettings s, Action<string> progress) =>
        Claim(runDir, Describe(s), s.Overwrite, "--name", progress);

    /// <summary>
    /// The same for any run described by <paramref name="settings"/> (the result-deciding settings as JSON);
    /// <paramref name="elsewhere"/> names the option that picks another directory (for the error).
    /// </summary>
    public static void Claim(string runDir, JsonObject settings, bool overwrite, string elsewhere,
        Action<string> progress)
    {
        // Through text once, so numbers compare as they will when read back from run.json.
        var mine = JsonNode.Parse(settings.ToJsonString())!.AsObject();
        var path = Path.Combine(runDir, FileName);
        bool hasContent = Directory.Exists(runDir) && Directory.EnumerateFileSystemEntries(runDir).Any();
        if (hasContent)
        {
            string? conflict = null;
            if (!File.Exists(path)) conflict = $"it holds a run without {FileName} (from an older nr or another tool)";
            else
            {
                JsonNode? theirs = null;
                try
                {
                    var text = File.ReadAllText(path);
                    using (var doc = StrictJson.Parse(text, FileName))
                        if (doc.RootElement.ValueKind != JsonValueKind.Object)
                            throw new InvalidDataException($"{FileName}: expected a JSON object");
                    theirs = JsonNode.Parse(text, documentOptions: StrictJson.DocumentOptions)!["settings"];
                }
                catch (InvalidDataException e) { conflict = $"its {FileName} is unreadable ({e.Message})"; }
                if (conflict == null)
                {
                    var differences = Differences(theirs, mine, "").ToList();
                    if (differences.Count > 0)
                        conflict = $"its {FileName} is of another configuration (differs in " +
                                   string.Join(", ", differences.Take(6)) + (differences.Count > 6 ? ", …" : "") + ")";
                }
            }
            if (conflict != null)
            {
                if (!overwrite)
                    throw new ArgumentException($"run directory {runDir}: {conflict}; pass --overwrite to replace it " +
                                                $"or choose another {elsewhere}");
                progress($"--overwrite: emptying {runDir} ({conflict})\n");
                Directory.Delete(runDir, true);
            }
            else if (overwrite)
            {
                progress($"--overwrite: emptying {runDir}\n");
                Directory.Delete(runDir, true);
            }
        }
        Directory.CreateDirectory(runDir);
        if (!File.Exists(path))
            AtomicFile.WriteAllText(path, new JsonObject { ["settings"] = mine }.ToJsonString(
                new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Paths (dotted) where two JSON trees differ.</summary>
    private static IEnumerable<string> Differences(JsonNode? a, JsonNode? b, string at)
    {
        if (a is JsonObject oa && b is JsonObject ob)
        {
            foreach (var key in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)))
                foreach (var d in Differences(oa[key], ob[key], at.Length == 0 ? key : at + "." + key)) yield return d;
        }
        else if (!JsonNode.DeepEquals(a, b)) yield return at.Length == 0 ? "(all)" : at;
    }
}
