using NativeReasoner.Distributed;
using NativeReasoner.DistributedWorker;

// Usage: mpirun -np N nr-distributed-worker SCENARIO. Exit 0 when every check of the scenario held on this rank.
if (args.Length != 1 || !Scenarios.All.TryGetValue(args[0], out var scenario))
{
    Console.Error.WriteLine($"usage: nr-distributed-worker {string.Join("|", Scenarios.All.Keys)}");
    return 2;
}
IProcessGroup world;
try
{
    world = ProcessGroups.FromEnvironment();
}
catch (MpiUnavailableException e)
{
    Console.Error.WriteLine($"nr-distributed-worker: {e.Message}");
    return 3;
}
using var _ = world;
try
{
    var failures = scenario(world);
    foreach (var f in failures) Console.Error.WriteLine($"rank {world.Rank} of {world.Size}: FAIL {f}");
    world.Barrier();
    if (failures.Count == 0) Console.WriteLine($"rank {world.Rank} of {world.Size}: {args[0]} ok");
    return failures.Count == 0 ? 0 : 1;
}
catch (CollectiveTimeoutException e)
{
    world.Abort(e.Message);
    return 1;
}
