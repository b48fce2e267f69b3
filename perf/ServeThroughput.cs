using System.Diagnostics;
using Microsoft.Extensions.AI;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;
using NativeReasoner.Serving;

namespace NativeReasoner.Perf;

/// <summary>
/// `dotnet perf/bin/Release/net10.0/NativeReasoner.Perf.dll serve-throughput [preset] [max-output-tokens]`:
/// end-to-end generation throughput through <see cref="NativeReasonerChatClient"/> (template, tokenizer, scheduler,
/// streaming assembly) at 1, 8 and 32 concurrent callers, each sending greedy requests one after another, on a
/// randomly initialised preset (bench-tiny) with the character tokenizer. Prints a markdown table (tokens/s over the
/// wall clock from the first request to the last answer, time to first token, mean decode batch) beside
/// `nr bench model`'s decode figure for the same preset, and the load average around the run.
/// </summary>
public static class ServeThroughput
{
    private const string Template =
        "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:";

    public static void Run(string preset, int maxOutputTokens)
    {
        var config = DeepseekV3Config.Preset(preset);
        Console.WriteLine($"load average before: {LoadAverage()}");
        var decode = ModelBenchmark.MeasureDecode(config, batch: 16, prompt: 32, newTokens: 96, rounds: 3,
            warmupSeconds: 2);
        Console.WriteLine($"`nr bench model` decode ({preset}, batch 16, prompt 32, 96 new tokens): " +
            $"{decode.TokensPerSecond:F0} tokens/s ({decode.MsPerStep:F2} ms/step)");
        using var model = new DeepseekV3ForCausalLM(config, new Generator(1));
        var tokenizer = new CharTokenizer();
        var prompt = ChatPrompt.FromTemplate(ChatTemplate.FromSource(Template));
        // Warm-up (JIT, pools) at the middle concurrency; not reported.
        Measure(model, tokenizer, prompt, concurrency: 8, requestsPerCaller: 1, maxOutputTokens);
        Console.WriteLine();
        Console.WriteLine("| concurrency | requests | output tokens | wall s | tokens/s | × concurrency 1 | " +
            "tokens per CPU-second | × concurrency 1 (CPU) | TTFT p50 ms | TTFT p99 ms | mean decode batch | " +
            "model alone at that batch, tokens/s |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        double single = 0, singleCpu = 0;
        foreach (var (concurrency, perCaller) in new[] { (1, 4), (8, 4), (32, 4) })
        {
            var r = Measure(model, tokenizer, prompt, concurrency, perCaller, maxOutputTokens);
            if (concurrency == 1) (single, singleCpu) = (r.TokensPerSecond, r.TokensPerCpuSecond);
            // The ceiling: TextGeneration's decode steps alone (no prefill, no client) at the same batch.
            var alone = ModelBenchmark.MeasureDecode(config, batch: concurrency, prompt: 32, newTokens: 96, rounds: 2,
                warmupSeconds: 0);
            Console.WriteLine($"| {concurrency} | {concurrency * perCaller} | {r.Tokens} | {r.Seconds:F2} | " +
                $"{r.TokensPerSecond:F0} | {r.TokensPerSecond / single:F1}× | {r.TokensPerCpuSecond:F0} | " +
                $"{r.TokensPerCpuSecond / singleCpu:F1}× | {r.TtftP50 * 1000:F0} | " +
                $"{r.TtftP99 * 1000:F0} | {r.MeanBatch:F1} | {alone.TokensPerSecond:F0} |");
        }
        Console.WriteLine();
        Console.WriteLine($"load average after: {LoadAverage()}");
    }

    private readonly record struct Result(long Tokens, double Seconds, double TokensPerSecond,
        double TokensPerCpuSecond, double TtftP50, double TtftP99, double MeanBatch);

    private static Result Measure(ICausalLM model, ITokenizer tokenizer, ChatPrompt prompt, int concurrency,
        int requestsPerCaller, int maxOutputTokens)
    {
        using var client = new NativeReasonerChatClient(new CausalLMPolicy(model), tokenizer, prompt,
            model.Config.MaxPositionEmbeddings, new NativeReasonerChatClientOptions
            {
                MaxConcurrentSequences = Math.Max(concurrency, 1),
                MaxSequenceLength = 256,
                // Every request is a new conversation: nothing to reuse, and no reuse to flatter the figures.
                ReusePromptPrefix = false,
            });
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = maxOutputTokens };
        var clock = Stopwatch.StartNew();
        // CPU time of this process: on a machine shared with other work, wall-clock rates measure the neighbours
        // too; tokens per CPU-second (with NR_NUM_THREADS=1, one core's worth) measure the batching itself.
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var tokens = Task.WhenAll(Enumerable.Range(0, concurrency).Select(caller => Task.Run(async () =>
        {
            long produced = 0;
            for (int i = 0; i < requestsPerCaller; i++)
            {
                // About 60 prompt tokens with the template, different per request.
                var question = $"Question {caller * requestsPerCaller + i:D4}: how many primes below 100?";
                var r = await client.GetResponseAsync(
                    [new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, question)], options);
                produced += r.Usage!.OutputTokenCount!.Value;
            }
            return produced;
        }))).GetAwaiter().GetResult().Sum();
        double seconds = clock.Elapsed.TotalSeconds;
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        var stats = client.Stats;
        return new Result(tokens, seconds, tokens / seconds, tokens / cpuSeconds, stats.TimeToFirstTokenQuantile(0.5),
            stats.TimeToFirstTokenQuantile(0.99), (double)(stats.GeneratedTokens - stats.RequestsStarted) /
                Math.Max(stats.DecodeSteps, 1));
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "n/a"; }
    }
}
