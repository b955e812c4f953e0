using Alignment.Data;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Training;

namespace Alignment.Tests.Training;

/// <summary>The thread count is process-wide: these tests run alone, so that no other test computes under a changed setting.</summary>
[Collection(nameof(MemoryMeasurement))]
public sealed class ThreadsTests
{
    sealed class ThreadsSeen : ITrainingCallback
    {
        public int Threads;
        public void OnLog(TrainingProgress progress) => Threads = Alignment.Native.TorchRuntime.Threads;
    }

    [Fact]
    public void Num_threads_is_set_for_the_process_and_reported_in_the_first_log_line()
    {
        int before = Alignment.Native.TorchRuntime.Threads;
        try
        {
            using var policy = new PolicyModel(TinyModels.Random(TinyModels.ConfigJson()));
            var logger = new RecordingLogger();
            var seen = new ThreadsSeen();
            var completions = PreferenceTrainerTests.Pairs(4).Select(p => new TokenizedCompletion(p.Prompt, p.Chosen, true, p.Source)).ToList();
            new SftTrainer(policy, new TrainingOptions { BatchSize = 2, MaxSteps = 2, NumThreads = 1 }, logger: logger, callbacks: [seen]).Train(completions);
            Assert.Equal(1, seen.Threads);
            // 2·64·32 embeddings and lm_head; 2 layers of q/o 32·32, k/v 32·16, gate/up/down 32·48, two norms; a final norm
            Assert.Equal("training 2 steps of 19616 trainable parameters on cpu with 1 threads; optimizer state 0 MiB", logger.Messages[0]);
            Assert.Contains("num_threads", Assert.Throws<ArgumentException>(() => new TrainingOptions { NumThreads = 0 }.Validate()).Message);
        }
        finally
        {
            Alignment.Native.TorchRuntime.SetThreads(before);
        }
    }
}
