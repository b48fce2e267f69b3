using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.AI;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace NativeReasoner.Serving;

/// <summary>
/// A model directory of any family (<see cref="CausalLMRegistry"/>) as a Microsoft.Extensions.AI
/// <see cref="IChatClient"/>: the conversation goes through the directory's chat template, the output streams as
/// reasoning (<see cref="TextReasoningContent"/>) and answer (<see cref="TextContent"/>) updates, and the last update
/// carries the usage and the finish reason. Requests from any number of threads share one
/// <see cref="BatchScheduler"/> (continuous batching: each joins the running decode batch at the next step, in its
/// own cache slot, and reuses the cached prefix of an earlier turn of its conversation); a policy without a model
/// (a scripted one) runs its requests one at a time on a <see cref="GenerationWorker"/>. Cancelling a request stops
/// its generation before the next token and frees its slot. Dispose frees the model when the client loaded it.
/// </summary>
public sealed class NativeReasonerChatClient : IChatClient
{
    public const string ProviderName = "NativeReasoner";

    private readonly IPolicy _policy;
    private readonly ITokenizer _tokenizer;
    private readonly ChatPrompt _prompt;
    private readonly ModelBundle? _bundle;
    private readonly bool _ownsBundle;
    private readonly int _contextLength;
    // Positions a request may fill: the context, or the scheduler's slot when that is shorter.
    private readonly int _sequenceLength;
    private readonly NativeReasonerChatClientOptions _options;
    private readonly BatchScheduler? _scheduler;
    private readonly GenerationWorker? _worker;
    private readonly ChatSchedulerStats _stats = new();
    private readonly CancellationTokenSource _shutdown = new();
    private readonly bool _parseToolCalls;
    private int _disposed;

    /// <summary>Loads a model directory (checkpoint, tokenizer, chat template); the client owns the model.</summary>
    public static NativeReasonerChatClient Load(string modelDirectory, NativeReasonerChatClientOptions? options = null)
    {
        options ??= new NativeReasonerChatClientOptions();
        var prompt = ChatPrompt.Load(modelDirectory);
        var bundle = ModelBundle.Load(modelDirectory, options.Device, options.Load ?? CheckpointLoadOptions.Inference);
        var modelId = options.ModelId ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(
            Path.GetFullPath(modelDirectory)));
        try
        {
            return new NativeReasonerChatClient(bundle, prompt, options, modelId, ownsBundle: true);
        }
        catch
        {
            bundle.Dispose();
            throw;
        }
    }

    /// <summary>A client over a loaded bundle; the caller keeps owning it (dispose it after the client).</summary>
    public NativeReasonerChatClient(ModelBundle bundle, ChatPrompt prompt,
        NativeReasonerChatClientOptions? options = null)
        : this(bundle, prompt, options ?? new NativeReasonerChatClientOptions(), options?.ModelId, ownsBundle: false)
    {
    }

    private NativeReasonerChatClient(ModelBundle bundle, ChatPrompt prompt, NativeReasonerChatClientOptions options,
        string? modelId, bool ownsBundle)
        : this(bundle.Policy, bundle.Tokenizer, prompt, bundle.Policy.Model.Config.MaxPositionEmbeddings, options,
            modelId ?? bundle.Policy.Model.Config.ModelType)
    {
        _bundle = bundle;
        _ownsBundle = ownsBundle;
    }

    /// <summary>
    /// A client over any policy (a scripted one in tests); <paramref name="contextLength"/> caps prompt + answer.
    /// A <see cref="CausalLMPolicy"/> gets the batching scheduler; the client then owns the model's use (call nothing
    /// else on it while the client lives).
    /// </summary>
    public NativeReasonerChatClient(IPolicy policy, ITokenizer tokenizer, ChatPrompt prompt, int contextLength,
        NativeReasonerChatClientOptions? options = null, string? modelId = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        if (contextLength < 2) throw new ArgumentException($"context length must be ≥ 2, got {contextLength}");
        _options = options ?? new NativeReasonerChatClientOptions();
        if (_options.DefaultMaxOutputTokens < 1)
            throw new ArgumentException(
                $"DefaultMaxOutputTokens must be ≥ 1, got {_options.DefaultMaxOutputTokens}");
        if (_options.MaxConcurrentSequences < 1)
            throw new ArgumentException(
                $"MaxConcurrentSequences must be ≥ 1, got {_options.MaxConcurrentSequences}");
        if (_options.MaxSequenceLength < 2)
            throw new ArgumentException($"MaxSequenceLength must be ≥ 2, got {_options.MaxSequenceLength}");
        _policy = policy;
        _tokenizer = tokenizer;
        _prompt = prompt;
        _contextLength = contextLength;
        _parseToolCalls = prompt.Template != null && QwenToolCalls.TemplateUses(prompt.Template.Source);
        Metadata = new ChatClientMetadata(ProviderName, providerUri: null, defaultModelId: modelId ?? _options.ModelId);
        if (policy is CausalLMPolicy model)
        {
            _sequenceLength = Math.Min(contextLength, _options.MaxSequenceLength);
            _scheduler = new BatchScheduler(model.Model, _options.MaxConcurrentSequences, _sequenceLength, _stats,
                _options.ReusePromptPrefix);
        }
        else
        {
            _sequenceLength = contextLength;
            _worker = new GenerationWorker("NativeReasoner chat worker");
        }
    }

    public ChatClientMetadata Metadata { get; }

    /// <summary>The scheduler's counters (also through <see cref="GetService"/>).</summary>
    public ChatSchedulerStats Stats => _stats;

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken)
            .ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        cancellationToken.ThrowIfCancellationRequested();
        var request = Prepare(messages.ToList(), options);
        var channel = Channel.CreateUnbounded<ChatResponseUpdate>(
            new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        // Stops the generation when the caller cancels, stops reading early, or the client is disposed.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _shutdown.Token);
        var token = stop.Token;
        if (_scheduler != null) _scheduler.Enqueue(ToSequence(request, channel.Writer, token));
        else
        {
            _stats.Queued();
            _worker!.Enqueue(() => RunOneAtATime(request, channel.Writer, token));
        }
        try
        {
            await foreach (var update in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                yield return update;
        }
        finally { stop.Cancel(); }
    }

    /// <summary>A request rendered, tokenized and checked, its sampling settled (on the caller's thread).</summary>
    private sealed record PreparedRequest(string PromptText, long[] Ids, int MaxNewTokens, GenerationOptions Sampling,
        ulong Seed, bool ParseToolCalls, ResponseAssembler.UpdateStamp Stamp);

    private PreparedRequest Prepare(List<AiChatMessage> conversation, ChatOptions? options)
    {
        string promptText = ChatRequestRenderer.Render(_prompt, conversation, options);
        long[] ids = _tokenizer.EncodePrompt(promptText);
        int room = _sequenceLength - ids.Length;
        if (room <= 0)
            throw new ArgumentException(_sequenceLength == _contextLength
                ? $"the conversation ({ids.Length} tokens) fills the model's context of {_contextLength} positions"
                : $"the conversation ({ids.Length} tokens) fills a sequence slot of {_sequenceLength} positions " +
                  "(NativeReasonerChatClientOptions.MaxSequenceLength)");
        int maxNew = options?.MaxOutputTokens ?? _options.DefaultMaxOutputTokens;
        if (maxNew < 1) throw new ArgumentException($"ChatOptions.MaxOutputTokens must be ≥ 1, got {maxNew}");
        float temperature = options?.Temperature ?? _options.DefaultTemperature;
        float topP = options?.TopP ?? _options.DefaultTopP;
        int topK = options?.TopK ?? 0;
        if (temperature < 0 || float.IsNaN(temperature))
            throw new ArgumentException($"ChatOptions.Temperature must be ≥ 0, got {temperature}");
        if (!(topP > 0 && topP <= 1))
            throw new ArgumentException($"ChatOptions.TopP must be in (0, 1], got {topP}");
        if (topK < 0) throw new ArgumentException($"ChatOptions.TopK must be ≥ 0, got {topK}");
        var stops = options?.StopSequences?.ToArray() ?? [];
        int eos = _tokenizer.EosId;
        var sampling = new GenerationOptions
        {
            MaxNewTokens = Math.Min(maxNew, room),
            Temperature = temperature,
            TopP = topP,
            TopK = topK,
            EosTokenIds = [eos],
            StopStrings = stops,
            Detokenize = stops.Length == 0 ? null
                : t => _tokenizer.Decode(t.Where(id => id != eos).Select(id => (int)id)),
        };
        ulong seed = options?.Seed is { } s ? unchecked((ulong)s) : unchecked((ulong)Random.Shared.NextInt64());
        var stamp = new ResponseAssembler.UpdateStamp("resp_" + Guid.NewGuid().ToString("N"),
            "msg_" + Guid.NewGuid().ToString("N"), options?.ModelId ?? Metadata.DefaultModelId, DateTimeOffset.UtcNow);
        bool parseToolCalls = _parseToolCalls && options?.Tools is { Count: > 0 };
        return new PreparedRequest(promptText, ids, sampling.MaxNewTokens, sampling, seed, parseToolCalls, stamp);
    }

    private ResponseAssembler Assembler(PreparedRequest request, ChannelWriter<ChatResponseUpdate> writer) =>
        new(_tokenizer, request.PromptText, request.Sampling.StopStrings, request.ParseToolCalls, request.Stamp,
            u => writer.TryWrite(u));

    /// <summary>A prepared request as the scheduler runs it; its updates and its end go to the channel.</summary>
    private SequenceRequest ToSequence(PreparedRequest request, ChannelWriter<ChatResponseUpdate> writer,
        CancellationToken token)
    {
        var assembler = Assembler(request, writer);
        return new SequenceRequest(request.Ids, request.MaxNewTokens, request.Sampling, new Generator(request.Seed),
            [_tokenizer.EosId])
        {
            Cancellation = token,
            OnToken = assembler.OnToken,
            OnFinish = outcome =>
            {
                try
                {
                    assembler.Finish(outcome.FinishReason, outcome.PromptTokens, outcome.Tokens.Length,
                        outcome.CachedTokens);
                    writer.TryComplete();
                }
                catch (Exception e) { writer.TryComplete(e); }
            },
            OnError = e => writer.TryComplete(e),
        };
    }

    /// <summary>One request through a policy without a model, on the worker thread.</summary>
    private void RunOneAtATime(PreparedRequest request, ChannelWriter<ChatResponseUpdate> writer,
        CancellationToken token)
    {
        _stats.Dequeued();
        bool started = false;
        try
        {
            token.ThrowIfCancellationRequested();
            var assembler = Assembler(request, writer);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            _stats.Started(request.Ids.Length, 0);
            started = true;
            var generation = request.Sampling with
            {
                OnToken = (_, id) =>
                {
                    if (clock.IsRunning)
                    {
                        _stats.FirstToken(clock.Elapsed);
                        clock.Stop();
                    }
                    _stats.Generated();
                    assembler.OnToken(id);
                },
                Cancellation = token,
            };
            var result = _policy.Generate([request.Ids], generation, new Generator(request.Seed))[0];
            if (result.FinishReason == FinishReason.Cancelled) throw new OperationCanceledException(token);
            assembler.Finish(result.FinishReason, request.Ids.Length, result.Tokens.Length);
            _stats.Ended(SequenceEnd.Completed);
            writer.TryComplete();
        }
        catch (Exception e)
        {
            var end = e is OperationCanceledException ? SequenceEnd.Cancelled : SequenceEnd.Failed;
            if (started) _stats.Ended(end);
            else _stats.EndedBeforeStart(end);
            writer.TryComplete(e);
        }
    }

    /// <summary>
    /// <see cref="ChatClientMetadata"/>, the scheduler's <see cref="ChatSchedulerStats"/>, the
    /// <see cref="BatchScheduler"/> (null for a policy without a model), the model (<see cref="ICausalLM"/>), the
    /// tokenizer, the bundle, the chat prompt, or the client itself.
    /// </summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey != null) return null;
        object?[] services =
            [Metadata, this, _stats, _scheduler, (_policy as CausalLMPolicy)?.Model, _tokenizer, _bundle, _prompt,
                _policy];
        return services.FirstOrDefault(serviceType.IsInstanceOfType);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _shutdown.Cancel();
        _scheduler?.Dispose();
        _worker?.Dispose();
        // _shutdown is left undisposed: a request racing with Dispose may still link to its token (it holds no
        // handle until one is asked for, and none is).
        if (_ownsBundle) _bundle?.Dispose();
    }
}
