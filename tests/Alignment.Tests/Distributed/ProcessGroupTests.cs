using Alignment.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Tests.Distributed;

public sealed class ProcessGroupTests
{
    static Func<string, string?> Environment(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void The_launcher_is_told_from_the_variables_each_one_sets()
    {
        Assert.Equal(Launcher.Kind.None, Launcher.Detect(Environment()));
        Assert.Equal(Launcher.Kind.OpenMpi, Launcher.Detect(Environment(("OMPI_COMM_WORLD_SIZE", "2"), ("PMIX_RANK", "0"))));
        Assert.Equal(Launcher.Kind.Hydra, Launcher.Detect(Environment(("PMI_SIZE", "2"), ("PMI_RANK", "1"))));
        Assert.Equal(Launcher.Kind.Slurm, Launcher.Detect(Environment(("SLURM_STEP_ID", "0"), ("SLURM_NTASKS", "4"))));
        Assert.Equal(Launcher.Kind.None, Launcher.Detect(Environment(("SLURM_NTASKS", "4")))); // an sbatch script, not srun
        Assert.Equal(3, Launcher.LocalRank(Environment(("OMPI_COMM_WORLD_LOCAL_RANK", "3"))));
        Assert.Equal(1, Launcher.LocalRank(Environment(("MPI_LOCALRANKID", "1"))));
        Assert.Equal(0, Launcher.LocalRank(Environment()));
    }

    [Fact]
    public void The_single_process_group_is_rank_0_of_1_and_leaves_tensors_as_they_are()
    {
        using var scope = NewDisposeScope();
        IProcessGroup group = ProcessGroup.For(DistributedBackend.None);
        Assert.Same(ProcessGroup.Single, group);
        Assert.Equal((0, 1, 0), (group.Rank, group.WorldSize, group.LocalRank));
        Tensor values = tensor(new[] { 1.5f, -2f });
        group.AllReduce(values);
        group.AllReduceMean(values);
        group.Broadcast(values);
        Assert.Equal([1.5f, -2f], values.data<float>().ToArray());
        Assert.Equal([1.5f, -2f], group.AllGather(values).data<float>().ToArray());
        Assert.Equal([3.0, 4.0], group.AllReduceSum(3, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => group.Broadcast(values, root: 1));
    }

    [Fact]
    public void Auto_is_one_process_without_a_launcher()
    {
        Assert.False(ProcessGroup.LaunchedByMpi); // the test runner is not started by mpirun
        Assert.Same(ProcessGroup.Single, ProcessGroup.For(DistributedBackend.Auto));
    }

    [Fact]
    public void An_mpi_library_that_does_not_load_is_named_with_how_to_install_one()
    {
        string missing = Path.Combine(Path.GetTempPath(), "no-such-libmpi.so");
        var error = Assert.Throws<DllNotFoundException>(() => MpiLibrary.Load(missing));
        Assert.Contains(missing, error.Message);
        Assert.Contains("apt-get install openmpi-bin", error.Message);
    }

    [Fact]
    public void One_process_scales_gradients_by_its_factor_and_leaves_missing_ones_missing()
    {
        using var scope = NewDisposeScope();
        var a = new TorchSharp.Modules.Parameter(zeros(3));
        var b = new TorchSharp.Modules.Parameter(zeros(2));
        a.grad = tensor(new[] { 1f, 2f, 3f });
        GradientAverage.Reduce(ProcessGroup.Single, [a, b], 0.25, 1 << 20);
        Assert.Equal([0.25f, 0.5f, 0.75f], a.grad!.data<float>().ToArray());
        Assert.Null(b.grad);
    }
}
