using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.Model;
using NativeReasoner.Nn;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>The r1 and distill pipelines at toy sizes, optimizer-state resume, and their input errors.</summary>
public class R1DistillPipelineTests
{
    private static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "nr-pipe-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    private static DeepseekV3Config TinyConfig(ITokenizer tok) =>
        DeepseekV3Config.Preset("tiny") with { VocabSize = Math.Max(64, tok.VocabSize), MaxPositionEmbeddings = 256 };

    /// <summary>A random tiny DeepSeek-V3 saved as a model directory (checkpoint + tokenizer + template).</summary>
    private static string TinyModelDir(string root)
    {
        var tok = new CharTokenizer();
        var dir = Path.Combine(root, "base");
        using var b = ModelBundle.Create(new DeepseekV3ForCausalLM(TinyConfig(tok), new Generator(3)), tok, PromptTemplate.Default);
        b.Save(dir);
        return dir;
    }

    private const string ToyConfig = """
        {"task": "arithmetic", "steps": 1, "steps_2": 1, "num_generations": 2, "prompts_per_step": 1, "max_completion_length": 6,
         "eval_problems": 2, "cold_start_examples": 4, "sft_batch_size": 4, "sft_epochs": 1, "rejection_problems": 2, "rejection_samples": 2}
        """;

    [Fact]
    public void R1_RunsEveryStage_WritesOutputs_AndRerunSkipsFinishedStages()
    {
        var root = TempDir();
        try
        {
            var model = TinyModelDir(root);
            var run = Path.Combine(root, "run");
            var settings = new PipelineSettings().WithJson(ToyConfig, "toy");
            var summary = R1Run.Run(model, run, settings);
            foreach (var stage in R1Run.StageNames)
                foreach (var f in new[] { "stage.json", "model/config.json", "model/tokenizer.json", "model/prompt_template.json" })
                    Assert.True(File.Exists(Path.Combine(run, stage, f)), $"{stage}/{f}");
            foreach (var f in new[] { "1_cold_start_sft/cold_start.jsonl", "1_cold_start_sft/metrics.jsonl", "2_grpo/metrics.jsonl",
                         "3_rejection_sft/rejection_samples.jsonl", "4_grpo/metrics.jsonl", "model/config.json", "summary.json" })
                Assert.True(File.Exists(Path.Combine(run, f)), f);
            Assert.Equal(4, SftData.ReadJsonl(Path.Combine(run, "1_cold_start_sft", "cold_start.jsonl")).Count);
            var s = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement;
            Assert.Equal("r1", s.GetProperty("pipeline").GetString());
            Assert.Equal(R1Run.StageNames, s.GetProperty("stages").EnumerateArray().Select(e => e.GetProperty("stage").GetString()));
            Assert.True(s.GetProperty("after").TryGetProperty("accuracy", out _));
            Assert.Equal(4, summary["stages"]!.AsArray().Count);

            // A finished run shows its summary; one stopped before its summary skips the finished stages.
            var log = new List<string>();
            R1Run.Run(model, run, settings, log.Add);
            Assert.Contains(log, l => l.Contains("finished run of this configuration"));
            File.Delete(Path.Combine(run, "summary.json"));
            log.Clear();
            R1Run.Run(model, run, settings, log.Add);
            Assert.Equal(4, log.Count(l => l.Contains("already done")));
        }
        finally { Directory.Delete(root, true); }
    }

    /// <summary>A teacher that knows the problems: the first sample of a prompt is the worked solution, a repeat of it a wrong answer.</summary>
    private sealed class OracleTeacher(ITokenizer tok, PromptTemplate template, IEnumerable<Problem> problems) : IPolicy
    {
        private readonly Dictionary<string, Problem> _byPrompt = problems.ToDictionary(p => string.Join(",", tok.Encode(template.Format(p.Prompt))));

        public int VocabSize => tok.VocabSize;
        public Tensor Logits(Tensor inputIds) => throw new NotSupportedException();
        public IEnumerable<Parameter> Parameters() => [];

        public IReadOnlyList<SampledSequence> Generate(IReadOnlyList<long[]> prompts, GenerationOptions options, Generator rng) =>
            prompts.Select((ids, i) =>
            {
                var key = string.Join(",", ids);
                var text = _byPrompt.TryGetValue(key, out var p)
                    ? (i == 0 || !ids.SequenceEqual(prompts[i - 1]) ? ThinkTraces.Completion(p, think: true) : "<think>guess</think> \\boxed{-12345}")
                    : "\\boxed{0}";
                return new SampledSequence(tok.Encode(text).Append(tok.EosId).Select(t => (long)t).ToArray(), FinishReason.Eos);
            }).ToArray();
    }

    [Fact]
    public void Distill_KeepsOnlyVerifiedTeacherTraces_TrainsAndSavesStudent()
    {
        var root = TempDir();
        try
        {
            var tok = new CharTokenizer();
            var template = PromptTemplate.Default;
            var settings = new PipelineSettings().WithJson(ToyConfig, "toy").With("rejection_problems", "3");
            var task = new ArithmeticTask();
            var problems = task.Generate(Split.Train, 3, DistillRun.TraceSeed(settings)).Concat(task.Generate(Split.Test, 2, settings.Grpo.Trainer.Seed));
            var teacher = new OracleTeacher(tok, template, problems);
            var run = Path.Combine(root, "run");
            var summary = DistillRun.Run(teacher, tok, template, new(), TinyConfig(tok), run, settings);

            var traces = SftData.ReadJsonl(Path.Combine(run, "teacher_traces.jsonl"));
            Assert.Equal(3, traces.Count);
            Assert.All(traces, e => Assert.Contains($"\\boxed{{{e.Answer}}}", e.Completion));
            Assert.DoesNotContain(traces, e => e.Completion.Contains("-12345"));
            Assert.Equal(3, summary["traces"]!["kept"]!.GetValue<int>());
            Assert.Equal(6, summary["traces"]!["sampled"]!.GetValue<int>());
            Assert.Equal(1.0, summary["teacher"]!["held_out"]!["accuracy"]!.GetValue<double>());
            foreach (var f in new[] { "student/config.json", "student/tokenizer.json", "student/prompt_template.json", "metrics.jsonl", "summary.json" })
                Assert.True(File.Exists(Path.Combine(run, f)), f);
            Assert.True(summary["student"]!["after"]!.AsObject().ContainsKey("accuracy"));
            using var student = ModelBundle.Load(Path.Combine(run, "student"));
            Assert.Equal(tok.VocabSize, student.Tokenizer.VocabSize);
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public void OptimizerState_SaveLoad_ContinuesLikeAnUninterruptedRun()
    {
        var root = TempDir();
        try
        {
            var tok = new CharTokenizer();
            var data = new ArithmeticTask().Generate(Split.Train, 4, 1).Select(p => ThinkTraces.Example(p, true)).ToArray();
            const float lr = 0.05f;
            float[][] Weights(BigramPolicy p) => p.Parameters().Select(x => x.ToArray()).ToArray();

            // Uninterrupted: 6 steps.
            using var a = new BigramPolicy(tok.VocabSize, 7);
            using (var t = new SftTrainer(a, tok, PromptTemplate.Default, lr, 6, weightDecay: 0.01f))
                for (int i = 0; i < 6; i++) t.Step(data, lr);

            // Interrupted after 3: save the state, drop the trainer, resume in a new one.
            using var b = new BigramPolicy(tok.VocabSize, 7);
            var path = Path.Combine(root, "ckpt", OptimizerCheckpoint.FileName);
            using (var t = new SftTrainer(b, tok, PromptTemplate.Default, lr, 6, weightDecay: 0.01f))
            {
                for (int i = 0; i < 3; i++) t.Step(data, lr);
                OptimizerCheckpoint.Save(t.Optimizer, Path.GetDirectoryName(path)!);
            }
            using (var t = new SftTrainer(b, tok, PromptTemplate.Default, lr, 6, weightDecay: 0.01f))
            {
                Assert.True(OptimizerCheckpoint.TryLoad(t.Optimizer, Path.GetDirectoryName(path)!));
                Assert.Equal(3, t.Optimizer.StepCount);
                for (int i = 0; i < 3; i++) t.Step(data, lr);
            }
            var wa = Weights(a);
            var wb = Weights(b);
            for (int i = 0; i < wa.Length; i++)
                for (int j = 0; j < wa[i].Length; j++) Assert.True(Math.Abs(wa[i][j] - wb[i][j]) <= 1e-6, $"param {i}[{j}]: {wa[i][j]} vs {wb[i][j]}");

            // Fresh moments instead would not continue the same way: the check above has teeth.
            using var c = new BigramPolicy(tok.VocabSize, 7);
            using (var t = new SftTrainer(c, tok, PromptTemplate.Default, lr, 6, weightDecay: 0.01f))
                for (int i = 0; i < 3; i++) t.Step(data, lr);
            using (var t = new SftTrainer(c, tok, PromptTemplate.Default, lr, 6, weightDecay: 0.01f))
                for (int i = 0; i < 3; i++) t.Step(data, lr);
            var wc = Weights(c);
            Assert.Contains(Enumerable.Range(0, wa.Length), i => wa[i].Zip(wc[i]).Any(z => Math.Abs(z.First - z.Second) > 1e-4));

            // A state file for other parameters is refused with a clear error.
            using var other = new UnigramPolicy(5);
            using var wrong = new NativeReasoner.Optim.AdamW(((IPolicy)other).Parameters());
            Assert.Contains("parameter", Assert.Throws<InvalidDataException>(() => wrong.LoadState(path)).Message);
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public void TrainPipeline_InterruptedMidPretraining_SavesAndRestoresOptimizerState()
    {
        var runs = TempDir();
        try
        {
            using (var cts = new CancellationTokenSource())
            {
                // The progress line after the first pre-training step asks for the interruption.
                var r = TrainPipeline.Run(TrainPipelineTests.Toy(runs), m => { if (m.Contains("pre-train")) cts.Cancel(); }, cts.Token);
                Assert.True(r["interrupted"]!.GetValue<bool>());
            }
            var state = Path.Combine(new RunCheckpoints(Path.Combine(runs, "toy"), _ => { }).LoadNewest()!.Path,
                OptimizerCheckpoint.FileName);
            Assert.True(File.Exists(state));
            using (var f = NativeReasoner.IO.SafetensorsFile.Open(state))
                Assert.Equal("1", f.Metadata["step_count"]);
            var log = new List<string>();
            TrainPipeline.Run(TrainPipelineTests.Toy(runs), log.Add);
            Assert.Contains(log, l => l.Contains("resuming") && l.Contains("pretrain step 1"));
            Assert.DoesNotContain(log, l => l.Contains("restart from zero"));
            Assert.True(File.Exists(Path.Combine(runs, "toy", "summary.json")));
        }
        finally { Directory.Delete(runs, true); }
    }

    [Fact]
    public void Errors_NameTheProblem()
    {
        var s = new PipelineSettings();
        Assert.Contains("unknown task 'nope'", Assert.Throws<ArgumentException>(() => s.WithJson("{\"task\": \"nope\"}", "cfg.json")).Message);
        var bad = Assert.Throws<ArgumentException>(() => s.WithJson("{\"sft_epochs\": \"many\"}", "cfg.json")).Message;
        Assert.Contains("cfg.json", bad);
        Assert.Contains("sft_epochs", bad);
        Assert.Contains("unknown setting 'sft_epoch'", Assert.Throws<ArgumentException>(() => s.WithJson("{\"sft_epoch\": 1}", "cfg.json")).Message);
        Assert.Contains("malformed JSON", Assert.Throws<ArgumentException>(() => s.WithJson("{\"steps\": 1,", "cfg.json")).Message);
        Assert.Contains("steps", Assert.Throws<ArgumentException>(() => s.WithJson("{\"steps\": [1]}", "cfg.json")).Message);
        Assert.Contains("neither a preset", Assert.Throws<ArgumentException>(() => DistillRun.ResolveStudentConfig("huge")).Message);

        var root = TempDir();
        try
        {
            var missing = Path.Combine(root, "missing");
            Assert.Contains("does not exist", Assert.Throws<DirectoryNotFoundException>(() => R1Run.Run(missing, Path.Combine(root, "r"), s)).Message);
            // A model directory without a tokenizer.
            var noTok = TinyModelDir(root);
            File.Delete(Path.Combine(noTok, "tokenizer.json"));
            Assert.Contains("tokenizer", Assert.ThrowsAny<IOException>(() => DistillRun.Run(noTok, "tiny", Path.Combine(root, "d"), s)).Message);
            // The CLI turns them into one line on stderr and exit code 1.
            Assert.Equal(1, Program.BuildRoot().Parse(["pipeline", "r1", "--model", missing, "--run-dir", Path.Combine(root, "r")]).Invoke());
            var cfg = Path.Combine(root, "cfg.json");
            File.WriteAllText(cfg, "{\"task\": \"countdown\"}");
            Assert.Equal(1, Program.BuildRoot().Parse(["pipeline", "r1", "--model", noTok, "--run-dir", Path.Combine(root, "r"), "--config", cfg]).Invoke());
            Assert.Equal(1, Program.BuildRoot().Parse(["pipeline", "distill", "--teacher", noTok, "--student-config", "tiny", "--run-dir", Path.Combine(root, "d"), "--sft-epochs", "0"]).Invoke());
        }
        finally { Directory.Delete(root, true); }
    }
}
