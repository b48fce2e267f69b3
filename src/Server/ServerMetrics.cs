using System.Diagnostics;
using System.Globalization;
using System.Text;
using NativeReasoner.Serving;

namespace NativeReasoner.Server;

/// <summary>
/// What the server measures, written as Prometheus text at <c>/metrics</c>: queue depth and running sequences, the
/// process's resident memory, requests by outcome, prompt and generated tokens, generated tokens per second over the
/// last <see cref="WindowSeconds"/> seconds (counted as requests finish), and a histogram of the time from a
/// request's arrival to its first generated text. When the chat client offers its scheduler's
/// <see cref="ChatSchedulerStats"/>, the gauges are the scheduler's (a request admitted by the gate is running only
/// once it holds a sequence slot, and waits in the scheduler's queue before), and the cached prompt tokens, slots and
/// the scheduler's own time to first token (queue wait + prefill, as p50/p99) are added; otherwise the gauges are
/// the admission gate's.
/// </summary>
internal sealed class ServerMetrics(AdmissionGate gate)
{
    public const int WindowSeconds = 10;
    private static readonly double[] TtftBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private static readonly string[] Outcomes = ["completed", "cancelled", "rejected", "invalid", "failed"];

    private readonly object _lock = new();
    private readonly long[] _outcomes = new long[Outcomes.Length];
    private readonly long[] _ttftCounts = new long[TtftBuckets.Length + 1];
    private double _ttftSum;
    private long _promptTokens;
    private long _generatedTokens;
    // Generated tokens per second of wall time, a ring indexed by the second; _ringSecond holds each slot's second.
    private readonly long[] _ring = new long[WindowSeconds + 1];
    private readonly long[] _ringSecond = new long[WindowSeconds + 1];
    private readonly long _start = Stopwatch.GetTimestamp();

    public enum Outcome { Completed, Cancelled, Rejected, Invalid, Failed }

    public void Count(Outcome outcome)
    {
        lock (_lock) _outcomes[(int)outcome]++;
    }

    public void FirstToken(double seconds)
    {
        lock (_lock)
        {
            int b = 0;
            while (b < TtftBuckets.Length && seconds > TtftBuckets[b]) b++;
            _ttftCounts[b]++;
            _ttftSum += seconds;
        }
    }

    public void Tokens(long prompt, long generated)
    {
        long second = (long)Stopwatch.GetElapsedTime(_start).TotalSeconds;
        lock (_lock)
        {
            _promptTokens += prompt;
            _generatedTokens += generated;
            int slot = (int)(second % _ring.Length);
            if (_ringSecond[slot] != second)
            {
                _ringSecond[slot] = second;
                _ring[slot] = 0;
            }
            _ring[slot] += generated;
        }
    }

    /// <summary>Generated tokens per second over the last full <see cref="WindowSeconds"/> seconds.</summary>
    public double TokensPerSecond()
    {
        long now = (long)Stopwatch.GetElapsedTime(_start).TotalSeconds;
        long sum = 0;
        lock (_lock)
            for (int i = 0; i < _ring.Length; i++)
                if (_ringSecond[i] < now && _ringSecond[i] >= now - WindowSeconds) sum += _ring[i];
        return (double)sum / WindowSeconds;
    }

    /// <param name="scheduler">The chat client's scheduler counters, or null when it offers none.</param>
    public string Render(ChatSchedulerStats? scheduler)
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        void Metric(string name, string type, string help)
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        }
        // Waiting = at the gate + in the scheduler's queue (admitted, no slot yet).
        int waiting = gate.Waiting + (scheduler?.QueueDepth ?? 0);
        int running = scheduler?.RunningSequences ?? gate.Running;
        Metric("nativereasoner_queue_depth", "gauge", "Requests waiting for a free sequence.");
        sb.Append(c, $"nativereasoner_queue_depth {waiting}\n");
        Metric("nativereasoner_running_sequences", "gauge", "Sequences generating now.");
        sb.Append(c, $"nativereasoner_running_sequences {running}\n");
        if (scheduler != null) RenderScheduler(sb, Metric, scheduler);
        Metric("process_resident_memory_bytes", "gauge", "Resident memory of the server process.");
        sb.Append(c, $"process_resident_memory_bytes {Environment.WorkingSet}\n");
        double tps = TokensPerSecond();
        lock (_lock)
        {
            Metric("nativereasoner_requests_total", "counter", "Finished requests by outcome.");
            for (int i = 0; i < Outcomes.Length; i++)
                sb.Append(c, $"nativereasoner_requests_total{{outcome=\"{Outcomes[i]}\"}} {_outcomes[i]}\n");
            Metric("nativereasoner_prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
            sb.Append(c, $"nativereasoner_prompt_tokens_total {_promptTokens}\n");
            Metric("nativereasoner_generated_tokens_total", "counter", "Generated tokens of finished requests.");
            sb.Append(c, $"nativereasoner_generated_tokens_total {_generatedTokens}\n");
            Metric("nativereasoner_tokens_per_second", "gauge",
                $"Generated tokens per second over the last {WindowSeconds} s.");
            sb.Append(c, $"nativereasoner_tokens_per_second {tps:0.###}\n");
            Metric("nativereasoner_time_to_first_token_seconds", "histogram",
                "From a request's arrival to its first generated text.");
            long cumulative = 0;
            for (int b = 0; b < TtftBuckets.Length; b++)
            {
                cumulative += _ttftCounts[b];
                sb.Append(c,
                    $"nativereasoner_time_to_first_token_seconds_bucket{{le=\"{TtftBuckets[b]}\"}} {cumulative}\n");
            }
            cumulative += _ttftCounts[^1];
            sb.Append(c, $"nativereasoner_time_to_first_token_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n");
            sb.Append(c, $"nativereasoner_time_to_first_token_seconds_sum {_ttftSum:0.######}\n");
            sb.Append(c, $"nativereasoner_time_to_first_token_seconds_count {cumulative}\n");
        }
        return sb.ToString();
    }

    private static void RenderScheduler(StringBuilder sb, Action<string, string, string> metric,
        ChatSchedulerStats scheduler)
    {
        var c = CultureInfo.InvariantCulture;
        metric("nativereasoner_sequence_slots", "gauge", "Sequence slots of the scheduler (its largest batch).");
        sb.Append(c, $"nativereasoner_sequence_slots {scheduler.SlotCount}\n");
        metric("nativereasoner_cached_prompt_tokens_total", "counter",
            "Prompt tokens served from a cached prefix instead of being recomputed.");
        sb.Append(c, $"nativereasoner_cached_prompt_tokens_total {scheduler.CachedPromptTokens}\n");
        metric("nativereasoner_decode_steps_total", "counter", "Batched decode steps (one forward for the batch).");
        sb.Append(c, $"nativereasoner_decode_steps_total {scheduler.DecodeSteps}\n");
        metric("nativereasoner_scheduler_time_to_first_token_seconds", "summary",
            "From a request entering the scheduler's queue to its first token (last 1024 requests).");
        // Before any request the quantiles are NaN, which Prometheus text writes as NaN.
        foreach (double q in (double[])[0.5, 0.99])
        {
            double v = scheduler.TimeToFirstTokenQuantile(q);
            string value = double.IsNaN(v) ? "NaN" : v.ToString("0.######", c);
            sb.Append(c, $"nativereasoner_scheduler_time_to_first_token_seconds{{quantile=\"{q}\"}} {value}\n");
        }
        sb.Append(c, $"nativereasoner_scheduler_time_to_first_token_seconds_sum " +
                     $"{scheduler.TimeToFirstTokenSumSeconds:0.######}\n");
        sb.Append(c, $"nativereasoner_scheduler_time_to_first_token_seconds_count " +
                     $"{scheduler.TimeToFirstTokenCount}\n");
    }
}
