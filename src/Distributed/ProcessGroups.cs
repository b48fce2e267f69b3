namespace NativeReasoner.Distributed;

/// <summary>Which process group this process belongs to, from how it was started.</summary>
public static class ProcessGroups
{
    /// <summary>
    /// True when a launcher started this process as one rank of several: Open MPI's mpirun sets
    /// OMPI_COMM_WORLD_SIZE, PMIx launchers PMIX_RANK, MPICH's hydra PMI_SIZE.
    /// </summary>
    public static bool LaunchedByMpi =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") != null ||
        Environment.GetEnvironmentVariable("PMIX_RANK") != null ||
        Environment.GetEnvironmentVariable("PMI_SIZE") != null;

    /// <summary>
    /// The MPI world group under mpirun, else the one-process <see cref="LocalProcessGroup"/>. An MPI launch without
    /// a usable Open MPI is an error (running alone would silently repeat the job once per rank).
    /// </summary>
    public static IProcessGroup FromEnvironment() => LaunchedByMpi ? MpiProcessGroup.World() : new LocalProcessGroup();
}
