using System.Diagnostics;
using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;
using NativeReasoner.Tests.RL;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Cli;

/// <summary>
/// `nr generate --chat` and `nr chat` on the tiny DeepSeek-V3 fixture with a character tokenizer and a chat template
/// that forces the thinking block open; `nr chat` is also driven in a real terminal (tmux).
/// </summary>
public class ChatCommandTests(ITestOutputHelper log)
{
    // Only characters of the tiny model's vocabulary (GenerateEvalTests.ModelDir) and its special tokens.
    private const string TinyTemplate =
        "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}User: {{ m.content }}\n" +
        "{% else %}Assistant: {{ m.content }}\n{% endif %}{% endfor %}" +
        "{% if add_generation_prompt %}Assistant: <think>\n{% endif %}";

    internal static string ChatModelDir(bool withTemplate = true, bool withPromptTemplate = true)
    {
        var dir = GenerateEvalTests.ModelDir();
        // Room for long answers (the golden model has 256 positions; its YaRN factor is read from rope_scaling).
        var configPath = Path.Combine(dir, "config.json");
        var configJson = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!;
        configJson["max_position_embeddings"] = 4096;
        File.WriteAllText(configPath, configJson.ToJsonString());
        if (withTemplate)
        {
            var config = new Dictionary<string, string>
            {
                ["bos_token"] = "<|bos|>", ["eos_token"] = "<|eos|>",
                ["chat_template"] = TinyTemplate
            };
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), JsonSerializer.Serialize(config));
        }
        if (!withPromptTemplate) File.Delete(Path.Combine(dir, PromptTemplate.FileName));
        return dir;
    }

    [Fact]
    public void GenerateChat_AppliesTheTemplate_AndSplitsThinking()
    {
        var dir = ChatModelDir();
        try
        {
            var outPath = Path.Combine(dir, "out.jsonl");
            Assert.Equal(0, Program.Main(["generate", "--model", dir, "--prompt", "What is 2 + 3?", "--chat", "--out",
                outPath,
                "--max-new-tokens", "6", "--temperature", "0"]));
            var c = JsonDocument.Parse(File.ReadAllLines(outPath).Single()).RootElement.GetProperty("completions")[0];
            var text = c.GetProperty("text").GetString()!;
            // The template forced <think>\n, so the whole output is reasoning unless the model closed it.
            var parts = ThinkingSplit.Split(text, thinkingForced: true);
            Assert.Equal(parts.Reasoning, c.GetProperty("reasoning").GetString());
            Assert.Equal(parts.Answer, c.GetProperty("answer").GetString());

            var prompt = ChatPrompt.Load(dir).Render([new ChatMessage("user", "What is 2 + 3?")]);
            Assert.Equal("<|bos|>User: What is 2 + 3?\nAssistant: <think>\n", prompt);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void GenerateChat_FallsBackToPromptTemplate_OrFailsClearly()
    {
        var dir = ChatModelDir(withTemplate: false);
        try
        {
            Assert.Equal(0, Program.Main(["generate", "--model", dir, "--prompt", "What is 2 + 3?", "--chat", "--out",
                Path.Combine(dir, "o.jsonl"), "--max-new-tokens", "3"]));
            var fallback = ChatPrompt.Load(dir);
            Assert.Null(fallback.Template);
            Assert.Equal("<|bos|>User: a\nAssistant: b\n<|bos|>User: c\nAssistant: ",
                fallback.Render([new("user", "a"), new("assistant", "b"), new("user", "c")]));
            Assert.Contains("no place for a 'system' message", Assert.Throws<ArgumentException>(() =>
                fallback.Render([new("system", "s"), new("user", "c")])).Message);

            File.Delete(Path.Combine(dir, PromptTemplate.FileName));
            var e = Assert.Throws<InvalidOperationException>(() => ChatPrompt.Load(dir));
            Assert.Contains("has no chat template", e.Message);
            Assert.Contains("prompt_template.json", e.Message);
            Assert.Equal(1, Program.Main(["generate", "--model", dir, "--prompt", "x", "--chat"]));
            Assert.Equal(1, Program.Main(["chat", "--model", dir]));
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"),
                "{\"chat_template\": \"{% for m in messages %}\"}");
            Assert.Equal(1, Program.Main(["generate", "--model", dir, "--prompt", "x", "--chat"]));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Session_StreamsThinkingApart_KeepsTheConversation_Resets()
    {
        var dir = ChatModelDir();
        try
        {
            using var bundle = ModelBundle.Load(dir);
            var options = new GenerationOptions
            {
                MaxNewTokens = 8, Temperature = 0f,
                EosTokenIds = [bundle.Tokenizer.EosId]
            };
            var output = new StringWriter();
            var session = new ChatSession(bundle, ChatPrompt.Load(dir), options, 0,
                new StringReader("What is 2 + 3?\n\n/what\nAnd 4 * 5?\n/exit\nnot read\n"), output, ansi: false);
            session.Run();
            var text = output.ToString();
            log.WriteLine(text);
            Assert.Equal(4, session.Conversation.Count);
            Assert.Equal(["user", "assistant", "user", "assistant"], session.Conversation.Select(m => m.Role));
            Assert.Contains("unknown command '/what'", text);
            Assert.DoesNotContain("not read", text);
            // Forced thinking: the first answer starts inside <think>, shown apart on a non-terminal.
            Assert.Contains("> <think>\n", text);
            Assert.Contains("\n</think>\n", text);
            Assert.False(session.StopAnswer());

            var reset = new StringWriter();
            var again = new ChatSession(bundle, ChatPrompt.Load(dir), options, 0,
                new StringReader("What is 2 + 3?\n/reset\nhi\n"), reset, ansi: true);
            again.Run();
            Assert.Contains("(conversation reset)", reset.ToString());
            Assert.Contains("\u001b[2m", reset.ToString());
            Assert.Equal(2, again.Conversation.Count);
            Assert.Equal("hi", again.Conversation[0].Content);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Session_TemplateRefusal_DropsTheTurnAndGoesOn()
    {
        var dir = ChatModelDir();
        try
        {
            var config = new Dictionary<string, string>
            {
                ["eos_token"] = "<|eos|>",
                ["chat_template"] = "{% if messages | length > 1 %}{{ raise_exception('one turn only') }}{% endif %}" +
                                    "User: {{ messages[0].content }}\nAssistant: ",
            };
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), JsonSerializer.Serialize(config));
            using var bundle = ModelBundle.Load(dir);
            var options = new GenerationOptions
            {
                MaxNewTokens = 3, Temperature = 0f, EosTokenIds = [bundle.Tokenizer.EosId],
            };
            var output = new StringWriter();
            var session = new ChatSession(bundle, ChatPrompt.Load(dir), options, 0, new StringReader("a\nb\n/exit\n"),
                output, ansi: false);
            session.Run();
            Assert.Contains("the template raised an error: one turn only", output.ToString());
            Assert.Equal(["user", "assistant"], session.Conversation.Select(m => m.Role));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Session_AnswersUseOnlyTheContextLeft_AndAFullContextDropsTheTurn()
    {
        var dir = ChatModelDir();
        try
        {
            var configPath = Path.Combine(dir, "config.json");
            var configJson = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!;
            configJson["max_position_embeddings"] = 40;
            File.WriteAllText(configPath, configJson.ToJsonString());
            using var bundle = ModelBundle.Load(dir);
            var options = new GenerationOptions
            {
                MaxNewTokens = 1000, Temperature = 0f, EosTokenIds = [bundle.Tokenizer.EosId],
            };
            var output = new StringWriter();
            // "What is 2 + 3?" renders to 35 tokens: 5 positions are left for the first answer; the second turn
            // does not fit at all.
            var session = new ChatSession(bundle, ChatPrompt.Load(dir), options, 0,
                new StringReader("What is 2 + 3?\nand then?\n/exit\n"), output, ansi: false);
            session.Run();
            var text = output.ToString();
            Assert.Contains("fills the model's context of 40 positions: /reset to start over", text);
            Assert.Equal(["user", "assistant"], session.Conversation.Select(m => m.Role));
            // The first answer stopped at the end of the context, not at max_new_tokens = 1000.
            Assert.Contains("(max new tokens reached", text);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Chat_InATerminal_StreamsDimmedThinking_CtrlCStopsTheAnswerNotTheProgram()
    {
        if (!Tmux.Available)
        {
            log.WriteLine("skipped: tmux is not installed (Debian package 'tmux')");
            return;
        }
        var dir = ChatModelDir();
        var nr = Path.Combine(AppContext.BaseDirectory, "nr.dll");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        using var tmux = new Tmux();
        try
        {
            // Long answers (the tiny model rarely samples EOS), so Ctrl-C lands while one streams.
            tmux.Start($"'{dotnet}' '{nr}' chat --model '{dir}' --max-new-tokens 3000 --temperature 0");
            tmux.WaitFor(s => s.TrimEnd().EndsWith('>'), "the first prompt");
            tmux.Type("What is 2 + 3?");
            tmux.WaitFor(s => s.Contains("\u001b[2m"), "dimmed thinking", escapes: true);
            tmux.Keys("C-c");
            var screen = tmux.WaitFor(s => s.Contains("(stopped)") && s.TrimEnd().EndsWith('>'),
                "the answer stopped and a new prompt");
            log.WriteLine(screen);
            tmux.Type("/reset");
            tmux.WaitFor(s => s.Contains("(conversation reset)"), "the reset");
            Assert.True(tmux.Alive, "nr chat should still run after /reset");
            tmux.Keys("C-c");
            tmux.WaitFor(_ => !tmux.Alive, "nr chat to exit on Ctrl-C at the prompt");
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>A private tmux server running one command in a detached session.</summary>
    private sealed class Tmux : IDisposable
    {
        private readonly string _socket = "nr-test-" + Guid.NewGuid().ToString("N")[..12];
        private string _last = "";

        public static bool Available => Run(["-V"], out _) == 0;

        public bool Alive => Run(["-L", _socket, "has-session", "-t", "chat"], out _) == 0
            && Run(["-L", _socket, "list-panes", "-t", "chat", "-F", "#{pane_dead}"], out var dead) == 0
                && dead.Trim() == "0";

        public void Start(string command)
        {
            // remain-on-exit keeps the pane after exit so its death can be observed.
            Check(Run(["-L", _socket, "new-session", "-d", "-s", "chat", "-x", "160", "-y", "50", command],
                out var err), err);
            Run(["-L", _socket, "set-option", "-t", "chat", "remain-on-exit", "on"], out _);
        }

        public void Type(string text)
        {
            Check(Run(["-L", _socket, "send-keys", "-t", "chat", "-l", text], out var err), err);
            Keys("Enter");
        }

        public void Keys(string key) => Check(Run(["-L", _socket, "send-keys", "-t", "chat", key], out var err), err);

        public string Capture(bool escapes)
        {
            string[] args = escapes ? ["-L", _socket, "capture-pane", "-p", "-e", "-t", "chat", "-S", "-200"]
                : ["-L", _socket, "capture-pane", "-p", "-t", "chat", "-S", "-200"];
            Run(args, out var screen);
            return _last = screen;
        }

        public string WaitFor(Func<string, bool> done, string what, bool escapes = false)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(90))
            {
                var screen = Capture(escapes);
                if (done(screen)) return screen;
                Thread.Sleep(100);
            }
            throw new TimeoutException($"waited 90 s for {what}; the terminal shows:\n{_last}");
        }

        private static void Check(int code, string err)
        {
            if (code != 0) throw new InvalidOperationException($"tmux failed ({code}): {err}");
        }

        private static int Run(string[] args, out string output)
        {
            try
            {
                var psi = new ProcessStartInfo("tmux") { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var a in args) psi.ArgumentList.Add(a);
                using var p = Process.Start(psi)!;
                output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
                p.WaitForExit();
                return p.ExitCode;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                output = "";
                return -1;
            }
        }

        public void Dispose() => Run(["-L", _socket, "kill-server"], out _);
    }
}
