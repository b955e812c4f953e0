using System.Diagnostics;
using System.Text.Json.Nodes;
using Alignment.Models;
using Alignment.Tests.Models;
using Alignment.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Alignment.Cli.Tests;

/// <summary>
/// <c>mpirun -np 2 align …</c> with Open MPI and with MPICH, against the same run in one process: two processes of
/// per-device batch 4 must train exactly what one process of batch 8 trains.
/// </summary>
[Collection("MPI")]
public sealed class DistributedTrainingTests(ITestOutputHelper log) : CliFixture
{
    const double Tolerance = 1e-5;

    public static TheoryData<string, string> Cases()
    {
        var cases = new TheoryData<string, string>();
        foreach (string mpi in MpiRuns.Kinds)
            foreach (string trainer in new[] { "dpo", "kto", "sft", "grpo", "reward", "ppo", "rloo" })
                cases.Add(mpi, trainer);
        return cases;
    }

    [MpiTheory]
    [MemberData(nameof(Cases))]
    public void Two_processes_of_batch_4_train_what_one_process_of_batch_8_trains(string mpi, string trainer)
    {
        // float64: float32's rounding (batches of 8 and 4 round differently) would hide nothing but blur the comparison
        string[] common = [.. Arguments(trainer), "--max-steps", "10", "--seed", "5", "--num-threads", "1", "--dtype", "float64"];
        string alone = Path.Combine(_models.Root, "alone"), two = Path.Combine(_models.Root, "two");

        var (aloneCode, aloneText) = MpiRuns.Alone([.. common, "--output", alone, "--batch-size", "8", "--distributed", "none"]);
        Assert.True(aloneCode == 0, aloneText);
        var (program, args) = MpiRuns.Command(mpi, 2, [.. common, "--output", two, "--batch-size", "4"]);
        var (twoCode, twoText) = MpiRuns.Run(program, args);
        Assert.True(twoCode == 0, twoText);

        Assert.Contains("data-parallel over 2 processes", twoText);
        Assert.Single(twoText.Split('\n'), l => l.Contains("step 10/10", StringComparison.Ordinal)); // rank 0 alone prints
        AssertSameMetrics(MpiRuns.Metrics(alone), MpiRuns.Metrics(two));
        AssertSameWeights(Path.Combine(alone, "model.safetensors"), Path.Combine(two, "model.safetensors"));
    }

    public static TheoryData<string> Launchers() => [.. MpiRuns.Kinds];

    [MpiTheory]
    [MemberData(nameof(Launchers))]
    public void Killing_one_process_ends_the_job_and_two_processes_resume_to_the_straight_run(string mpi)
    {
        string[] common = [.. Arguments("sft"), "--max-steps", "120", "--save-steps", "4", "--seed", "5", "--num-threads", "1", "--dtype", "float64", "--batch-size", "4"];
        string straight = Path.Combine(_models.Root, "straight"), killed = Path.Combine(_models.Root, "killed");
        var (program, args) = MpiRuns.Command(mpi, 2, [.. common, "--output", straight]);
        var (code, text) = MpiRuns.Run(program, args);
        Assert.True(code == 0, text);

        (program, args) = MpiRuns.Command(mpi, 2, [.. common, "--output", killed]);
        using (Process job = MpiRuns.Start(program, args))
        {
            job.OutputDataReceived += (_, _) => { };
            job.ErrorDataReceived += (_, _) => { };
            job.BeginOutputReadLine();
            job.BeginErrorReadLine();
            string metrics = Path.Combine(killed, "metrics.jsonl");
            var waiting = Stopwatch.StartNew();
            while (!(File.Exists(metrics) && File.ReadAllLines(metrics).Length >= 10))
            {
                Assert.True(waiting.Elapsed < TimeSpan.FromSeconds(90) && !job.HasExited, "the run did not reach step 10");
                Thread.Sleep(10);
            }
            Dictionary<int, int> ranks = MpiRuns.Ranks(killed);
            Assert.True(ranks.ContainsKey(1), $"rank 1 not found among {string.Join(", ", ranks)}");
            var clock = Stopwatch.StartNew();
            Process.GetProcessById(ranks[1]).Kill(); // SIGKILL
            bool ended = job.WaitForExit(TimeSpan.FromSeconds(60));
            if (!ended)
                job.Kill(entireProcessTree: true);
            Assert.True(ended, "the job still runs 60 s after one of its processes was killed");
            log.WriteLine($"{mpi}: the job ended {clock.Elapsed.TotalSeconds:F2} s after rank 1 was killed, exit code {job.ExitCode}");
            Assert.NotEqual(0, job.ExitCode);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60));
            Assert.True(File.ReadAllLines(metrics).Length < 120, "the run ended before the kill");
        }

        (program, args) = MpiRuns.Command(mpi, 2, [.. common, "--output", killed, "--resume"]);
        (code, text) = MpiRuns.Run(program, args);
        Assert.True(code == 0, text);
        AssertSameMetrics(MpiRuns.Metrics(straight), MpiRuns.Metrics(killed), tolerance: 0);
    }

    [MpiTheory]
    [MemberData(nameof(Launchers))]
    public void A_process_that_fails_alone_ends_the_whole_job(string mpi)
    {
        // Rank 0 alone takes the output folder's lock: held here, it fails while rank 1 goes on to wait for it.
        string output = Path.Combine(_models.Root, "locked");
        using FileStream held = OutputFolderLock.Acquire(output);
        var (program, args) = MpiRuns.Command(mpi, 2, [.. Arguments("sft"), "--max-steps", "2", "--batch-size", "2", "--output", output, "--num-threads", "1"]);
        var clock = Stopwatch.StartNew();
        var (code, text) = MpiRuns.Run(program, args, TimeSpan.FromSeconds(90));
        Assert.NotEqual(0, code);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed}");
        Assert.Contains("process 0 of 2 failed", text);
        log.WriteLine($"{mpi}: the job ended {clock.Elapsed.TotalSeconds:F2} s after it started, exit code {code}");
    }

    /// <summary>The command line of each trainer on this test's tiny model and data, without output and batch size.</summary>
    string[] Arguments(string trainer)
    {
        string model = ModelFolder();
        string[] words = ["hello", "world", "the", "a", "red", "blue", "cat", "dog"];
        string Phrase(int i, int length) => string.Join(' ', Enumerable.Range(0, length).Select(k => words[(i * 7 + k * 3) % words.Length]));
        string[] training = ["--learning-rate", "1e-3", "--model", model];
        switch (trainer)
        {
            case "dpo":
                return ["dpo", .. training, "--precompute-ref-logps", "--dataset", Data("pairs.jsonl", [.. Enumerable.Range(0, 16).Select(i =>
                    new JsonObject { ["prompt"] = Phrase(i, 2 + i % 3), ["chosen"] = " " + Phrase(i + 1, 1 + i % 4), ["rejected"] = " " + Phrase(i + 5, 2 + i % 2) }.ToJsonString())])];
            case "kto":
                return ["dpo", .. training, "--loss_type", "kto", "--dataset", Data("kto.jsonl", [.. Enumerable.Range(0, 16).Select(i =>
                    new JsonObject { ["prompt"] = Phrase(i, 2 + i % 3), ["completion"] = " " + Phrase(i + 3, 1 + i % 4), ["label"] = i % 3 != 0 }.ToJsonString())])];
            case "reward":
                return ["reward", .. training, "--dataset", Data("pairs.jsonl", [.. Enumerable.Range(0, 16).Select(i =>
                    new JsonObject { ["prompt"] = Phrase(i, 2 + i % 3), ["chosen"] = " " + Phrase(i + 1, 1 + i % 4), ["rejected"] = " " + Phrase(i + 5, 2 + i % 2) }.ToJsonString())])];
            case "sft":
                return ["sft", .. training, "--dataset", Data("sft.jsonl", [.. Enumerable.Range(0, 16).Select(i =>
                    new JsonObject { ["prompt"] = Phrase(i, 2 + i % 3), ["completion"] = " " + Phrase(i + 2, 1 + i % 5) }.ToJsonString())])];
            default:
                string reward = Path.Combine(_models.Root, "reward");
                var json = TinyModels.ConfigJson();
                json["vocab_size"] = 300;
                using (var head = new RewardModel(TinyModels.Random(json, 3), new ScalarHead(32, generator: new Generator(11))))
                    head.SavePretrained(reward);
                foreach (string file in Directory.GetFiles(model, "tokenizer*"))
                    File.Copy(file, Path.Combine(reward, Path.GetFileName(file)), overwrite: true);
                return [trainer, .. training, "--reward-model", reward, .. trainer == "ppo" ? Array.Empty<string>() : ["--num-generations", "2"],
                    "--response-length", "4", "--kl-coef", "0.05",
                    "--dataset", Data("prompts.jsonl", [.. Enumerable.Range(0, 16).Select(i => new JsonObject { ["prompt"] = Phrase(i, 2 + i % 3) }.ToJsonString())])];
        }
    }

    /// <summary>Every logged value of every step within 1e-5 relative (a time is not a result: tokens_per_second is left out).</summary>
    internal static void AssertSameMetrics(List<Dictionary<string, double>> expected, List<Dictionary<string, double>> actual, double tolerance = Tolerance)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Keys.Order(), actual[i].Keys.Order());
            foreach (var (name, value) in expected[i])
            {
                if (name == "tokens_per_second")
                    continue;
                double other = actual[i][name];
                Assert.True(Math.Abs(value - other) <= tolerance * Math.Max(Math.Abs(value), Math.Abs(other)) + 1e-9,
                    $"step {i + 1} {name}: one process {value:R}, two processes {other:R}");
            }
        }
    }

    static void AssertSameWeights(string expectedFile, string actualFile)
    {
        using var scope = NewDisposeScope();
        using SafeTensorsFile expected = SafeTensorsFile.Open(expectedFile), actual = SafeTensorsFile.Open(actualFile);
        Assert.Equal(expected.Entries.Keys.Order(), actual.Entries.Keys.Order());
        foreach (string name in expected.Entries.Keys)
        {
            // Relative to the tensor's scale: an element near zero carries AdamW's float32-moment rounding, not a difference in training.
            Tensor a = expected.Read(name).to_type(ScalarType.Float64), b = actual.Read(name).to_type(ScalarType.Float64);
            double difference = a.sub(b).abs().max().item<double>(), scale = a.abs().max().maximum(b.abs().max()).item<double>();
            Assert.True(difference <= Tolerance * scale, $"{name}: largest difference {difference:G3}, more than {Tolerance} × its largest weight {scale:G3}");
        }
    }
}
