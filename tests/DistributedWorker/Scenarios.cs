namespace NativeReasoner.DistributedWorker;

/// <summary>The scenarios by name; each returns the checks that failed on this rank.</summary>
internal static class Scenarios
{
    public static readonly Dictionary<string, Func<NativeReasoner.Distributed.IProcessGroup, List<string>>> All = new()
    {
        ["collectives"] = CollectiveChecks.Run,
        ["data-parallel"] = DataParallelCheck.Run,
        ["distributed-grpo"] = DistributedGrpoCheck.Run,
        ["grpo-volume"] = GrpoVolume.Run,
        ["all-to-all-autograd"] = AllToAllAutogradCheck.Run,
        ["expert-parallel"] = ExpertParallelCheck.Run,
        ["expert-parallel-volume"] = ExpertParallelVolume.Run,
        ["hang"] = FaultScenarios.Hang,
        ["die"] = FaultScenarios.Die,
    };
}
