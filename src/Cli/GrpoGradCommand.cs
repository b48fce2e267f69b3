using System.CommandLine;
using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.RL;

namespace NativeReasoner.Cli;

/// <summary>`nr grpo-grad`: one GRPO loss and its weight gradients on a checkpoint (see <see cref="GrpoGrad"/>).</summary>
public static class GrpoGradCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Checkpoint directory (config.json + safetensors).", Required = true };
        var input = new Option<string>("--input") { Description = "Safetensors: input_ids, completion_mask, rewards, old_per_token_logps, ref_per_token_logps.", Required = true };
        var output = new Option<string>("--out") { Description = "Safetensors to write loss, per_token_logps, advantages, grad.<name>.", Required = true };
        var lossType = new Option<string>("--loss-type") { Description = "grpo | bnpo | dr_grpo | dapo.", DefaultValueFactory = _ => "dapo" };
        var beta = new Option<float>("--beta") { Description = "KL coefficient (k3 estimator).", DefaultValueFactory = _ => 0f };
        var epsLow = new Option<float>("--epsilon-low") { Description = "Lower clip range.", DefaultValueFactory = _ => 0.2f };
        var epsHigh = new Option<float?>("--epsilon-high") { Description = "Upper clip range (default: epsilon-low)." };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature the log-probs are taken at.", DefaultValueFactory = _ => 1f };
        var scale = new Option<string>("--scale-rewards") { Description = "group | batch | none.", DefaultValueFactory = _ => "group" };
        var g = new Option<int>("--num-generations") { Description = "G: completions per prompt (rows of one group are contiguous).", DefaultValueFactory = _ => 8 };
        var maxLen = new Option<int>("--max-completion-length") { Description = "L_max for dr_grpo (default: T).", DefaultValueFactory = _ => 0 };
        var command = new Command("grpo-grad", "Compute a GRPO loss and its weight gradients for given completions.")
            { model, input, output, lossType, beta, epsLow, epsHigh, temperature, scale, g, maxLen };
        command.SetAction(parse =>
        {
            try
            {
                var settings = new GrpoGrad.Settings(
                    new GrpoLossOptions
                    {
                        LossType = GrpoNames.ParseLossType(parse.GetValue(lossType)!),
                        Beta = parse.GetValue(beta),
                        EpsilonLow = parse.GetValue(epsLow),
                        EpsilonHigh = parse.GetValue(epsHigh),
                        MaxCompletionLength = parse.GetValue(maxLen),
                    },
                    parse.GetValue(temperature), GrpoNames.ParseScaleRewards(parse.GetValue(scale)!), parse.GetValue(g));
                GrpoGrad.Run(parse.GetValue(model)!, parse.GetValue(input)!, parse.GetValue(output)!, settings);
                return 0;
            }
            catch (Exception e) when (e is ModelConfigException or CheckpointMismatchException or SafetensorsException
                                      or ArgumentException or IOException or NotSupportedException)
            {
                Console.Error.WriteLine($"nr grpo-grad: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
