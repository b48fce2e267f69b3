using System.CommandLine;
using NativeReasoner.Model;
using NativeReasoner.Model.Gguf;

namespace NativeReasoner.Cli;

/// <summary>`nr export --gguf`: a model directory (HF layout + tokenizer) as one GGUF file for
/// llama.cpp/Ollama.</summary>
public static class ExportCommand
{
    public static Command Build()
    {
        var gguf = new Option<bool>("--gguf")
        {
            Description = "Write GGUF (the only export format so far).",
            Required = true,
        };
        var model = new Option<string>("--model")
        {
            Description = "Model directory (config.json, safetensors, tokenizer.json [+ tokenizer_config.json]).",
            Required = true,
        };
        var output = new Option<string>("--out") { Description = "The .gguf file to write.", Required = true };
        var dtype = new Option<string>("--dtype")
        {
            Description = "Type of the weight matrices: f32, f16, bf16, q8_0, q4_0 or q4_k (vectors and routers stay " +
                "f32).",
            DefaultValueFactory = _ => "f16",
        };
        var command = new Command("export", "Export a model directory to another format (GGUF).")
            { gguf, model, output, dtype };
        command.SetAction(parse => Run(parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(dtype)!,
            Console.Out, Console.Error));
        return command;
    }

    public static int Run(string modelDirectory, string outPath, string dtype, TextWriter output, TextWriter error)
    {
        try
        {
            var type = GgufExporter.ParseType(dtype);
            using var model = CausalLMRegistry.Load(modelDirectory);
            string tokenizerPath = Path.Combine(modelDirectory, "tokenizer.json");
            string configPath = Path.Combine(modelDirectory, "tokenizer_config.json");
            string? tokenizer = File.Exists(tokenizerPath) ? File.ReadAllText(tokenizerPath) : null;
            string? tokenizerConfig = File.Exists(configPath) ? File.ReadAllText(configPath) : null;
            string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDirectory)));
            var notes = GgufExporter.Export(model, outPath, type, name, tokenizer, tokenizerConfig, tokenizerPath);
            foreach (var note in notes) error.WriteLine($"note: {note}");
            output.WriteLine($"wrote {outPath} ({new FileInfo(outPath).Length} bytes, {model.Config.ModelType}, " +
                $"matrices {type})");
            return 0;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or ModelConfigException
                                      or GgufException or NotSupportedException or UnauthorizedAccessException
                                      or System.Text.Json.JsonException or NativeReasoner.IO.SafetensorsException
                                      or CheckpointMismatchException)
        {
            error.WriteLine($"nr export: {e.Message}");
            return 1;
        }
    }
}
