using System.CommandLine;
using Microsoft.Extensions.Hosting;
using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.RL.Chat;
using NativeReasoner.Server;
using NativeReasoner.Serving;

namespace NativeReasoner.Cli;

/// <summary>
/// `nr serve --model DIR`: the OpenAI-compatible HTTP API (chat and text completions, streamed or not, models,
/// health, Prometheus metrics) and a chat page at <c>/</c>, over one loaded model, until Ctrl-C.
/// </summary>
public static class ServeCommand
{
    /// <summary>The environment variable read when --api-key is not given.</summary>
    public const string ApiKeyVariable = "NR_API_KEY";

    public static Command Build()
    {
        var model = new Option<string>("--model")
        {
            Description = "Model directory (checkpoint, tokenizer and chat template or prompt_template.json).",
            Required = true,
        };
        var host = new Option<string>("--host")
        {
            Description = "Address to listen on (an IP address or localhost; 0.0.0.0 = every interface).",
            DefaultValueFactory = _ => "127.0.0.1",
        };
        var port = new Option<int>("--port")
        {
            Description = "TCP port (0 = any free one).", DefaultValueFactory = _ => 8000,
        };
        var apiKey = new Option<string?>("--api-key")
        {
            Description = $"Require 'Authorization: Bearer KEY' on /v1 (default: ${ApiKeyVariable}; unset = open).",
        };
        var maxConcurrent = new Option<int>("--max-concurrent")
        {
            Description = "Requests generating at once: the server's admission limit and the scheduler's sequence " +
                          "slots (its largest decode batch).",
            DefaultValueFactory = _ => 8,
        };
        var maxQueue = new Option<int>("--max-queue")
        {
            Description = "Requests waiting beyond those; one more is answered 429.", DefaultValueFactory = _ => 64,
        };
        var maxTokens = new Option<int>("--max-tokens")
        {
            Description = "Largest max_tokens a request may ask (and the default).", DefaultValueFactory = _ => 1024,
        };
        var device = DeviceOption.Create();
        var bf16 = Bf16Option.Create(training: false);
        var command = new Command("serve",
            "Serve a model over the OpenAI HTTP API (/v1/chat/completions, /v1/completions, /v1/models, /health, " +
            "/metrics) with a chat page at /.")
            { model, host, port, apiKey, maxConcurrent, maxQueue, maxTokens, device, bf16 };
        command.SetAction(parse =>
        {
            try
            {
                var options = new NativeReasonerServerOptions
                {
                    MaxConcurrentSequences = parse.GetValue(maxConcurrent),
                    MaxQueueLength = parse.GetValue(maxQueue),
                    MaxTokens = parse.GetValue(maxTokens),
                    ApiKey = parse.GetValue(apiKey) ?? NullIfEmpty(Environment.GetEnvironmentVariable(ApiKeyVariable)),
                };
                using var onDevice = DeviceOption.Use(parse.GetValue(device)!);
                // Opened before the client starts its scheduler, so the decode loop inherits the autocast scope.
                using var fastPath = Bf16Option.Use(parse.GetValue(bf16), onDevice.Device, "serve", training: false);
                using var client = NativeReasonerChatClient.Load(parse.GetValue(model)!,
                    new NativeReasonerChatClientOptions
                    {
                        Device = onDevice.Device,
                        // One limit: every admitted request gets a slot at once, none waits behind the gate twice.
                        MaxConcurrentSequences = options.MaxConcurrentSequences,
                    });
                var app = NativeReasonerServer.Create(client, options, parse.GetValue(host)!, parse.GetValue(port));
                app.Start();
                var url = NativeReasonerServer.BoundUrl(app);
                Console.Out.WriteLine($"nr serve: {client.Metadata.DefaultModelId} at {url}v1 (chat page: {url}; " +
                                      $"API key {(options.ApiKey == null ? "off" : "on")}); Ctrl-C stops");
                app.WaitForShutdown();
                ((IDisposable)app).Dispose();
                return 0;
            }
            catch (Exception e) when (e is ModelConfigException or CheckpointMismatchException or SafetensorsException
                                      or ArgumentException or IOException or InvalidDataException
                                      or NotSupportedException or InvalidOperationException
                                      or TemplateException)
            {
                Console.Error.WriteLine($"nr serve: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
