using System.CommandLine;
using System.Text.Json;
using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;

namespace NativeReasoner.Cli;

/// <summary>`nr generate` (sample completions of plain questions) and `nr eval` (held-out accuracy by difficulty).</summary>
public static class GenerateCommand
{
    private static int Guard(string name, Action action)
    {
        try
        {
            action();
            return 0;
        }
        catch (Exception e) when (e is ModelConfigException or CheckpointMismatchException or SafetensorsException or ArgumentException
                                  or IOException or InvalidDataException or NotSupportedException
                                  or InvalidOperationException
                                  or TemplateException)
        {
            Console.Error.WriteLine($"nr {name}: {e.Message}");
            return 1;
        }
    }

    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Model directory (checkpoint + tokenizer.json [+ prompt_template.json]).", Required = true };
        var prompt = new Option<string?>("--prompt") { Description = "A plain question; the model's prompt template is applied." };
        var prompts = new Option<string?>("--prompts") { Description = "JSONL file, one {\"prompt\": ...} per line." };
        var output = new Option<string?>("--out") { Description = "JSONL output (default: stdout)." };
        var samples = new Option<int>("--num-samples") { Description = "Completions per prompt.", DefaultValueFactory = _ => 1 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy.", DefaultValueFactory = _ => 1f };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => 1f };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 256 };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0UL };
        var chat = new Option<bool>("--chat")
        {
            Description = "Apply the model's chat template (tokenizer_config.json / chat_template.jinja; " +
                          "else prompt_template.json) to each question as one user turn.",
        };
        var device = DeviceOption.Create();
        var bf16 = Bf16Option.Create(training: false);
        var command = new Command("generate", "Sample completions for questions from a model directory.")
            { model, prompt, prompts, output, samples, temperature, topP, maxNew, seed, chat, device, bf16 };
        command.SetAction(parse => Guard("generate", () =>
        {
            string? one = parse.GetValue(prompt), file = parse.GetValue(prompts);
            if ((one == null) == (file == null))
                throw new UsageException("give exactly one of --prompt TEXT or --prompts FILE.jsonl");
            var questions = one != null ? [one] : PromptFile.Read(file!);
            int k = parse.GetValue(samples);
            if (k < 1) throw new UsageException($"--num-samples must be ≥ 1, got {k}");
            using var onDevice = DeviceOption.Use(parse.GetValue(device)!);
            using var fastPath = Bf16Option.Use(parse.GetValue(bf16), onDevice.Device, "generate", training: false);
            using var bundle = ModelBundle.Load(parse.GetValue(model)!, onDevice.Device,
                CheckpointLoadOptions.Inference);
            LoadReportText.Print("generate", bundle.LoadReport!);
            var chatPrompt = parse.GetValue(chat) ? ChatPrompt.Load(parse.GetValue(model)!) : null;
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNew), Temperature = parse.GetValue(temperature), TopP = parse.GetValue(topP),
                EosTokenIds = [bundle.Tokenizer.EosId],
            };
            var rng = new Generator(parse.GetValue(seed));
            var outPath = parse.GetValue(output);
            using var writer = outPath == null ? null : new StreamWriter(outPath);
            foreach (var q in questions)
            {
                var promptText = chatPrompt != null
                    ? chatPrompt.Render([new ChatMessage("user", q)])
                    : bundle.Template.Format(q);
                var ids = bundle.Tokenizer.EncodePrompt(promptText);
                var run = TextGeneration.Generate(bundle.Policy.Model, Enumerable.Repeat(ids, k).ToArray(), options,
                    rng);
                Console.Error.WriteLine($"nr generate: {ThroughputText(k, ids.Length, run)}");
                var line = PromptFile.ResultLine(q, run.Tokens.Select((tokens, i) =>
                {
                    var toks = tokens.Length > 0 && tokens[^1] == bundle.Tokenizer.EosId ? tokens[..^1] : tokens;
                    return (bundle.Tokenizer.Decode(toks.Select(t => (int)t)), tokens.Length,
                        run.FinishReasons[i] == FinishReason.Length);
                }), ThinkingSplit.PromptForcesThinking(promptText));
                if (writer != null) writer.WriteLine(line);
                else Console.WriteLine(line);
            }
        }));
        return command;
    }

    /// <summary>
    /// "batch 16, prompt 12 tokens: prefill 192 tokens in 0.41 s (468 tokens/s); decode 31 steps × 16 = 496 tokens in
    /// 9.8 s (50.6 tokens/s); resident 3.6 GiB (peak 3.9 GiB)". Prefill counts every prompt token of the batch, decode
    /// every token that went through a cached step (the first new token comes from the prefill's logits).
    /// </summary>
    private static string ThroughputText(int batch, int promptTokens, GenerationResult run)
    {
        double prefillSeconds = run.PrefillTime.TotalSeconds, decodeSeconds = run.DecodeTime.TotalSeconds;
        long prefillTokens = (long)batch * promptTokens, decodeTokens = (long)batch * run.DecodeSteps;
        string Rate(long tokens, double seconds) => seconds > 0 ? $"{tokens / seconds:F1} tokens/s" : "n/a tokens/s";
        return $"batch {batch}, prompt {promptTokens} tokens: prefill {prefillTokens} tokens in " +
            $"{prefillSeconds:F2} s ({Rate(prefillTokens, prefillSeconds)}); decode {run.DecodeSteps} steps × " +
            $"{batch} = {decodeTokens} tokens in {decodeSeconds:F2} s ({Rate(decodeTokens, decodeSeconds)}); " +
            $"resident {ResidentMemory.Format(ResidentMemory.CurrentBytes())} " +
            $"(peak {ResidentMemory.Format(ResidentMemory.PeakBytes())})";
    }

    public static Command BuildEval()
    {
        var model = new Option<string>("--model") { Description = "Model directory.", Required = true };
        var task = new Option<string>("--task") { Description = "Task: " + string.Join(", ", TaskRegistry.Names) + ".", Required = true };
        var n = new Option<int>("--n") { Description = "Held-out problems (levels cycle).", DefaultValueFactory = _ => 100 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var outFile = new Option<string?>("--out") { Description = "Also write the JSON report, with every completion, to this file." };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 256 };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0UL };
        var samples = new Option<int>("--samples")
        {
            Description = "K > 1 adds R1-style sampled evaluation: K completions per problem, " +
                          "pass@1 (mean over the K), pass@k and maj@k for k = 1…K.",
            DefaultValueFactory = _ => 1,
        };
        var temperature = new Option<float>("--temperature")
        {
            Description = "Sampling temperature of --samples (the R1 paper's 0.6).", DefaultValueFactory = _ => 0.6f,
        };
        var topP = new Option<float>("--top-p")
        {
            Description = "Nucleus p of --samples (the R1 paper's 0.95).", DefaultValueFactory = _ => 0.95f,
        };
        var thinkingBudget = new Option<string?>("--thinking-budget")
        {
            Description = "Test-time scaling (s1 budget forcing): comma-separated thinking budgets in tokens, " +
                          "e.g. 0,4,8,16; each is evaluated with </think> forced at the budget.",
        };
        var extendWith = new Option<string>("--extend-with")
        {
            Description = "With --max-extensions: what replaces an early </think>.", DefaultValueFactory = _ => "Wait",
        };
        var maxExtensions = new Option<int>("--max-extensions")
        {
            Description = "Early </think> replaced by --extend-with per completion, at most.", DefaultValueFactory = _ => 0,
        };
        var plot = new Option<string?>("--plot")
        {
            Description = "With --thinking-budget: write a PNG of accuracy against the budget (blue: greedy, " +
                          "orange: sampled pass@1 with --samples; budgets evenly spaced in the order given).",
        };
        var device = DeviceOption.Create();
        var command = new Command("eval",
            "Greedy accuracy, format rate, think-rate and completion length on a task's held-out split, " +
            "by difficulty; with --samples K also pass@1, pass@k and maj@k.")
            {
                model, task, n, json, outFile, maxNew, seed, samples, temperature, topP,
                thinkingBudget, extendWith, maxExtensions, plot, device,
            };
        command.SetAction(parse => Guard("eval", () =>
        {
            int k = parse.GetValue(samples);
            float temp = parse.GetValue(temperature), p = parse.GetValue(topP);
            if (k < 1) throw new UsageException($"--samples must be ≥ 1, got {k}");
            if (k > 1 && !(temp > 0))
                throw new UsageException($"--temperature must be > 0 with --samples {k}, got {temp}");
            if (k > 1 && !(p > 0 && p <= 1)) throw new UsageException($"--top-p must be in (0, 1], got {p}");
            var budgets = ThinkingBudgetTable.ParseBudgets(parse.GetValue(thinkingBudget));
            int extensions = parse.GetValue(maxExtensions);
            if (extensions < 0) throw new UsageException($"--max-extensions must be ≥ 0, got {extensions}");
            if (extensions > 0 && budgets == null)
                throw new UsageException("--max-extensions needs --thinking-budget (the budgets to extend within)");
            if (parse.GetValue(plot) != null && budgets == null)
                throw new UsageException("--plot needs --thinking-budget (it plots accuracy against the budget)");
            var t = TaskRegistry.Create(parse.GetValue(task)!);
            var problems = t.Generate(Split.Test, parse.GetValue(n), parse.GetValue(seed));
            using var onDevice = DeviceOption.Use(parse.GetValue(device)!);
            using var bundle = ModelBundle.Load(parse.GetValue(model)!, onDevice.Device);
            var options = new GenerationOptions { MaxNewTokens = parse.GetValue(maxNew), Temperature = 0f, EosTokenIds = [bundle.Tokenizer.EosId] };
            var r = Evaluation.Run(bundle.Policy, bundle.Tokenizer, bundle.Template, t, problems, options);
            var sampled = k > 1
                ? SampledEvaluation.Run(bundle.Policy, bundle.Tokenizer, bundle.Template, t, problems,
                    options with { Temperature = temp, TopP = p }, k, parse.GetValue(seed))
                : null;
            var o = new Dictionary<string, object>
            {
                ["task"] = t.Name, ["n"] = problems.Count, ["accuracy"] = r.Accuracy, ["format_rate"] = r.FormatRate,
                ["think_rate"] = r.ThinkRate, ["mean_completion_length"] = r.MeanLength,
                ["by_difficulty"] = r.ByDifficulty.OrderBy(kv => kv.Key).ToDictionary(kv => kv.Key.ToString(), kv => new Dictionary<string, double>
                {
                    ["n"] = kv.Value.Count, ["accuracy"] = kv.Value.Accuracy, ["format_rate"] = kv.Value.FormatRate,
                    ["think_rate"] = kv.Value.ThinkRate, ["mean_completion_length"] = kv.Value.MeanLength,
                }),
            };
            var jsonOptions = new JsonSerializerOptions
            {
                WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
            };
            if (sampled != null) o["sampled"] = sampled.ToJson();
            var sweep = budgets == null
                ? null
                : ThinkingBudgetSweep.Run(bundle.Policy, bundle.Tokenizer, bundle.Template, t, problems, options,
                    budgets, parse.GetValue(extendWith)!, extensions, k,
                    options with { Temperature = temp, TopP = p }, parse.GetValue(seed));
            if (sweep != null)
                o["test_time_scaling"] = ThinkingBudgetTable.ToJson(sweep, parse.GetValue(extendWith)!, extensions);
            if (sweep != null && parse.GetValue(plot) is { } plotPath)
                File.WriteAllBytes(plotPath, ThinkingBudgetTable.Plot(sweep));
            var text = JsonSerializer.Serialize(o, jsonOptions);
            // The file also keeps every completion (to compare runs, e.g. one device against another).
            if (parse.GetValue(outFile) is { } path)
            {
                var withCompletions = new Dictionary<string, object>(o)
                {
                    ["completions"] = r.Completions,
                    ["completion_parts"] = r.Completions
                        .Select(c => ThinkingSplit.Split(c, bundle.Template.ThinkPrefilled))
                        .Select(p => new Dictionary<string, object>
                        {
                            ["reasoning"] = p.Reasoning, ["answer"] = p.Answer, ["thinking_closed"] = p.ThinkingClosed,
                        }).ToList(),
                };
                if (sampled != null) withCompletions["sampled_completions"] = sampled.Completions;
                File.WriteAllText(path, JsonSerializer.Serialize(withCompletions, jsonOptions) + "\n");
            }
            if (parse.GetValue(json))
            {
                Console.WriteLine(text);
                return;
            }
            Console.WriteLine($"task {t.Name}, {problems.Count} held-out problems (greedy)");
            Console.WriteLine("level      n  accuracy  format  think  mean_len");
            foreach (var (level, v) in r.ByDifficulty.OrderBy(kv => kv.Key))
                Console.WriteLine($"{level,5} {v.Count,6} {v.Accuracy,9:P1} {v.FormatRate,7:P0} {v.ThinkRate,6:P0} {v.MeanLength,9:F1}");
            Console.WriteLine($"{"all",5} {problems.Count,6} {r.Accuracy,9:P1} {r.FormatRate,7:P0} {r.ThinkRate,6:P0} {r.MeanLength,9:F1}");
            if (sampled != null) PrintSampled(sampled);
            if (sweep != null) ThinkingBudgetTable.Print(sweep, r, sampled);
        }));
        return command;
    }

    /// <summary>The sampled evaluation as tables: pass@1, pass@K, maj@K by level, then pass@k and maj@k by k.</summary>
    private static void PrintSampled(SampledEvalReport s)
    {
        int k = s.Samples;
        var rows = s.ByDifficulty.OrderBy(kv => kv.Key)
            .Select(kv => (Level: kv.Key.ToString(), Scores: kv.Value))
            .Append(("all", s.Overall))
            .ToArray();
        Console.WriteLine($"\n{k} samples per problem, temperature {s.Temperature}, top-p {s.TopP}");
        Console.WriteLine($"level      n   pass@1 {"pass@" + k,8} {"maj@" + k,8}  format  mean_len");
        foreach (var (level, v) in rows)
            Console.WriteLine($"{level,5} {v.Problems,6} {v.Pass1,8:P1} {v.PassAtK[k - 1],8:P1} " +
                              $"{v.MajAtK[k - 1],8:P1} {v.FormatRate,7:P0} {v.MeanLength,9:F1}");
        var curves = new (string, Func<SampledScores, double[]>)[] { ("pass", v => v.PassAtK), ("maj", v => v.MajAtK) };
        foreach (var (name, pick) in curves)
        {
            Console.WriteLine($"\n{name}@k, k = 1…{k}");
            Console.WriteLine("level " + string.Concat(Enumerable.Range(1, k).Select(i => $"{name + "@" + i,8}")));
            foreach (var (level, v) in rows)
                Console.WriteLine($"{level,5} " + string.Concat(pick(v).Select(x => $"{x,8:P1}")));
        }
    }
}
