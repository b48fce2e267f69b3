// Source: DeepSeek-R1-Zero (arXiv:2501.12948) in miniature: pre-training, then GRPO (arXiv:2402.03300).
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.Distributed;
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>Settings of <c>nr train</c>: the default run and its budgets.</summary>
public sealed record TrainSettings
{
    public string Name { get; init; } = "default";
    public string RunsDirectory { get; init; } = "runs";
    /// <summary>The model: the CPU benchmark preset (MLA + MoE, 256 routed + 1 shared experts, top-8), vocab from the tokenizer.</summary>
    public ICausalLMConfig Model { get; init; } = DeepseekV3Config.Preset("bench-tiny") with { MaxPositionEmbeddings = 128 };
    /// <summary>The ladder (<see cref="LadderTask"/>): levels a character model learns within the budget.</summary>
    public string Task { get; init; } = "ladder";
    /// <summary>
    /// The prompt template: just the question, so the model spends its positions on the arithmetic (the
    /// question itself reads like <c>What is 47 * 6?</c>).
    /// </summary>
    public PromptTemplate Template { get; init; } = new("<|bos|>{question}\n");
    /// <summary>
    /// Pre-training steps: they alone set the cosine LR and the data, so the pre-trained model is the same on a
    /// fast or a slow machine (about 7.5 minutes on 2 cores).
    /// </summary>
    public int PretrainSteps { get; init; } = 2300;
    /// <summary>Outer wall-time limit of pre-training: when hit, the phase stops early and the run says so.</summary>
    public double PretrainMaxMinutes { get; init; } = 30;
    public int PretrainBatch { get; init; } = 32;
    public float PretrainLearningRate { get; init; } = 3e-3f;
    /// <summary>
    /// Share of pre-training answers written with a &lt;think&gt; trace (the rest are direct answers). Below one
    /// half, so the pre-trained model answers directly by default (greedy) and RL has to discover that
    /// thinking pays — most on the hard levels, where direct answers fail.
    /// </summary>
    public double ThinkFraction { get; init; } = 0.45;
    public GrpoSettings Grpo { get; init; } = new GrpoSettings
    {
        Task = "ladder",
        // GRPO steps; they set the LR schedule, not the clock. 200 with dynamic sampling (2.2–2.3 sampling rounds
        // a step on three seeds): about 4 idle minutes, so the whole run stays within 15 (docs/train/seeds.md).
        Steps = 200,
        Trainer = new GrpoConfig
        {
            // 80 tokens: a level-6 trace with its tags and boxed answer runs to about 62.
            NumGenerations = 8, PromptsPerStep = 8, MaxCompletionLength = 80, LossType = LossType.Dapo,
            EpsilonHigh = 0.28f,
            LearningRate = 2e-4f, WarmupSteps = 3, TotalSteps = 200, EvalEvery = 15, EvalProblems = 50,
            Temperature = 1f,
            // More prompts from the levels where direct answers fail and samples disagree (level 6's weight is
            // RlUnseenWeight).
            DifficultyWeights = [0.5, 0.5, 1, 3, 4],
            // After ~100 steps most groups answered all alike (zero reward spread, no gradient): DAPO's dynamic
            // sampling keeps only groups that disagree, drawing up to two more rounds of prompts to fill the step.
            DynamicSampling = true, DynamicSamplingMaxRounds = 3,
        },
        AccuracyWeight = 1f, FormatWeight = 0.5f,
    };
    /// <summary>Outer wall-time limit of GRPO: when hit, the phase stops early and the run says so loudly.</summary>
    public double RlMaxMinutes { get; init; } = 20;
    /// <summary>Held-out problems for the before/after comparison (levels cycle, so this many / levels per level).</summary>
    public int EvalProblems { get; init; } = 250;
    public ulong Seed { get; init; }
    /// <summary>
    /// The R1-Zero variant (<see cref="PretrainCorpus"/>): pre-training holds no &lt;think&gt; answer at all; worked
    /// steps appear only as plain documents of their own (<see cref="ThinkFraction"/> of the batch).
    /// </summary>
    public bool R1Zero { get; init; }
    /// <summary>
    /// Held-out problems of the ladder's unseen level 6 (two-digit × two-digit), which neither pre-training nor
    /// GRPO draws, evaluated before and after RL; 0 skips it.
    /// </summary>
    public int UnseenProblems { get; init; } = 50;
    /// <summary>
    /// Weight of level 6 among GRPO's prompts, beside <see cref="GrpoConfig.DifficultyWeights"/> of levels 1–5
    /// (ladder only; 0: GRPO never draws it). Its training split only: the unseen held-out problems stay unseen.
    /// </summary>
    public double RlUnseenWeight { get; init; } = 1;
    /// <summary>
    /// Samples per held-out problem of the R1-style sampled evaluation before and after GRPO
    /// (<see cref="SampledEvaluation"/>: pass@1 averaged over them, pass@k, maj@k, by level, at temperature
    /// <see cref="SampledTemperature"/> and top-p <see cref="SampledTopP"/>); 0 skips it.
    /// </summary>
    public int EvalSamples { get; init; } = 8;
    public float SampledTemperature { get; init; } = 0.6f;
    public float SampledTopP { get; init; } = 0.95f;
    /// <summary>
    /// A saved model directory (a run's <c>model/</c>) to start GRPO from instead of pre-training: the
    /// pre-training phase is skipped, so recipes of GRPO can be compared on one pre-trained model.
    /// </summary>
    public string? InitFrom { get; init; }
    /// <summary>
    /// Wall time between periodic crash-safe checkpoints (<see cref="RunCheckpoints"/>); each phase end is one too.
    /// 0 checkpoints after every step (the kill tests use it).
    /// </summary>
    public double CheckpointEveryMinutes { get; init; } = 2;
    /// <summary>
    /// Replace a run directory that holds another configuration (or a finished run) instead of refusing.
    /// </summary>
    public bool Overwrite { get; init; }
}

/// <summary>
/// <c>nr train</c>: build a small model (random init; DeepSeek-V3 bench-tiny by default, or any preset), pre-train
/// it on synthetic problems whose answers mix direct answers with &lt;think&gt; traces (<see cref="ThinkTraces"/>),
/// then GRPO on accuracy + format rewards. Writes <c>runs/NAME/</c>: <c>model/</c>, <c>metrics.jsonl</c>
/// (pre-training and RL, with a <c>phase</c> field), <c>summary.json</c> (held-out results after pre-training and
/// after RL, by difficulty, and the checks of the issue), <c>samples.md</c>, and PNG plots (<see cref="Plots"/>).
/// Crash safety: checkpoints (weights, AdamW moments, GRPO sampler state, phase and step) are written atomically
/// every <see cref="TrainSettings.CheckpointEveryMinutes"/>, at each phase end and on cancellation (Ctrl-C) into
/// <c>checkpoints/</c> (<see cref="RunCheckpoints"/>); running again resumes from the newest valid one, with
/// <c>metrics.jsonl</c> cut back to its step and appended from there. A resumed run equals an uninterrupted one.
/// A directory of another configuration is refused (<see cref="RunIdentity"/>).
/// Both phases are budgeted in steps (<see cref="StepBudget"/>); wall time is only an outer limit, whose hit is
/// reported in the output and in summary.json (<c>budget_hit</c>).
/// Under <c>mpirun -np N</c> (a process group of N ranks) pre-training is data-parallel: every rank builds the
/// same batch, trains on its N-th of it and the gradients are summed (<see cref="SftTrainer"/>); GRPO spreads the
/// rollouts over the ranks and sums the policy gradient (<see cref="GrpoTrainer"/>'s group).
/// Only rank 0 writes: run.json, checkpoints, metrics, evaluations, samples, plots and
/// the summary; the others read the checkpoint it resumes from. Stops (Ctrl-C, wall limits) are agreed on by
/// all ranks at each step, so none is left waiting in a collective.
/// </summary>
public static class TrainPipeline
{
    /// <param name="time">The clock of the wall-time limits and timings (tests pass a slow or fast one).</param>
    /// <param name="group">The ranks of a data-parallel run (null: this process alone).</param>
    public static JsonObject Run(TrainSettings s, Action<string> progress, CancellationToken cancel = default,
        TimeProvider? time = null, IProcessGroup? group = null)
    {
        time ??= TimeProvider.System;
        group ??= new LocalProcessGroup();
        bool root = group.Rank == 0;
        if (!root) progress = _ => { };
        var pretrainBudget = new StepBudget(s.PretrainSteps, s.PretrainMaxMinutes).Validate("pre-training");
        var rlBudget = new StepBudget(s.Grpo.Steps, s.RlMaxMinutes).Validate("GRPO");
        if (!(s.CheckpointEveryMinutes >= 0))
            throw new ArgumentException($"checkpoint interval must be ≥ 0 minutes, got {s.CheckpointEveryMinutes}");
        if (s.PretrainBatch < 1) throw new ArgumentException($"--pretrain-batch must be ≥ 1, got {s.PretrainBatch}");
        if (s.PretrainBatch % group.Size != 0)
            throw new ArgumentException(
                $"the pre-training batch of {s.PretrainBatch} does not divide over {group.Size} ranks: " +
                $"give --pretrain-batch a multiple of {group.Size}");
        if (s.Grpo.Trainer.PromptsPerStep % group.Size != 0)
            throw new ArgumentException(
                $"the GRPO batch of {s.Grpo.Trainer.PromptsPerStep} prompts does not divide over {group.Size} ranks: " +
                $"give --prompts-per-step a multiple of {group.Size}");
        var runDir = Path.Combine(s.RunsDirectory, s.Name);
        // Before the run directory is claimed: a refused batch leaves nothing that a corrected rerun would trip over.
        CheckPretrainBatchFits(s);
        CheckRecipe(s);
        // Rank 0 claims (or refuses) the directory; the others follow its verdict.
        string? refused = null;
        if (root)
        {
            try { RunIdentity.Claim(runDir, s, progress); }
            catch (ArgumentException e) { refused = e.Message; }
        }
        if (group.SumCount(refused == null ? 0 : 1) > 0)
            throw new ArgumentException(refused ?? $"rank 0 refused the run directory {runDir} (its error says why)");
        var summaryPath = Path.Combine(runDir, "summary.json");
        if (File.Exists(summaryPath))
        {
            progress($"{runDir} is a finished run of this configuration; its summary.json is shown " +
                     "(--overwrite runs it again)\n");
            return RunReport.ReadSummary(summaryPath);
        }
        var checkpoints = new RunCheckpoints(runDir, progress);
        // Rank 0 tidies the checkpoint folder first (it drops unfinished ones); then the others read the same newest.
        var resumed = root ? checkpoints.LoadNewest() : null;
        group.Barrier();
        if (!root) resumed = checkpoints.LoadNewest();
        var task = TaskRegistry.Create(s.Task);
        if (!ThinkTraces.Supports(task.Name)) throw new ArgumentException($"nr train pre-trains with think traces, which task '{task.Name}' has none of; use arithmetic, linear or word");
        var rlTask = RlTask(task, s);
        var tokenizer = new CharTokenizer();
        var template = s.Template;
        long totalStart = time.GetTimestamp();
        var budget = new JsonObject();
        var timings = new JsonObject();
        var config = s.Model.ForTokenizer(tokenizer.VocabSize, tokenizer.EosId, tokenizer.BosId, tokenizer.PadId);

        // Resume: weights and where we were, from the newest valid checkpoint.
        string phase = "pretrain";
        int done = 0;
        ICausalLM model;
        var metricsPath = Path.Combine(runDir, "metrics.jsonl");
        EvalReport? afterPretrain = null;
        // The unseen level 6 after pre-training (ladder only), kept in checkpoints like afterPretrain.
        EvalReport? unseenBefore = null;
        // The sampled evaluations after pre-training (their JSON is all the summary needs), kept in checkpoints too.
        JsonObject? sampledBefore = null, unseenSampledBefore = null;
        double phaseElapsedBefore = 0;
        List<Dictionary<string, double>> kept;
        if (resumed != null)
        {
            phase = resumed.Phase == 0 ? "pretrain" : "rl";
            done = resumed.Step;
            model = CausalLMRegistry.Load(resumed.Path);
            phaseElapsedBefore = resumed.State["phase_elapsed_s"]?.GetValue<double>() ?? 0;
            if (resumed.State["after_pretraining"] is JsonObject ap) afterPretrain = EvalFromJson(ap);
            if (resumed.State["unseen_after_pretraining"] is JsonObject up) unseenBefore = EvalFromJson(up);
            if (resumed.State["sampled_after_pretraining"] is JsonObject sp) sampledBefore = (JsonObject)sp.DeepClone();
            if (resumed.State["unseen_sampled_after_pretraining"] is JsonObject usp)
                unseenSampledBefore = (JsonObject)usp.DeepClone();
            if (resumed.State["pretrain_budget"] is JsonObject pb) budget["pretrain"] = pb.DeepClone();
            if (resumed.State["pretrain_s"] is JsonNode ps) timings["pretrain_s"] = ps.DeepClone();
            if (resumed.State["pretrain_steps"] is JsonNode pst) timings["pretrain_steps"] = pst.DeepClone();
            progress($"resuming from {resumed.Path}: {phase} step {done}\n");
            kept = root ? MetricsLogger.KeepThrough(metricsPath, resumed.Phase, done, progress) : [];
        }
        else
        {
            model = s.InitFrom == null ? config.Build(new Generator(s.Seed + 17)) : LoadInit(s.InitFrom, config);
            if (s.InitFrom != null)
            {
                // No pre-training: GRPO starts from the given model, evaluated as "after pre-training".
                phase = "rl";
                budget["pretrain"] = new JsonObject
                {
                    ["planned_steps"] = 0, ["steps"] = 0, ["max_minutes"] = s.PretrainMaxMinutes,
                    ["wall_limit_hit"] = false, ["init_from"] = s.InitFrom,
                };
                timings["pretrain_s"] = 0.0;
                timings["pretrain_steps"] = 0;
            }
            // No checkpoint: any log lines belong to steps that will be redone.
            kept = root ? MetricsLogger.KeepThrough(metricsPath, 0, 0, progress) : [];
        }
        using var _ = model;
        var policy = new CausalLMPolicy(model);
        var heldOut = task.Generate(Split.Test, s.EvalProblems, s.Seed);
        if (s.UnseenProblems < 0)
            throw new ArgumentException($"unseen-level problems must be ≥ 0, got {s.UnseenProblems}");
        IReadOnlyList<Problem> unseen = task is LadderTask ladder && s.UnseenProblems > 0
            ? ladder.GenerateUnseen(Split.Test, s.UnseenProblems, s.Seed) : [];
        var greedy = new GenerationOptions { MaxNewTokens = s.Grpo.Trainer.MaxCompletionLength, Temperature = 0f, EosTokenIds = [tokenizer.EosId] };
        // R1's evaluation (K samples at T 0.6, top-p 0.95) of a problem set; null when switched off.
        JsonObject? Sampled(IReadOnlyList<Problem> problems) => s.EvalSamples == 0 || problems.Count == 0 ? null
            : SampledEvaluation.Run(policy, tokenizer, template, task, problems,
                greedy with { Temperature = s.SampledTemperature, TopP = s.SampledTopP }, s.EvalSamples, s.Seed)
                .ToJson();
        using var log = root ? new MetricsLogger(metricsPath) : null;
        long lastCheckpoint = time.GetTimestamp();
        // Not again at the step just resumed from (or just saved).
        (int Phase, int Step) lastSaved = resumed == null ? (-1, -1) : (resumed.Phase, resumed.Step);

        // extra: what the phase needs beyond weights and optimizer (elapsed time, sampler, earlier results).
        void Checkpoint(int phaseIndex, int step, Optim.AdamW? optimizer, Func<JsonObject> extra, bool announce)
        {
            if (!root) return;
            var path = checkpoints.Save(phaseIndex, step, extra(), dir =>
            {
                model.Save(dir);
                if (optimizer != null) OptimizerCheckpoint.Save(optimizer, dir);
            });
            lastCheckpoint = time.GetTimestamp();
            lastSaved = (phaseIndex, step);
            if (announce) progress($"\ncheckpoint saved ({path}); run again to resume\n");
        }
        bool CheckpointDue(int phaseIndex, int step) => lastSaved != (phaseIndex, step) &&
            time.GetElapsedTime(lastCheckpoint).TotalMinutes >= s.CheckpointEveryMinutes;

        // ---- pre-training (SFT on think / direct mixes)
        if (phase == "pretrain")
        {
            const int warmup = 30;
            using var sft = new SftTrainer(policy, tokenizer, template, s.PretrainLearningRate, s.PretrainSteps,
                warmupSteps: warmup, weightDecay: 0.01f, group: group);
            int share = s.PretrainBatch / group.Size;
            if (resumed != null) OptimizerCheckpoint.TryLoad(sft.Optimizer, resumed.Path, progress);
            long start = time.GetTimestamp();
            TimeSpan Elapsed() => time.GetElapsedTime(start) + TimeSpan.FromSeconds(phaseElapsedBefore);
            JsonObject PretrainState() => new() { ["phase_elapsed_s"] = Elapsed().TotalSeconds };
            model.Train();
            PhaseStop stop;
            for (; (stop = Agree(group, pretrainBudget.Check(done, Elapsed()))) == PhaseStop.Continue; done++)
            {
                if (Agree(group, cancel.IsCancellationRequested))
                {
                    Checkpoint(0, done, sft.Optimizer, PretrainState, announce: true);
                    return new JsonObject { ["interrupted"] = true };
                }
                if (done > 0 && CheckpointDue(0, done))
                    Checkpoint(0, done, sft.Optimizer, PretrainState, announce: false);
                var batch = PretrainCorpus.Batch(task, s, done);
                float lr = StepBudget.WarmupCosine(s.PretrainLearningRate, warmup, done, s.PretrainSteps);
                float loss;
                try { loss = sft.Step(batch[(group.Rank * share)..((group.Rank + 1) * share)], lr); }
                catch (OutOfMemoryException e)
                {
                    throw new InvalidOperationException($"out of memory in pre-training step {done + 1} with " +
                        $"--pretrain-batch {s.PretrainBatch} ({e.Message}); lower --pretrain-batch and run again " +
                        "(the run resumes from its last checkpoint)", e);
                }
                var elapsed = Elapsed();
                log?.Log([new("phase", 0), new("step", done + 1), new("loss", loss), new("learning_rate", lr),
                         new("elapsed_s", elapsed.TotalSeconds)]);
                if (done % 10 == 0)
                    progress($"\rpre-train {Bar(done, s.PretrainSteps)} step {done + 1}  loss {loss:F3}  " +
                             $"{elapsed:mm\\:ss}   ");
            }
            progress("\n");
            timings["pretrain_s"] = Elapsed().TotalSeconds;
            timings["pretrain_steps"] = done;
            budget["pretrain"] = ReportBudget("pre-training", pretrainBudget, done, stop, progress);
            phase = "rl";
            done = 0;
            phaseElapsedBefore = 0;
        }

        if (afterPretrain == null && root)
        {
            long evalStart0 = time.GetTimestamp();
            afterPretrain = Evaluation.Run(policy, tokenizer, template, task, heldOut, greedy);
            if (unseen.Count > 0) unseenBefore = Evaluation.Run(policy, tokenizer, template, task, unseen, greedy);
            sampledBefore = Sampled(heldOut);
            unseenSampledBefore = Sampled(unseen);
            timings["eval_after_pretrain_s"] = time.GetElapsedTime(evalStart0).TotalSeconds;
            // The phase-end checkpoint: a stop during GRPO resumes with the pre-trained evaluation kept.
            if (done == 0) Checkpoint(1, 0, null, () => RlState(null), announce: false);
        }
        if (root)
        {
            progress($"after pre-training: held-out accuracy {afterPretrain!.Accuracy:P1}, format " +
                $"{afterPretrain.FormatRate:P0}, think {afterPretrain.ThinkRate:P0}\n");
            progress(SampledLine(sampledBefore, unseenSampledBefore));
        }

        // The state of a GRPO checkpoint: what the summary needs from pre-training, and the sampler.
        JsonObject RlState(GrpoTrainer? trainer)
        {
            var state = new JsonObject
            {
                ["phase_elapsed_s"] = phaseElapsedBefore, ["after_pretraining"] = EvalToJson(afterPretrain!),
            };
            if (unseenBefore != null) state["unseen_after_pretraining"] = EvalToJson(unseenBefore);
            if (sampledBefore != null) state["sampled_after_pretraining"] = sampledBefore.DeepClone();
            if (unseenSampledBefore != null)
                state["unseen_sampled_after_pretraining"] = unseenSampledBefore.DeepClone();
            if (budget["pretrain"] is JsonNode pb) state["pretrain_budget"] = pb.DeepClone();
            if (timings["pretrain_s"] is JsonNode ps) state["pretrain_s"] = ps.DeepClone();
            if (timings["pretrain_steps"] is JsonNode pst) state["pretrain_steps"] = pst.DeepClone();
            if (trainer != null)
            {
                state["tokens_seen"] = trainer.TokensSeen;
            }
            return state;
        }

        // ---- GRPO
        var grpo = s.Grpo with
        {
            Task = task.Name,
            Trainer = s.Grpo.Trainer with { Seed = s.Seed, DifficultyWeights = RlDifficultyWeights(task, rlTask, s) },
        };
        long rlStart = time.GetTimestamp();
        double rlElapsedBefore = phaseElapsedBefore;
        TimeSpan RlElapsed() => time.GetElapsedTime(rlStart) + TimeSpan.FromSeconds(rlElapsedBefore);
        PhaseStop rlStop;
        using (var reference = grpo.Trainer.Beta != 0 ? config.Build(new Generator(0)) : null)
        {
            if (reference != null) CopyWeights(model, reference);
            using var trainer = new GrpoTrainer(policy, reference == null ? null : new CausalLMPolicy(reference),
                tokenizer, rlTask, grpo.Rewards(rlTask, template.ThinkPrefilled), template, grpo.Trainer, group: group);
            if (done > 0)
            {
                OptimizerCheckpoint.TryLoad(trainer.Optimizer, resumed!.Path, progress);
                trainer.ResumeAt(done);
            }
            if (resumed?.State["tokens_seen"] is JsonNode seen && resumed.Phase == 1 && resumed.Step == done)
                trainer.TokensSeen = seen.GetValue<long>();
            JsonObject State()
            {
                phaseElapsedBefore = RlElapsed().TotalSeconds;
                return RlState(trainer);
            }
            for (; (rlStop = Agree(group, rlBudget.Check(done, RlElapsed()))) == PhaseStop.Continue; done++)
            {
                if (Agree(group, cancel.IsCancellationRequested))
                {
                    Checkpoint(1, done, trainer.Optimizer, State, announce: true);
                    return new JsonObject { ["interrupted"] = true };
                }
                if (done > 0 && CheckpointDue(1, done))
                    Checkpoint(1, done, trainer.Optimizer, State, announce: false);
                var t = grpo.Trainer;
                float lr = StepBudget.WarmupCosine(t.LearningRate, t.WarmupSteps, done, grpo.Steps);
                var m = trainer.Step(lr).ToDictionary(kv => kv.Key, kv => kv.Value);
                m["step"] = done + 1;
                log?.Log([new("phase", 1), .. m]);
                progress($"\rGRPO {Bar(done, grpo.Steps)} step {done + 1}  reward {m["reward"]:F2}  acc {m["rewards/accuracy/mean"]:F2}  fmt {m.GetValueOrDefault("rewards/format/mean", double.NaN):F2}  " +
                         $"len {m["completions/mean_length"]:F0}" + (m.TryGetValue("eval/accuracy", out var ea) ? $"  held-out {ea:P0}" : "") + "   ");
            }
            // The phase-end checkpoint: a stop during the final evaluation or outputs redoes only those.
            if (lastSaved != (1, done))
                Checkpoint(1, done, trainer.Optimizer, State, announce: false);
        }
        progress("\n");
        // The rest (final evaluation, outputs) is rank 0's alone.
        if (!root) return new JsonObject { ["rank"] = group.Rank };
        ArgumentNullException.ThrowIfNull(afterPretrain); // rank 0 evaluated after pre-training or resumed with it
        double rlMinutes = RlElapsed().TotalMinutes;
        timings["rl_s"] = rlMinutes * 60;
        timings["rl_steps"] = done;
        budget["rl"] = ReportBudget("GRPO", rlBudget, done, rlStop, progress);
        long evalStart = time.GetTimestamp();
        var afterRl = Evaluation.Run(policy, tokenizer, template, task, heldOut, greedy);
        var unseenAfter = unseen.Count > 0 ? Evaluation.Run(policy, tokenizer, template, task, unseen, greedy) : null;
        var sampledAfter = Sampled(heldOut);
        var unseenSampledAfter = Sampled(unseen);
        timings["eval_after_rl_s"] = time.GetElapsedTime(evalStart).TotalSeconds;
        progress($"after GRPO: held-out accuracy {afterRl.Accuracy:P1}, format {afterRl.FormatRate:P0}, think {afterRl.ThinkRate:P0}\n");
        progress(SampledLine(sampledAfter, unseenSampledAfter));

        // ---- outputs
        var bundleDir = Path.Combine(runDir, "model");
        model.Save(bundleDir);
        tokenizer.Save(bundleDir);
        template.Save(bundleDir);
        int hardest = task.MaxDifficulty, easiest = 1;
        double Acc(EvalReport r, int level) => r.ByDifficulty.TryGetValue(level, out var v) ? v.Accuracy : double.NaN;
        var thinkBefore = ThinkingTokens(tokenizer, heldOut, afterPretrain);
        var thinkAfter = ThinkingTokens(tokenizer, heldOut, afterRl);
        double Think(Dictionary<int, double> t, int level) => t.GetValueOrDefault(level, double.NaN);
        double Rate(EvalReport r, int level) => r.ByDifficulty.TryGetValue(level, out var v) ? v.ThinkRate : double.NaN;
        var checks = new JsonObject
        {
            ["hardest_level"] = hardest,
            ["hardest_accuracy_gain_points"] = 100 * (Acc(afterRl, hardest) - Acc(afterPretrain, hardest)),
            ["hardest_accuracy_gain_ok"] = 100 * (Acc(afterRl, hardest) - Acc(afterPretrain, hardest)) >= 10,
            ["format_reward_after_rl"] = afterRl.FormatRate,
            ["format_ok"] = afterRl.FormatRate >= 0.95,
            ["think_rate_easiest_vs_hardest"] = new JsonArray(Rate(afterRl, easiest), Rate(afterRl, hardest)),
            ["thinking_tokens_easiest_vs_hardest"] = new JsonArray(Think(thinkAfter, easiest), Think(thinkAfter, hardest)),
            // Thinking grows when either the share of thinking answers or the tokens spent thinking rise from the easiest level to the hardest.
            ["thinking_grows_with_difficulty"] = Rate(afterRl, hardest) > Rate(afterRl, easiest) || Think(thinkAfter, hardest) > Think(thinkAfter, easiest),
        };
        JsonObject ByLevel(Dictionary<int, double> t) => new(t.OrderBy(kv => kv.Key).Select(kv => KeyValuePair.Create(kv.Key.ToString(), (JsonNode?)kv.Value)));
        var afterPretrainJson = afterPretrain.ToJson();
        afterPretrainJson["thinking_tokens_by_difficulty"] = ByLevel(thinkBefore);
        var afterRlJson = afterRl.ToJson();
        afterRlJson["thinking_tokens_by_difficulty"] = ByLevel(thinkAfter);
        afterPretrainJson["mistakes"] = Mistakes(heldOut, afterPretrain, task);
        afterRlJson["mistakes"] = Mistakes(heldOut, afterRl, task);
        if (sampledBefore != null) afterPretrainJson["sampled"] = sampledBefore.DeepClone();
        if (sampledAfter != null)
        {
            afterRlJson["sampled"] = sampledAfter.DeepClone();
            // The targets of the default recipe: every level's sampled pass@1 and the greedy accuracy.
            var pass1 = sampledAfter["by_difficulty"]!.AsObject()
                .Select(kv => kv.Value!["pass@1"]!.GetValue<double>()).ToArray();
            checks["min_level_pass_at_1_after_rl"] = pass1.Min();
            checks["every_level_pass_at_1_ge_95"] = pass1.All(p => p >= 0.95);
        }
        checks["greedy_accuracy_ge_97"] = afterRl.Accuracy >= 0.97;
        // Behaviour of the held-out completions: thinking length correct vs incorrect, verification, self-correction.
        afterPretrainJson["behaviour"] = BehaviourAnalytics.ToJson(BehaviourAnalytics.Measure(heldOut,
            afterPretrain.Completions, task, tokenizer, template.ThinkPrefilled));
        afterRlJson["behaviour"] = BehaviourAnalytics.ToJson(BehaviourAnalytics.Measure(heldOut,
            afterRl.Completions, task, tokenizer, template.ThinkPrefilled));
        timings["total_s"] = time.GetElapsedTime(totalStart).TotalSeconds;
        // A resumed run that finished pre-training before the interruption reports only its GRPO budget.
        bool budgetHit = budget.Any(kv => kv.Value!["wall_limit_hit"]!.GetValue<bool>());
        var summary = new JsonObject
        {
            ["task"] = task.Name, ["variant"] = s.R1Zero ? "r1-zero" : "default", ["model"] = ModelSummary(config),
            ["pretrain_steps"] = s.PretrainSteps, ["rl_steps"] = done, ["rl_minutes"] = rlMinutes,
            ["budget_hit"] = budgetHit, ["budget"] = budget,
            ["after_pretraining"] = afterPretrainJson, ["after_rl"] = afterRlJson, ["checks"] = checks, ["timings"] = timings,
        };
        if (unseenAfter != null)
        {
            summary["unseen_level"] = UnseenLevelJson(unseen, unseenBefore, unseenAfter, task, tokenizer, template,
                unseenSampledBefore, unseenSampledAfter);
            if (unseenBefore != null)
            {
                double gain = 100 * (unseenAfter.Accuracy - unseenBefore.Accuracy);
                checks["unseen_level_gain_points"] = gain;
                checks["unseen_level_gain_ge_15"] = gain >= 15;
            }
            if (unseenSampledBefore != null && unseenSampledAfter != null)
                checks["unseen_level_pass_at_1_gain_points"] = 100 * (unseenSampledAfter["pass@1"]!.GetValue<double>()
                    - unseenSampledBefore["pass@1"]!.GetValue<double>());
            progress($"unseen level {LadderTask.UnseenLevel} (two-digit × two-digit): " +
                     $"{(unseenBefore == null ? "–" : unseenBefore.Accuracy.ToString("P1"))} → " +
                     $"{unseenAfter.Accuracy:P1}\n");
        }
        var samples = new StringBuilder("# The same held-out problems after pre-training and after GRPO (greedy)\n");
        for (int i = 0; i < Math.Min(heldOut.Count, 15); i++)
            samples.Append($"\n## {heldOut[i].Prompt} (level {heldOut[i].Difficulty}, answer {heldOut[i].Answer})\n\nafter pre-training:\n\n```\n{afterPretrain.Completions[i]}\n```\n\nafter GRPO:\n\n```\n{afterRl.Completions[i]}\n```\n");
        File.WriteAllText(Path.Combine(runDir, "samples.md"), samples.ToString());
        // summary.json whole before the report (which reads it); its presence marks the run finished, so the
        // checkpoints can go once the report is written (a crash in between leaves a finished run: `nr report`).
        AtomicFile.WriteAllText(summaryPath, summary.ToJsonString(SummaryJson));
        RunReport.Write(runDir);
        checkpoints.Clear();
        return summary;
    }

    /// <summary>
    /// The held-out problems a greedy evaluation got wrong, with their completions (where the recipe's errors come
    /// from: which level, which step of the trace).
    /// </summary>
    private static JsonArray Mistakes(IReadOnlyList<Problem> problems, EvalReport report, VerifiableTask task)
    {
        var accuracy = new AccuracyReward(task);
        var wrong = new JsonArray();
        for (int i = 0; i < problems.Count; i++)
        {
            var completion = report.Completions[i];
            if (accuracy.Score(new RewardInput(problems[i], completion, completion.Length, false)) == 1f) continue;
            wrong.Add(new JsonObject
            {
                ["level"] = problems[i].Difficulty, ["problem"] = problems[i].Prompt, ["answer"] = problems[i].Answer,
                ["completion"] = completion,
            });
        }
        return wrong;
    }

    /// <summary>The recipe's own settings (level 6 in GRPO, sampled evaluation, a model to start from).</summary>
    private static void CheckRecipe(TrainSettings s)
    {
        if (s.EvalSamples < 0) throw new ArgumentException($"--eval-samples must be ≥ 0, got {s.EvalSamples}");
        if (s.InitFrom != null && !Directory.Exists(s.InitFrom))
            throw new ArgumentException(
                $"--init-from: no model directory at {s.InitFrom} (give a run's model/ folder)");
        var task = TaskRegistry.Create(s.Task);
        RlDifficultyWeights(task, RlTask(task, s), s);
    }

    /// <summary>
    /// GRPO's task: the pre-training one, or for <see cref="TrainSettings.RlUnseenWeight"/> &gt; 0 the ladder that
    /// also draws level 6 (errors name the option).
    /// </summary>
    private static VerifiableTask RlTask(VerifiableTask task, TrainSettings s)
    {
        if (!(s.RlUnseenWeight >= 0) || double.IsInfinity(s.RlUnseenWeight))
            throw new ArgumentException($"--rl-unseen-weight must be a finite number ≥ 0, got {s.RlUnseenWeight}");
        if (s.RlUnseenWeight == 0) return task;
        if (task is not LadderTask)
            throw new ArgumentException($"--rl-unseen-weight needs the ladder task (its level 6), not '{task.Name}'");
        return new LadderTask(drawsUnseenLevel: true);
    }

    /// <summary>GRPO's level weights: the configured ones, plus level 6's when GRPO draws it.</summary>
    private static IReadOnlyList<double>? RlDifficultyWeights(VerifiableTask task, VerifiableTask rlTask,
        TrainSettings s)
    {
        var w = s.Grpo.Trainer.DifficultyWeights;
        if (ReferenceEquals(task, rlTask)) return w;
        if (w != null && w.Count != task.MaxDifficulty)
            throw new ArgumentException($"difficulty weights need {task.MaxDifficulty} values (levels 1–" +
                                        $"{task.MaxDifficulty}; level 6's is --rl-unseen-weight), got {w.Count}");
        return [.. w ?? Enumerable.Repeat(1.0, task.MaxDifficulty), s.RlUnseenWeight];
    }

    /// <summary>
    /// The model to start GRPO from (<see cref="TrainSettings.InitFrom"/>); it must fit the tokenizer.
    /// </summary>
    private static ICausalLM LoadInit(string directory, ICausalLMConfig config)
    {
        if (!Directory.Exists(directory))
            throw new ArgumentException($"--init-from: no model directory at {directory} (give a run's model/ folder)");
        var model = CausalLMRegistry.Load(directory);
        if (model.Config.VocabSize != config.VocabSize)
        {
            model.Dispose();
            throw new ArgumentException($"--init-from {directory}: its vocabulary has {model.Config.VocabSize} " +
                                        $"tokens, the character tokenizer of nr train {config.VocabSize}");
        }
        return model;
    }

    /// <summary>One printed line of the sampled evaluation: pass@1 by level, pass@K, and level 6's pass@1.</summary>
    private static string SampledLine(JsonObject? sampled, JsonObject? unseen)
    {
        if (sampled == null) return "";
        int k = sampled["samples"]!.GetValue<int>();
        var levels = string.Join(" ", sampled["by_difficulty"]!.AsObject()
            .Select(kv => $"{kv.Key}:{kv.Value!["pass@1"]!.GetValue<double>():P0}"));
        var line = $"  sampled ({k} per problem, T {sampled["temperature"]}, top-p {sampled["top_p"]}): pass@1 " +
                   $"{sampled["pass@1"]!.GetValue<double>():P1} (by level {levels}), " +
                   $"pass@{k} {sampled[$"pass@{k}"]!.GetValue<double>():P1}";
        if (unseen != null)
            line += $"; level {LadderTask.UnseenLevel} pass@1 {unseen["pass@1"]!.GetValue<double>():P1}, " +
                    $"pass@{k} {unseen[$"pass@{k}"]!.GetValue<double>():P1}";
        return line + "\n";
    }

    /// <summary>A stop every rank agrees on: the most severe any rank reached (wall clocks differ slightly).</summary>
    private static PhaseStop Agree(IProcessGroup group, PhaseStop local) =>
        group.Size == 1 ? local : (PhaseStop)group.MaxCount((long)local);

    /// <summary>True on every rank when it is on any (a Ctrl-C may reach the ranks at different steps).</summary>
    private static bool Agree(IProcessGroup group, bool local) =>
        group.Size == 1 ? local : group.MaxCount(local ? 1 : 0) > 0;

    /// <summary>
    /// Refuses a <see cref="TrainSettings.PretrainBatch"/> whose step cannot fit in memory
    /// (<see cref="TrainingMemory"/>), measuring the row length on a few of the first batch's examples.
    /// </summary>
    private static void CheckPretrainBatchFits(TrainSettings s)
    {
        var tokenizer = new CharTokenizer();
        var config = s.Model.ForTokenizer(tokenizer.VocabSize, tokenizer.EosId, tokenizer.BosId, tokenizer.PadId);
        var task = TaskRegistry.Create(s.Task);
        if (!ThinkTraces.Supports(task.Name)) return;
        var thinkChoice = new Generator(s.Seed + 99);
        double tokens = task.Generate(Split.Train, 8, s.Seed + 1000)
            .Select(p => ThinkTraces.Example(p, thinkChoice.NextDouble() < s.ThinkFraction))
            .Average(e =>
                tokenizer.Encode(s.Template.Format(e.Prompt)).Length + tokenizer.Encode(e.Completion).Length + 1.0);
        TrainingMemory.CheckBatchFits("--pretrain-batch", s.PretrainBatch, config, tokens);
    }

    /// <summary>
    /// The unseen level's results for summary.json: accuracy, format and think rates and behaviour before and after
    /// GRPO, and a few completions (the before side is absent in a run resumed from a checkpoint that lacked it).
    /// </summary>
    private static JsonObject UnseenLevelJson(IReadOnlyList<Problem> unseen, EvalReport? before, EvalReport after,
        VerifiableTask task, ITokenizer tokenizer, PromptTemplate template, JsonObject? sampledBefore,
        JsonObject? sampledAfter)
    {
        JsonObject Side(EvalReport r)
        {
            var o = r.ToJson();
            o.Remove("by_difficulty");
            var sampled = ReferenceEquals(r, before) ? sampledBefore : sampledAfter;
            if (sampled != null)
            {
                var copy = (JsonObject)sampled.DeepClone();
                copy.Remove("by_difficulty"); // one level: the overall scores are its
                o["sampled"] = copy;
            }
            o["behaviour"] = BehaviourAnalytics.ToJson(BehaviourAnalytics.Measure(unseen, r.Completions, task,
                tokenizer, template.ThinkPrefilled));
            return o;
        }
        var result = new JsonObject
        {
            ["level"] = LadderTask.UnseenLevel,
            ["description"] = "two-digit × two-digit, never drawn by pre-training or GRPO",
            ["n"] = unseen.Count,
        };
        if (before != null) result["after_pretraining"] = Side(before);
        result["after_rl"] = Side(after);
        if (before != null) result["accuracy_gain_points"] = 100 * (after.Accuracy - before.Accuracy);
        result["examples"] = new JsonArray(unseen.Take(5).Select((p, i) => (JsonNode)new JsonObject
        {
            ["problem"] = p.Prompt, ["answer"] = p.Answer,
            ["after_pretraining"] = before?.Completions[i], ["after_rl"] = after.Completions[i],
        }).ToArray());
        return result;
    }

    /// <summary>An evaluation as a checkpoint keeps it (every field, completions included).</summary>
    private static JsonObject EvalToJson(EvalReport r) => new()
    {
        ["accuracy"] = N(r.Accuracy), ["format_rate"] = N(r.FormatRate), ["think_rate"] = N(r.ThinkRate),
        ["mean_length"] = N(r.MeanLength),
        ["by_difficulty"] = new JsonArray(r.ByDifficulty.OrderBy(kv => kv.Key).Select(kv => (JsonNode)new JsonArray(
            kv.Key, N(kv.Value.Accuracy), N(kv.Value.FormatRate), N(kv.Value.ThinkRate), N(kv.Value.MeanLength),
            kv.Value.Count)).ToArray()),
        ["completions"] = new JsonArray(r.Completions.Select(c => (JsonNode)c).ToArray()),
    };

    // JSON has no NaN (a level without problems has NaN rates): null stands for it.
    private static JsonNode? N(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    private static EvalReport EvalFromJson(JsonObject o)
    {
        double D(JsonNode? n) => n?.GetValue<double>() ?? double.NaN;
        var by = o["by_difficulty"]!.AsArray().Select(n => n!.AsArray()).ToDictionary(
            a => a[0]!.GetValue<int>(), a => (D(a[1]), D(a[2]), D(a[3]), D(a[4]), a[5]!.GetValue<int>()));
        return new EvalReport(D(o["accuracy"]), D(o["format_rate"]), D(o["think_rate"]), D(o["mean_length"]), by)
        {
            Completions = o["completions"]!.AsArray().Select(n => n!.GetValue<string>()).ToArray(),
        };
    }

    /// <summary>
    /// How summary.json is written: indented, and NaN (a difficulty level with no held-out problem, e.g. with fewer
    /// held-out problems than levels) as the string "NaN" rather than an exception after the whole run.
    /// </summary>
    public static readonly JsonSerializerOptions SummaryJson = new()
    {
        WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>
    /// The budget of a finished phase for summary.json; a hit wall limit is also printed as a warning, since the
    /// phase then stopped before its schedule ended and the run is not comparable with a full one.
    /// </summary>
    private static JsonObject ReportBudget(string phase, StepBudget budget, int done, PhaseStop stop,
        Action<string> progress)
    {
        bool hit = stop == PhaseStop.WallLimit;
        if (hit)
            progress($"WARNING: {phase} hit its wall-time limit of {budget.MaxMinutes:0.##} min after {done} of " +
                     $"{budget.Steps} steps; its schedule did not finish, so this run's results are not those of " +
                     "its step budget (summary.json: budget_hit)\n");
        return new JsonObject
        {
            ["planned_steps"] = budget.Steps, ["steps"] = done, ["max_minutes"] = budget.MaxMinutes,
            ["wall_limit_hit"] = hit,
        };
    }

    /// <summary>Mean tokens inside &lt;think&gt;…&lt;/think&gt; (to the end when unclosed; 0 without thinking) by difficulty level.</summary>
    private static Dictionary<int, double> ThinkingTokens(CharTokenizer tokenizer, IReadOnlyList<Problem> problems, EvalReport report) =>
        problems.Select((p, i) => (p.Difficulty, Tokens: ThinkingTokens(tokenizer, report.Completions[i])))
            .GroupBy(r => r.Difficulty).ToDictionary(g => g.Key, g => g.Average(r => (double)r.Tokens));

    private static int ThinkingTokens(CharTokenizer tokenizer, string completion)
    {
        int start = completion.IndexOf(CharTokenizer.ThinkStart, StringComparison.Ordinal);
        if (start < 0) return 0;
        start += CharTokenizer.ThinkStart.Length;
        int end = completion.IndexOf(CharTokenizer.ThinkEnd, start, StringComparison.Ordinal);
        return tokenizer.Encode(end < 0 ? completion[start..] : completion[start..end]).Length;
    }

    /// <summary>The sizes summary.json reports: the shared ones, and the experts for DeepSeek-V3.</summary>
    private static JsonNode ModelSummary(ICausalLMConfig c) => c is DeepseekV3Config d
        ? JsonSerializer.SerializeToNode(new { d.HiddenSize, d.NumHiddenLayers, d.NRoutedExperts, d.NSharedExperts, d.NumExpertsPerTok, d.VocabSize })!
        : JsonSerializer.SerializeToNode(new { c.ModelType, c.HiddenSize, c.NumHiddenLayers, c.VocabSize })!;

    private static void CopyWeights(ICausalLM from, ICausalLM to)
    {
        var src = from.NamedParameters().ToDictionary(p => p.Name, p => p.Param);
        using var noGrad = Tensor.NoGrad();
        foreach (var (name, p) in to.NamedParameters()) p.CopyFrom_(src[name]);
        // Buffers too (the router's e_score_correction_bias moves during training).
        var bufs = from.NamedBuffers().ToDictionary(b => b.Name, b => b.Buffer);
        foreach (var (name, b) in to.NamedBuffers()) b.CopyFrom_(bufs[name]);
    }

    private static string Bar(int done, int total)
    {
        int width = 24, filled = total == 0 ? width : Math.Min(width, done * width / total);
        return "[" + new string('#', filled) + new string('.', width - filled) + "]";
    }
}
