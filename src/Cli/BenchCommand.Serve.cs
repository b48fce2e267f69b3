using System.CommandLine;
using System.Globalization;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.Server;
using NativeReasoner.Serving;

namespace NativeReasoner.Cli;

public static partial class BenchCommand
{
    /// <summary>
    /// `nr bench serve`: <c>nr serve</c>'s throughput and faults over loopback HTTP (<see cref="ServeLoad"/>):
    /// streaming clients at each concurrency, then a long run where a share of the clients hang up mid-stream
    /// while the server's resident memory is sampled; a Markdown report.
    /// </summary>
    private static Command BuildServe()
    {
        var model = new Option<string?>("--model") { Description = "Model directory (default: a random --preset)." };
        var preset = new Option<string>("--preset")
        {
            Description = "Model preset written to a temporary directory when --model is not given.",
            DefaultValueFactory = _ => "bench-tiny",
        };
        var concurrency = new Option<string>("--concurrency")
        {
            Description = "Client counts of the throughput runs, comma-separated.", DefaultValueFactory = _ => "1,8,32",
        };
        var perClient = new Option<int>("--requests-per-client")
        {
            Description = "Requests each client sends in a throughput run.", DefaultValueFactory = _ => 8,
        };
        var maxTokens = new Option<int>("--max-tokens")
        {
            Description = "max_tokens of every request (greedy).", DefaultValueFactory = _ => 32,
        };
        var longRequests = new Option<int>("--long-requests")
        {
            Description = "Requests of the long run (0 = none).", DefaultValueFactory = _ => 1000,
        };
        var longClients = new Option<int>("--long-clients")
        {
            Description = "Clients of the long run.", DefaultValueFactory = _ => 32,
        };
        var hangUp = new Option<double>("--hang-up")
        {
            Description = "Share of the long run's requests whose client leaves after the first chunk.",
            DefaultValueFactory = _ => 0.25,
        };
        var maxConcurrent = new Option<int>("--max-concurrent")
        {
            Description = "The server's --max-concurrent (its admission limit and the scheduler's sequence slots).",
            DefaultValueFactory = _ => 32,
        };
        var output = new Option<string?>("--out") { Description = "Also write the Markdown report here." };
        var device = DeviceOption.Create();
        var bf16 = Bf16Option.Create(training: false);
        var command = new Command("serve",
            "Throughput (tokens/s at each concurrency, p50/p99 time to first token) and faults (clients hanging up, " +
            "resident memory over a long run) of the OpenAI-compatible server over loopback HTTP.")
        {
            model, preset, concurrency, perClient, maxTokens, longRequests, longClients, hangUp, maxConcurrent, output, device,
            bf16,
        };
        command.SetAction(parse =>
        {
            string? temp = null;
            try
            {
                var levels = parse.GetValue(concurrency)!.Split(',', StringSplitOptions.RemoveEmptyEntries)
                    .Select(s => int.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var c)
                                 && c > 0 ? c
                        : throw new ArgumentException($"--concurrency takes positive integers, got '{s}'")).ToArray();
                var settings = new ServeLoad.Settings(levels, parse.GetValue(perClient), parse.GetValue(maxTokens),
                    parse.GetValue(longRequests), parse.GetValue(longClients), parse.GetValue(hangUp));
                settings.Validate();
                string dir = parse.GetValue(model) ?? (temp = ServeLoad.WriteRandomModel(parse.GetValue(preset)!));
                string label = parse.GetValue(model) ?? $"{parse.GetValue(preset)} (random weights)";
                using var onDevice = DeviceOption.Use(parse.GetValue(device)!);
                // Opened before the client starts its scheduler, so the decode loop inherits the autocast scope.
                using var fastPath = Bf16Option.Use(parse.GetValue(bf16), onDevice.Device, "bench serve",
                    training: false);
                using var client = NativeReasonerChatClient.Load(dir, new NativeReasonerChatClientOptions
                {
                    Device = onDevice.Device,
                    MaxConcurrentSequences = parse.GetValue(maxConcurrent),
                });
                var options = new NativeReasonerServerOptions
                {
                    MaxConcurrentSequences = parse.GetValue(maxConcurrent),
                    MaxQueueLength = 4096,
                    MaxTokens = Math.Max(1024, settings.MaxTokens),
                };
                var report = ServeLoad.RunAsync(client, options, settings, label, Console.Out).GetAwaiter().GetResult();
                Console.Out.WriteLine();
                Console.Out.Write(report);
                if (parse.GetValue(output) is { } path) File.WriteAllText(path, report);
                return 0;
            }
            catch (Exception e) when (e is ModelConfigException or ArgumentException or IOException
                                      or InvalidDataException or InvalidOperationException or HttpRequestException
                                      or NotSupportedException)
            {
                Console.Error.WriteLine($"bench serve: {e.Message}");
                return 1;
            }
            finally
            {
                if (temp != null) Directory.Delete(temp, true);
            }
        });
        return command;
    }
}
