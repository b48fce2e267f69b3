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
/// carries the usage and the finish reason. Requests from any number of threads queue on one worker thread
/// (<see cref="GenerationWorker"/>); cancelling a request stops its generation before the next token. Dispose frees
/// the model when the client loaded it.
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
    private readonly NativeReasonerChatClientOptions _options;
    private readonly GenerationWorker _worker = new("NativeReasoner chat worker");
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
        return new NativeReasonerChatClient(bundle, prompt, options, modelId, ownsBundle: true);
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
        _policy = policy;
        _tokenizer = tokenizer;
        _prompt = prompt;
        _contextLength = contextLength;
        _parseToolCalls = prompt.Template != null && QwenToolCalls.TemplateUses(prompt.Template.Source);
        Metadata = new ChatClientMetadata(ProviderName, providerUri: null, defaultModelId: modelId ?? _options.ModelId);
    }

    public ChatClientMetadata Metadata { get; }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken)
            .ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var conversation = messages.ToList();
        var channel = Channel.CreateUnbounded<ChatResponseUpdate>(
            new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        // Stops the generation when the caller cancels, stops reading early, or the client is disposed.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _shutdown.Token);
        var token = stop.Token;
        _worker.Enqueue(() => Run(conversation, options, channel.Writer, token));
        try
        {
            await foreach (var update in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                yield return update;
        }
        finally { stop.Cancel(); }
    }

    /// <summary>One request, on the worker thread; its outcome (updates or an error) goes to the channel.</summary>
    private void Run(List<AiChatMessage> conversation, ChatOptions? options, ChannelWriter<ChatResponseUpdate> writer,
        CancellationToken token)
    {
        try
        {
            token.ThrowIfCancellationRequested();
            string promptText = ChatRequestRenderer.Render(_prompt, conversation, options);
            long[] ids = _tokenizer.Encode(promptText).Select(i => (long)i).ToArray();
            int room = _contextLength - ids.Length;
            if (room <= 0)
                throw new ArgumentException(
                    $"the conversation ({ids.Length} tokens) fills the model's context of {_contextLength} positions");
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
            var stamp = new ResponseAssembler.UpdateStamp("resp_" + Guid.NewGuid().ToString("N"),
                "msg_" + Guid.NewGuid().ToString("N"), options?.ModelId ?? Metadata.DefaultModelId,
                DateTimeOffset.UtcNow);
            bool parseToolCalls = _parseToolCalls && options?.Tools is { Count: > 0 };
            var assembler = new ResponseAssembler(_tokenizer, promptText, stops, parseToolCalls, stamp,
                u => writer.TryWrite(u));
            int eos = _tokenizer.EosId;
            var generation = new GenerationOptions
            {
                MaxNewTokens = Math.Min(maxNew, room),
                Temperature = temperature,
                TopP = topP,
                TopK = topK,
                EosTokenIds = [eos],
                StopStrings = stops,
                Detokenize = stops.Length == 0 ? null
                    : t => _tokenizer.Decode(t.Where(id => id != eos).Select(id => (int)id)),
                OnToken = (_, id) => assembler.OnToken(id),
                Cancellation = token,
            };
            ulong seed = options?.Seed is { } s ? unchecked((ulong)s) : unchecked((ulong)Random.Shared.NextInt64());
            var result = _policy.Generate([ids], generation, new Generator(seed))[0];
            if (result.FinishReason == FinishReason.Cancelled) throw new OperationCanceledException(token);
            assembler.Finish(result.FinishReason, ids.Length, result.Tokens.Length);
            writer.TryComplete();
        }
        catch (Exception e)
        {
            writer.TryComplete(e);
        }
    }

    /// <summary>
    /// <see cref="ChatClientMetadata"/>, the model (<see cref="ICausalLM"/>), the tokenizer, the bundle, the chat
    /// prompt, or the client itself.
    /// </summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey != null) return null;
        object?[] services =
            [Metadata, this, (_policy as CausalLMPolicy)?.Model, _tokenizer, _bundle, _prompt, _policy];
        return services.FirstOrDefault(serviceType.IsInstanceOfType);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _shutdown.Cancel();
        _worker.Dispose();
        // _shutdown is left undisposed: a request racing with Dispose may still link to its token (it holds no
        // handle until one is asked for, and none is).
        if (_ownsBundle) _bundle?.Dispose();
    }
}
