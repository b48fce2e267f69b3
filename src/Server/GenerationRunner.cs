using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.AI;

namespace NativeReasoner.Server;

/// <summary>
/// Runs one admitted request through the chat client and writes the answer: server-sent events (one chunk per
/// update, the finish chunk, the usage chunk when asked, <c>data: [DONE]</c>) or one JSON object. The client's
/// disconnect (<see cref="HttpContext.RequestAborted"/>) cancels the generation. Nothing is written before the first
/// update, so a request the chat client refuses still gets a 400.
/// </summary>
internal sealed class GenerationRunner(IChatClient client, ServerMetrics metrics)
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    public async Task RunAsync(HttpContext http, GenerationRequest request, ResponseFormat format, long arrival,
        string messagesField)
    {
        var cancel = http.RequestAborted;
        var response = new ResponseAccumulator();
        var buffer = new ArrayBufferWriter<byte>(4096);
        await using var json = new Utf8JsonWriter(buffer);
        bool firstToken = false;
        try
        {
            await using var updates = client.GetStreamingResponseAsync(request.Messages, request.Options, cancel)
                .GetAsyncEnumerator(cancel);
            bool more;
            try
            {
                more = await updates.MoveNextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException
                                      && !cancel.IsCancellationRequested)
            {
                throw OpenAIRequestException.BadField(messagesField, e.Message);
            }
            if (request.Stream)
            {
                http.Response.ContentType = "text/event-stream";
                http.Response.Headers.CacheControl = "no-cache";
                http.Response.Headers["X-Accel-Buffering"] = "no";
                http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
                if (format.WriteStart(Begin(buffer, json))) await SendAsync(http, buffer, json, cancel);
            }
            while (more)
            {
                var (reasoning, answer, firstCall) = response.Add(updates.Current);
                bool adds = reasoning.Length > 0 || answer.Length > 0 || firstCall < response.ToolCalls.Count;
                if (adds && !firstToken)
                {
                    firstToken = true;
                    metrics.FirstToken(Stopwatch.GetElapsedTime(arrival).TotalSeconds);
                }
                if (adds && request.Stream)
                {
                    format.WriteDelta(Begin(buffer, json), reasoning, answer, response, firstCall);
                    await SendAsync(http, buffer, json, cancel);
                }
                more = await updates.MoveNextAsync().ConfigureAwait(false);
            }
            if (request.Stream)
            {
                format.WriteFinish(Begin(buffer, json), response);
                await SendAsync(http, buffer, json, cancel);
                if (request.IncludeUsage)
                {
                    format.WriteUsageChunk(Begin(buffer, json), response);
                    await SendAsync(http, buffer, json, cancel);
                }
                await http.Response.Body.WriteAsync(Done, cancel).ConfigureAwait(false);
                await http.Response.Body.FlushAsync(cancel).ConfigureAwait(false);
            }
            else
            {
                buffer.ResetWrittenCount();
                json.Reset(buffer);
                format.WriteResponse(json, response);
                await json.FlushAsync(cancel).ConfigureAwait(false);
                http.Response.ContentType = "application/json";
                await http.Response.Body.WriteAsync(buffer.WrittenMemory, cancel).ConfigureAwait(false);
            }
            metrics.Count(ServerMetrics.Outcome.Completed);
            metrics.Tokens(response.Usage?.InputTokenCount ?? 0, response.Usage?.OutputTokenCount ?? 0);
        }
        catch (Exception) when (cancel.IsCancellationRequested)
        {
            // The client went away: the enumerator's cancellation has stopped the generation; nobody to answer.
            metrics.Count(ServerMetrics.Outcome.Cancelled);
        }
        catch (Exception e) when (e is not OpenAIRequestException && http.Response.HasStarted)
        {
            // Mid-stream failure: the status is sent already, so the error goes as the last event.
            metrics.Count(ServerMetrics.Outcome.Failed);
            new OpenAIRequestException(500, $"generation failed: {e.Message}", type: "server_error")
                .WriteTo(Begin(buffer, json));
            await SendAsync(http, buffer, json, CancellationToken.None);
        }
    }

    private static Utf8JsonWriter Begin(ArrayBufferWriter<byte> buffer, Utf8JsonWriter json)
    {
        buffer.ResetWrittenCount();
        buffer.Write(DataPrefix);
        json.Reset(buffer);
        return json;
    }

    /// <summary>Ends the event that <see cref="Begin"/> started and sends it at once.</summary>
    private static async Task SendAsync(HttpContext http, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json,
        CancellationToken cancel)
    {
        json.Flush();
        buffer.Write(EventEnd);
        await http.Response.Body.WriteAsync(buffer.WrittenMemory, cancel).ConfigureAwait(false);
        await http.Response.Body.FlushAsync(cancel).ConfigureAwait(false);
    }
}
