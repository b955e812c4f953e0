namespace Alignment.Distributed;

/// <summary>What started this process, read from the environment the launcher sets for each rank.</summary>
internal static class Launcher
{
    public enum Kind { None, OpenMpi, Hydra, Slurm }

    /// <summary>
    /// Open MPI's <c>mpirun</c> (<c>OMPI_COMM_WORLD_SIZE</c>), MPICH's Hydra <c>mpiexec</c> (<c>PMI_SIZE</c>; also Intel
    /// MPI), Slurm's <c>srun</c> (<c>SLURM_STEP_ID</c> with <c>SLURM_NTASKS</c>), or none.
    /// </summary>
    public static Kind Detect(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (environment("OMPI_COMM_WORLD_SIZE") is not null)
            return Kind.OpenMpi;
        if (environment("PMI_SIZE") is not null || environment("MPI_LOCALNRANKS") is not null)
            return Kind.Hydra;
        if (environment("SLURM_STEP_ID") is not null && environment("SLURM_NTASKS") is not null)
            return Kind.Slurm;
        return Kind.None;
    }

    /// <summary>This rank's index among the ranks on its machine, as the launcher reports it (0 when it does not).</summary>
    public static int LocalRank(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        foreach (string name in new[] { "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK" })
            if (int.TryParse(environment(name), out int value))
                return value;
        return 0;
    }
}
