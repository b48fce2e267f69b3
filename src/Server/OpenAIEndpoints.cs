using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using NativeReasoner.Serving;

namespace NativeReasoner.Server;

/// <summary>
/// The OpenAI-compatible HTTP API over the application's <see cref="IChatClient"/>:
/// <c>POST /v1/chat/completions</c>, <c>POST /v1/completions</c>, <c>GET /v1/models</c>, <c>GET /health</c>,
/// <c>GET /metrics</c> (Prometheus text) and a chat page at <c>/</c>.
/// </summary>
public static class OpenAIEndpoints
{
    /// <summary>
    /// Maps the endpoints onto <paramref name="endpoints"/>; the chat client is the container's
    /// <see cref="IChatClient"/> (e.g. <c>services.AddNativeReasonerChatClient(dir)</c>), resolved on the first
    /// request. With <see cref="NativeReasonerServerOptions.ApiKey"/> set, the /v1 routes need
    /// <c>Authorization: Bearer KEY</c>; the page, /health and /metrics stay open. The chat page at <c>/</c> can be
    /// left out (<see cref="NativeReasonerServerOptions.MapChatPage"/>).
    /// </summary>
    public static RouteGroupBuilder MapNativeReasonerOpenAI(this IEndpointRouteBuilder endpoints,
        NativeReasonerServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        options ??= new NativeReasonerServerOptions();
        options.Validate();
        var api = new Api(endpoints.ServiceProvider, options);
        var group = endpoints.MapGroup("");
        group.MapPost("/v1/chat/completions", (HttpContext http) => api.Generate(http, chat: true));
        group.MapPost("/v1/completions", (HttpContext http) => api.Generate(http, chat: false));
        group.MapGet("/v1/models", (HttpContext http) => api.Models(http));
        group.MapGet("/health", (HttpContext http) => api.Health(http));
        group.MapGet("/metrics", (HttpContext http) => api.Metrics(http));
        if (options.MapChatPage) group.MapGet("/", (HttpContext http) => ChatPage.WriteAsync(http));
        return group;
    }

    /// <summary>The state the routes share: the client (resolved once), the gate, the metrics.</summary>
    private sealed class Api
    {
        private readonly NativeReasonerServerOptions _options;
        private readonly AdmissionGate _gate;
        private readonly ServerMetrics _metrics;
        private readonly byte[]? _key;
        private readonly Lazy<Served> _served;

        private sealed record Served(IChatClient Client, string Model, PromptLengthCheck Check,
            GenerationRunner Runner);

        public Api(IServiceProvider services, NativeReasonerServerOptions options)
        {
            _options = options;
            _gate = new AdmissionGate(_options.MaxConcurrentSequences, _options.MaxQueueLength);
            _metrics = new ServerMetrics(_gate);
            _key = _options.ApiKey == null ? null : Encoding.UTF8.GetBytes(_options.ApiKey);
            _served = new Lazy<Served>(() =>
            {
                var client = services.GetRequiredService<IChatClient>();
                var model = options.ModelId ?? client.GetService<ChatClientMetadata>()?.DefaultModelId
                    ?? "nativereasoner";
                return new Served(client, model, new PromptLengthCheck(client), new GenerationRunner(client, _metrics));
            });
        }

        public async Task Generate(HttpContext http, bool chat)
        {
            long arrival = Stopwatch.GetTimestamp();
            var metrics = _metrics;
            try
            {
                Authorize(http);
                var served = _served.Value;
                GenerationRequest request;
                using (var body = await JsonFields.ReadBodyAsync(http.Request.Body, http.RequestAborted))
                    request = chat ? ChatCompletionRequest.Parse(body.RootElement, _options, served.Model)
                        : CompletionRequest.Parse(body.RootElement, _options, served.Model);
                string messagesField = chat ? "messages" : "prompt";
                served.Check.Check(request, messagesField);
                using var lease = await _gate.TryEnterAsync(http.RequestAborted);
                if (lease == null)
                {
                    metrics.Count(ServerMetrics.Outcome.Rejected);
                    http.Response.Headers.RetryAfter = _options.RetryAfterSeconds.ToString();
                    await WriteErrorAsync(http, new OpenAIRequestException(429,
                        $"the server is busy: {_options.MaxConcurrentSequences} requests generating and " +
                        $"{_options.MaxQueueLength} waiting; retry after {_options.RetryAfterSeconds} s",
                        type: "rate_limit_exceeded", code: "rate_limit_exceeded"));
                    return;
                }
                var id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
                ResponseFormat format = chat ? new ChatCompletionFormat(id, served.Model)
                    : new TextCompletionFormat(id, served.Model);
                await served.Runner.RunAsync(http, request, format, arrival, messagesField);
            }
            catch (OpenAIRequestException e) when (!http.Response.HasStarted)
            {
                metrics.Count(e.Status is 401 or 404 or 400 ? ServerMetrics.Outcome.Invalid
                    : ServerMetrics.Outcome.Failed);
                await WriteErrorAsync(http, e);
            }
            catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
            {
                // Gone while reading its body or waiting in the queue.
                metrics.Count(ServerMetrics.Outcome.Cancelled);
            }
            catch (Exception e) when (!http.Response.HasStarted)
            {
                metrics.Count(ServerMetrics.Outcome.Failed);
                await WriteErrorAsync(http, new OpenAIRequestException(500, $"generation failed: {e.Message}",
                    type: "server_error"));
            }
        }

        public async Task Models(HttpContext http)
        {
            try
            {
                Authorize(http);
            }
            catch (OpenAIRequestException e)
            {
                await WriteErrorAsync(http, e);
                return;
            }
            await WriteJsonAsync(http, 200, w =>
            {
                w.WriteStartObject();
                w.WriteString("object", "list");
                w.WriteStartArray("data");
                w.WriteStartObject();
                w.WriteString("id", _served.Value.Model);
                w.WriteString("object", "model");
                w.WriteNumber("created", 0);
                w.WriteString("owned_by", "nativereasoner");
                if (_served.Value.Check.ContextLength is { } context) w.WriteNumber("max_model_len", context);
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
            });
        }

        public Task Health(HttpContext http) => WriteJsonAsync(http, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("status", "ok");
            w.WriteNumber("running", _gate.Running);
            w.WriteNumber("waiting", _gate.Waiting);
            w.WriteEndObject();
        });

        public async Task Metrics(HttpContext http)
        {
            http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            var scheduler = _served.Value.Client.GetService<ChatSchedulerStats>();
            await http.Response.WriteAsync(_metrics.Render(scheduler), http.RequestAborted);
        }

        private void Authorize(HttpContext http)
        {
            if (_key == null) return;
            string header = http.Request.Headers.Authorization.ToString();
            const string bearer = "Bearer ";
            var given = header.StartsWith(bearer, StringComparison.OrdinalIgnoreCase)
                ? Encoding.UTF8.GetBytes(header[bearer.Length..].Trim()) : [];
            if (!CryptographicOperations.FixedTimeEquals(given, _key))
                throw new OpenAIRequestException(401, given.Length == 0
                        ? "an API key is required: send 'Authorization: Bearer KEY'"
                        : "the API key is not valid", type: "invalid_request_error", code: "invalid_api_key");
        }
    }

    private static Task WriteErrorAsync(HttpContext http, OpenAIRequestException e) =>
        WriteJsonAsync(http, e.Status, e.WriteTo);

    private static async Task WriteJsonAsync(HttpContext http, int status, Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer)) write(w);
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        await http.Response.Body.WriteAsync(buffer.WrittenMemory, http.RequestAborted);
    }
}
