using System.CommandLine;
using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.RL;

namespace NativeReasoner.Cli;

/// <summary>
/// `nr pipeline r1-zero`: GRPO straight from a model directory (see <see cref="R1ZeroRun"/>). Settings come
/// from defaults, then a JSON config (--config), then one command-line option per setting.
/// </summary>
public static class PipelineCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Model directory (checkpoint + tokenizer.json [+ prompt_template.json]).", Required = true };
        var runDir = new Option<string>("--run-dir") { Description = "Output directory (metrics.jsonl, model/, summary.json, samples.md).", Required = true };
        var config = new Option<string?>("--config") { Description = "JSON file of settings ({\"loss_type\": \"dapo\", ...}); command-line options override it." };
        var settingOptions = GrpoSettings.Names
            .Select(n => (n.Name, Option: new Option<string?>("--" + n.Name.Replace('_', '-')) { Description = n.Help }))
            .ToArray();
        var r1Zero = new Command("r1-zero", "GRPO on rule-based rewards straight from a model (R1-Zero).") { model, runDir, config };
        foreach (var (_, o) in settingOptions) r1Zero.Options.Add(o);
        r1Zero.SetAction(parse =>
        {
            try
            {
                var settings = new GrpoSettings();
                if (parse.GetValue(config) is { } path)
                {
                    if (!File.Exists(path)) throw new FileNotFoundException($"config file '{path}' does not exist", path);
                    settings = settings.WithJson(File.ReadAllText(path), path);
                }
                foreach (var (name, o) in settingOptions)
                    if (parse.GetValue(o) is { } v) settings = settings.With(name, v);
                R1ZeroRun.Run(parse.GetValue(model)!, parse.GetValue(runDir)!, settings, Console.WriteLine);
                return 0;
            }
            catch (Exception e) when (e is ModelConfigException or CheckpointMismatchException or SafetensorsException or ArgumentException
                                      or IOException or NotSupportedException or InvalidOperationException)
            {
                Console.Error.WriteLine($"nr pipeline r1-zero: {e.Message}");
                return 1;
            }
        });
        return new Command("pipeline", "Reasoning-RL pipelines.") { r1Zero };
    }
}
