using System.CommandLine;
using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;

namespace NativeReasoner.Cli;

/// <summary>
/// `nr chat --model DIR`: an interactive conversation. Each answer streams as it is generated, the thinking
/// first (dimmed on a terminal, between &lt;think&gt; lines otherwise), then the answer; the conversation goes
/// through the model's chat template every turn. <c>/reset</c> starts over, <c>/exit</c> (or end of input) quits;
/// Ctrl-C while an answer streams stops that answer, Ctrl-C at the prompt quits.
/// </summary>
public static class ChatCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model")
        {
            Description = "Model directory (checkpoint, tokenizer and chat template or prompt_template.json).",
            Required = true,
        };
        var temperature = new Option<float>("--temperature")
        {
            Description = "0 = greedy (R1 recommends 0.6).",
            DefaultValueFactory = _ => 0.6f
        };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => 0.95f };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 1024 };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0UL };
        var device = DeviceOption.Create();
        var command = new Command("chat",
            "Talk with a model: streamed thinking and answers, /reset, /exit, Ctrl-C stops an answer.")
            { model, temperature, topP, maxNew, seed, device };
        command.SetAction(parse =>
        {
            try
            {
                if (parse.GetValue(maxNew) < 1) throw new UsageException(
                    $"--max-new-tokens must be ≥ 1, got {parse.GetValue(maxNew)}");
                using var onDevice = DeviceOption.Use(parse.GetValue(device)!);
                using var bundle = ModelBundle.Load(parse.GetValue(model)!, onDevice.Device);
                var prompt = ChatPrompt.Load(parse.GetValue(model)!);
                var options = new GenerationOptions
                {
                    MaxNewTokens = parse.GetValue(maxNew), Temperature = parse.GetValue(temperature),
                    TopP = parse.GetValue(topP),
                    EosTokenIds = [bundle.Tokenizer.EosId],
                };
                var session = new ChatSession(bundle, prompt, options, parse.GetValue(seed), Console.In, Console.Out,
                    ansi: !Console.IsOutputRedirected);
                ConsoleCancelEventHandler onCtrlC = (_, e) =>
                {
                    // A first Ctrl-C stops the streaming answer; at the prompt it quits (the default action).
                    e.Cancel = session.StopAnswer();
                    if (!e.Cancel) Console.Out.WriteLine();
                };
                Console.CancelKeyPress += onCtrlC;
                try
                {
                    session.Run();
                }
                finally { Console.CancelKeyPress -= onCtrlC; }
                return 0;
            }
            catch (Exception e) when (e is ModelConfigException or CheckpointMismatchException or SafetensorsException
                                      or ArgumentException or IOException or InvalidDataException
                                      or NotSupportedException or InvalidOperationException
                                      or TemplateException)
            {
                Console.Error.WriteLine($"nr chat: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}

/// <summary>The read–answer loop of <c>nr chat</c>, on any reader and writer (the CLI gives it the console).</summary>
public sealed class ChatSession
{
    private const string Dim = "\u001b[2m", Reset = "\u001b[0m";

    private readonly ModelBundle _bundle;
    private readonly ChatPrompt _prompt;
    private readonly GenerationOptions _options;
    private readonly Generator _rng;
    private readonly TextReader _input;
    private readonly TextWriter _output;
    private readonly bool _ansi;
    private readonly List<ChatMessage> _conversation = [];
    private CancellationTokenSource? _answer;

    public ChatSession(ModelBundle bundle, ChatPrompt prompt, GenerationOptions options, ulong seed, TextReader input,
        TextWriter output, bool ansi)
    {
        _bundle = bundle;
        _prompt = prompt;
        _options = options;
        _rng = new Generator(seed);
        _input = input;
        _output = output;
        _ansi = ansi;
    }

    /// <summary>The conversation so far (user and assistant turns).</summary>
    public IReadOnlyList<ChatMessage> Conversation => _conversation;

    /// <summary>Stops the answer being generated; false when none is (the caller then quits).</summary>
    public bool StopAnswer()
    {
        var answer = Volatile.Read(ref _answer);
        if (answer == null) return false;
        answer.Cancel();
        return true;
    }

    public void Run()
    {
        _output.WriteLine(
            $"nr chat: {_bundle.Policy.Model.Config.NumHiddenLayers}-layer model, prompt from {_prompt.Description}. " +
                          "/reset starts over, /exit quits; Ctrl-C stops an answer.");
        while (true)
        {
            _output.Write("> ");
            _output.Flush();
            var line = _input.ReadLine();
            if (line == null || line.Trim() == "/exit") return;
            var text = line.Trim();
            if (text.Length == 0) continue;
            if (text == "/reset")
            {
                _conversation.Clear();
                _output.WriteLine("(conversation reset)");
                continue;
            }
            if (text.StartsWith('/'))
            {
                _output.WriteLine($"unknown command '{text}': /reset or /exit");
                continue;
            }
            _conversation.Add(new ChatMessage("user", line));
            try
            {
                if (!Answer()) _conversation.RemoveAt(_conversation.Count - 1);
            }
            catch (TemplateException e)
            {
                // The template refused this conversation (e.g. raise_exception on roles): drop the turn, go on.
                _conversation.RemoveAt(_conversation.Count - 1);
                _output.WriteLine($"nr chat: {e.Message}");
            }
        }
    }

    /// <summary>Streams one answer; false when the conversation leaves no room in the context (turn dropped).</summary>
    private bool Answer()
    {
        var promptText = _prompt.Render(_conversation);
        var ids = _bundle.Tokenizer.EncodePrompt(promptText);
        // A turn may use what the context has left: the answer ends as "max new tokens reached" when it is full.
        int positions = _bundle.Policy.Model.Config.MaxPositionEmbeddings;
        int room = positions - ids.Length;
        if (room <= 0)
        {
            _output.WriteLine($"nr chat: the conversation ({ids.Length} tokens) fills the model's context of " +
                $"{positions} positions: /reset to start over");
            return false;
        }
        var stream = new ThinkingStream(ThinkingSplit.PromptForcesThinking(promptText));
        var generated = new List<int>();
        int emitted = 0;
        bool inReasoning = false, wroteReasoning = false;
        using var cancel = new CancellationTokenSource();
        void Write(ThinkingDelta d)
        {
            if (d.Reasoning.Length > 0)
            {
                if (!inReasoning) _output.Write(_ansi ? Dim : "<think>\n");
                inReasoning = wroteReasoning = true;
                _output.Write(d.Reasoning);
            }
            if (d.Answer.Length > 0)
            {
                EndReasoning();
                _output.Write(d.Answer);
            }
            _output.Flush();
        }
        void EndReasoning()
        {
            if (!inReasoning) return;
            _output.Write(_ansi ? Reset + "\n" : "\n</think>\n");
            inReasoning = false;
        }
        var options = _options with
        {
            MaxNewTokens = Math.Min(_options.MaxNewTokens, room),
            Cancellation = cancel.Token,
            OnToken = (_, id) =>
            {
                if (id == _bundle.Tokenizer.EosId) return;
                generated.Add((int)id);
                var text = _bundle.Tokenizer.Decode(generated);
                // A byte-level tokenizer may end mid-character: wait for the rest of it.
                if (text.EndsWith('\uFFFD') || text.Length <= emitted) return;
                Write(stream.Push(text[emitted..]));
                emitted = text.Length;
            },
        };
        Volatile.Write(ref _answer, cancel);
        IReadOnlyList<SampledSequence> result;
        try
        {
            result = _bundle.Policy.Generate([ids], options, _rng);
        }
        finally { Volatile.Write(ref _answer, null); }
        var tail = _bundle.Tokenizer.Decode(generated);
        if (tail.Length > emitted) Write(stream.Push(tail[emitted..]));
        Write(stream.Finish());
        EndReasoning();
        var parts = stream.Result;
        var reason = result[0].FinishReason;
        _output.WriteLine(reason switch
        {
            FinishReason.Cancelled => "\n(stopped)",
            FinishReason.Length => wroteReasoning && !parts.ThinkingClosed
                ? "\n(max new tokens reached while thinking)" : "\n(max new tokens reached)",
            _ => "",
        });
        _conversation.Add(new ChatMessage("assistant", parts.Answer, parts.HasThinking ? parts.Reasoning : null));
        return true;
    }
}
