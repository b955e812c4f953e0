using System.Text.Json.Nodes;
using Alignment.Cli;
using Alignment.Tests.Models;
using Alignment.Tests.Tokenization;

namespace Alignment.Cli.Tests;

/// <summary>Tiny model folders, data files and an in-process <c>align</c> run, in a temp folder that the test deletes.</summary>
public abstract class CliFixture : IDisposable
{
    internal readonly TinyModels _models = new();
    internal readonly TinyTokenizers _tokenizers = new();

    public void Dispose()
    {
        _models.Dispose();
        _tokenizers.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>A model folder with weights, config and a ChatML tokenizer.</summary>
    protected string ModelFolder()
    {
        var json = TinyModels.ConfigJson();
        json["vocab_size"] = 300;
        string folder = _models.Folder("model", json);
        string tokenizer = _tokenizers.Folder("tok", chatTemplate: TinyTokenizers.ChatMlTemplate);
        foreach (string file in Directory.GetFiles(tokenizer))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        return folder;
    }

    protected string Data(string name, params string[] lines)
    {
        string path = Path.Combine(_models.Root, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    protected static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = AlignCli.Run(args, output, error, new StringReader(""));
        return (code, output.ToString(), error.ToString());
    }

    protected string Pairs() => Data("pairs.jsonl",
        """{"prompt": "hello", "chosen": " world", "rejected": " the"}""",
        """{"prompt": [{"role": "user", "content": "hello"}], "chosen": [{"role": "assistant", "content": "the world"}], "rejected": [{"role": "assistant", "content": "hello"}]}""",
        """{"prompt": "the", "chosen": " hello world", "rejected": " hello"}""");
}

public sealed class AlignCliTests : CliFixture
{
    [Fact]
    public void Dpo_runs_end_to_end_and_writes_an_hf_folder_with_metrics()
    {
        string model = ModelFolder(), output = Path.Combine(_models.Root, "out");
        var (code, text, error) = Run("dpo", "--model", model, "--dataset", Pairs(), "--output", output,
            "--loss", "ipo", "--beta", "0.2", "--max-steps", "3", "--batch-size", "2", "--learning-rate", "1e-3");

        Assert.True(code == 0, error);
        Assert.Contains("step 3/3", text);
        foreach (string file in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "metrics.jsonl" })
            Assert.True(File.Exists(Path.Combine(output, file)), file);
        var metrics = File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(3, metrics.Count);
        Assert.Contains("rewards/margins", metrics[0].Select(kv => kv.Key));

        var (generated, reply, generateError) = Run("generate", "--model", output, "--prompt", "hello", "--max-new-tokens", "4", "--temperature", "0");
        Assert.True(generated == 0, generateError);
        var (evaluated, table, _) = Run("evaluate-pairs", "--model", output, "--reference", model, "--dataset", Pairs());
        Assert.Equal(0, evaluated);
        Assert.Contains("rewards/accuracies", table);
    }

    [Fact]
    public void Lora_training_saves_the_merged_model_and_precomputed_reference_log_probs()
    {
        string model = ModelFolder(), output = Path.Combine(_models.Root, "lora");
        var (code, _, error) = Run("dpo", "--model", model, "--dataset", Pairs(), "--output", output, "--lora-rank", "2",
            "--max-steps", "2", "--batch-size", "3", "--learning-rate", "1e-2", "--precompute-ref-logps");
        Assert.True(code == 0, error);
        Assert.True(File.Exists(Path.Combine(output, "reference_logps.tsv")));
        Assert.DoesNotContain("lora", string.Join(",", Alignment.Models.SafeTensorsFile.Open(Path.Combine(output, "model.safetensors")).Entries.Keys));
    }

    [Fact]
    public void Sft_runs_from_a_config_file()
    {
        string model = ModelFolder(), output = Path.Combine(_models.Root, "sft");
        string data = Data("sft.jsonl", """{"prompt": "hello", "completion": " world"}""", """{"messages": [{"role": "user", "content": "the"}, {"role": "assistant", "content": "hello"}]}""");
        string config = Data("config.json", new JsonObject { ["max_steps"] = 2, ["batch_size"] = 2, ["learning_rate"] = 1e-3 }.ToJsonString());
        var (code, _, error) = Run("sft", "--model", model, "--dataset", data, "--output", output, "--config", config);
        Assert.True(code == 0, error);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Length);
    }

    [Theory]
    [InlineData("--loss", "dpop", "Unknown loss 'dpop'")]
    [InlineData("--beta", "-1", "beta must be")]
    [InlineData("--label-smoothing", "0.7", "label_smoothing")]
    [InlineData("--max-steps", "many", "--max-steps must be an integer")]
    public void Bad_configuration_fails_before_training_with_a_clear_message(string option, string value, string expected)
    {
        string output = Path.Combine(_models.Root, "never");
        var (code, _, error) = Run("dpo", "--model", ModelFolder(), "--dataset", Pairs(), "--output", output, option, value);
        Assert.Equal(2, code);
        Assert.Contains(expected, error);
        Assert.False(File.Exists(Path.Combine(output, "metrics.jsonl")));
    }

    [Fact]
    public void A_folder_without_a_chat_template_takes_one_by_name_or_by_path()
    {
        string model = ModelFolder();
        string config = Path.Combine(model, "tokenizer_config.json");
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        tokenizerConfig.Remove("chat_template");
        File.WriteAllText(config, tokenizerConfig.ToJsonString());
        string[] train = ["--dataset", Pairs(), "--max-steps", "1", "--batch-size", "3", "--learning-rate", "1e-3"];

        var (refused, _, why) = Run(["dpo", "--model", model, "--output", Path.Combine(_models.Root, "none"), .. train]);
        Assert.Equal(2, refused);
        Assert.Contains("--chat-template-path", why);

        var (byName, _, nameError) = Run(["dpo", "--model", model, "--output", Path.Combine(_models.Root, "named"), "--chat-template-path", "chatml", .. train]);
        Assert.True(byName == 0, nameError);
        string file = Data("chatml.jinja", TinyTokenizers.ChatMlTemplate);
        var (byPath, _, pathError) = Run(["dpo", "--model", model, "--output", Path.Combine(_models.Root, "file"), "--chat_template_path", file, .. train]);
        Assert.True(byPath == 0, pathError);

        var (unknown, _, unknownError) = Run(["dpo", "--model", model, "--output", Path.Combine(_models.Root, "x"), "--chat-template-path", "vicuna", .. train]);
        Assert.Equal(2, unknown);
        Assert.Contains("--chat-template-path", unknownError);
        Assert.Contains("chatml", unknownError);
    }

    [Fact]
    public void Cosine_with_min_lr_warm_up_steps_and_tr_dpo_are_reachable_from_the_command_line()
    {
        string model = ModelFolder(), output = Path.Combine(_models.Root, "trdpo");
        var (code, _, error) = Run("dpo", "--model", model, "--dataset", Pairs(), "--output", output, "--max-steps", "4", "--batch-size", "3",
            "--learning-rate", "1e-3", "--lr_scheduler_type", "cosine_with_min_lr", "--min-lr", "1e-4", "--warmup-steps", "2",
            "--sync-ref-model", "--ref-model-mixup-alpha", "1", "--ref-model-sync-steps", "1");
        Assert.True(code == 0, error);
        var metrics = File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        // Warm-up 0, ½ of the peak; then cosine from the peak (progress 0) towards the floor: ½(1 + cos(π/2))·0.9 + 0.1 at step 4.
        Assert.Equal([0, 5e-4, 1e-3, 1e-3 * (0.5 * 0.9 + 0.1)], metrics.Select(m => m["learning_rate"]!.GetValue<double>()), new Tolerance(1e-12));
        Assert.All(metrics.Skip(1), m => Assert.Equal(Math.Log(2), m["loss"]!.GetValue<double>(), 5));   // α = 1 every step: reference = policy

        var (refused, _, why) = Run("dpo", "--model", model, "--dataset", Pairs(), "--output", Path.Combine(_models.Root, "trdpo-lora"), "--lora-rank", "2", "--sync-ref-model");
        Assert.Equal(2, refused);
        Assert.Contains("--sync-ref-model", why);
    }

    sealed class Tolerance(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(double obj) => 0;
    }

    [Fact]
    public void A_missing_dataset_file_and_an_unknown_command_are_named()
    {
        string missing = Path.Combine(_models.Root, "nope.jsonl");
        var (code, _, error) = Run("dpo", "--model", ModelFolder(), "--dataset", missing, "--output", Path.Combine(_models.Root, "x"));
        Assert.Equal(2, code);
        Assert.Contains(missing, error);
        Assert.Contains("unknown command 'train'", Run("train").Error);
    }
}

public sealed class KillAndResumeTests : IDisposable
{
    readonly TinyModels _models = new();
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose()
    {
        _models.Dispose();
        _tokenizers.Dispose();
    }

    [Fact]
    public async Task A_killed_training_process_resumes_to_the_metrics_of_a_straight_run()
    {
        var json = TinyModels.ConfigJson();
        json["vocab_size"] = 300;
        string model = _models.Folder("model", json);
        foreach (string file in Directory.GetFiles(_tokenizers.Folder("tok")))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)), overwrite: true);
        string data = Path.Combine(_models.Root, "pairs.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 8).Select(i => $$"""{"prompt": "hello {{i}}", "chosen": " world", "rejected": " the"}"""));
        string[] Args(string output) => ["dpo", "--model", model, "--dataset", data, "--output", output, "--max-steps", "300",
            "--batch-size", "2", "--learning-rate", "1e-3", "--save-steps", "5", "--seed", "3"];

        string killed = Path.Combine(_models.Root, "killed");
        string cli = Path.Combine(AppContext.BaseDirectory, "align.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(cli);
        foreach (string arg in Args(killed))
            start.ArgumentList.Add(arg);
        using (var process = System.Diagnostics.Process.Start(start)!)
        {
            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (!Directory.Exists(Path.Combine(killed, "checkpoint-20")) && !process.HasExited && DateTime.UtcNow < deadline)
                await Task.Delay(20);
            Assert.False(process.HasExited, "the training process ended before it could be killed");
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        var resume = new StringWriter();
        Assert.Equal(0, AlignCli.Run([.. Args(killed), "--resume"], resume, resume));
        string straight = Path.Combine(_models.Root, "straight");
        Assert.Equal(0, AlignCli.Run(Args(straight), TextWriter.Null, TextWriter.Null));

        double[] Losses(string folder) => File.ReadAllLines(Path.Combine(folder, "metrics.jsonl"))
            .Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!["loss"]!.GetValue<double>()).ToArray();
        Assert.Equal(300, Losses(killed).Length);
        Assert.Equal(Losses(straight), Losses(killed));
    }
}

public sealed class RlCliTests : IDisposable
{
    readonly TinyModels _models = new();
    readonly TinyTokenizers _tokenizers = new();

    public void Dispose()
    {
        _models.Dispose();
        _tokenizers.Dispose();
    }

    [Theory]
    [InlineData("ppo")]
    [InlineData("grpo")]
    public void Rl_commands_run_end_to_end_against_a_reward_model_folder(string command)
    {
        var json = TinyModels.ConfigJson();
        json["vocab_size"] = 300;
        string model = _models.Folder("policy", json);
        string tokenizer = _tokenizers.Folder("tok", chatTemplate: TinyTokenizers.ChatMlTemplate);
        foreach (string file in Directory.GetFiles(tokenizer))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)), overwrite: true);
        string rewardFolder = Path.Combine(_models.Root, "rm");
        using (var reward = new Alignment.Models.RewardModel(TinyModels.Random(json, 3), new Alignment.Models.ScalarHead(32)))
            reward.SavePretrained(rewardFolder);
        foreach (string file in Directory.GetFiles(tokenizer))
            File.Copy(file, Path.Combine(rewardFolder, Path.GetFileName(file)), overwrite: true);
        string prompts = Path.Combine(_models.Root, "prompts.jsonl");
        File.WriteAllLines(prompts, ["""{"prompt": "hello"}""", """{"prompt": [{"role": "user", "content": "the world"}]}"""]);
        string output = Path.Combine(_models.Root, command);

        var text = new StringWriter();
        string[] grpo = command == "grpo"
            ? ["--loss-type", "dr_grpo", "--epsilon-high", "0.28", "--importance_sampling_level", "sequence", "--scale-rewards", "batch",
               "--mask-truncated-completions", "--num_iterations", "2"]
            : [];
        int code = AlignCli.Run([command, "--model", model, "--reward-model", rewardFolder, "--dataset", prompts, "--output", output,
            "--max-steps", "2", "--batch-size", "2", "--num-generations", "2", "--response-length", "4", "--learning-rate", "1e-3",
            "--missing-eos-penalty", "1.0", .. command == "grpo" ? grpo : ["--kl-coef", "0.05"]], text, text);

        Assert.True(code == 0, text.ToString());
        Assert.Contains("objective/scores", text.ToString());
        Assert.Contains("step 2/2 objective/rlhf_reward", text.ToString()); // the progress line shows a metric PPO has
        Assert.Equal(2, File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Length);
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
        if (command == "grpo")   // β defaults to 0 for GRPO, as in TRL: no reference runs and the KL reads 0
        {
            var last = JsonNode.Parse(File.ReadAllLines(Path.Combine(output, "metrics.jsonl"))[^1])!;
            Assert.NotNull(last["clip_ratio/high_mean"]);
            Assert.Equal(0, last["objective/kl"]!.GetValue<double>());
        }
    }

    [Fact]
    public void Grpo_takes_reward_functions_and_weights_from_a_config_file_including_a_users_own()
    {
        var json = TinyModels.ConfigJson();
        json["vocab_size"] = 300;
        string model = _models.Folder("policy", json);
        foreach (string file in Directory.GetFiles(_tokenizers.Folder("tok", chatTemplate: TinyTokenizers.ChatMlTemplate)))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)), overwrite: true);
        string prompts = Path.Combine(_models.Root, "math.jsonl");
        File.WriteAllLines(prompts, ["""{"prompt": "1+1?", "solution": "2"}""", """{"prompt": "2+3?", "solution": 5}""", """{"prompt": "4+4?", "solution": "8"}"""]);
        string own = $"{typeof(CompletionLength).Assembly.Location}:{typeof(CompletionLength).FullName}";
        string config = Path.Combine(_models.Root, "grpo.json");
        File.WriteAllText(config, new JsonObject
        {
            ["reward_funcs"] = new JsonArray("accuracy_reward", "think_format_reward", own), ["reward_weights"] = new JsonArray(1, 0.5, 0.25),
            ["loss_type"] = "dapo", ["epsilon_high"] = 0.28, ["max_steps"] = 2, ["batch_size"] = 2, ["num_generations"] = 2, ["response_length"] = 4,
        }.ToJsonString());
        string output = Path.Combine(_models.Root, "grpo-funcs");

        var text = new StringWriter();
        int code = AlignCli.Run(["grpo", "--model", model, "--dataset", prompts, "--output", output, "--config", config], text, text);

        Assert.True(code == 0, text.ToString());
        foreach (string line in File.ReadAllLines(Path.Combine(output, "metrics.jsonl")))
        {
            var metrics = JsonNode.Parse(line)!;
            double Mean(string name) => metrics[$"rewards/{name}/mean"]!.GetValue<double>();
            // No function abstains here, so the mean of the weighted sums is the weighted sum of the means.
            Assert.Equal(Mean("accuracy_reward") + 0.5 * Mean("think_format_reward") + 0.25 * Mean("completion_length"), metrics["reward"]!.GetValue<double>(), 9);
            Assert.InRange(Mean("completion_length"), 1, 4); // --response-length 4
        }
    }

    [Theory]
    [InlineData("--reward-funcs", "accuracy,telepathy", "unknown reward function 'telepathy'")]
    [InlineData("--reward-funcs", "missing.dll:A.B", "does not exist")]
    [InlineData("--reward-weights", "1,2", "--reward-weights has 2 values for 1 rewards (think_format_reward)")]
    [InlineData("--soft-punish-cache", "9", "--soft-punish-cache must be in [0, --response-length = 4]")]
    public void Bad_reward_functions_fail_before_loading(string option, string value, string expected)
    {
        var error = new StringWriter();
        string[] funcs = option == "--reward-funcs" ? [] : ["--reward-funcs", "think_format_reward"];
        Assert.Equal(2, AlignCli.Run(["grpo", "--model", "nowhere", "--dataset", "none.jsonl", "--output", "x", "--response-length", "4", .. funcs, option, value],
            TextWriter.Null, error));
        Assert.Contains(expected, error.ToString());
    }

    [Fact]
    public void Rl_commands_need_a_reward()
    {
        var error = new StringWriter();
        Assert.Equal(2, AlignCli.Run(["grpo", "--model", "nowhere", "--dataset", "none.jsonl", "--output", "x"], TextWriter.Null, error));
        Assert.Contains("--reward-model FOLDER, --reward-funcs NAMES, or both", error.ToString());
    }

    [Fact]
    public void Bad_rl_options_fail_before_loading()
    {
        var error = new StringWriter();
        Assert.Equal(2, AlignCli.Run(["grpo", "--model", "nowhere", "--reward-model", "nowhere", "--dataset", "none.jsonl", "--output", "x",
            "--num-generations", "1"], TextWriter.Null, error));
        Assert.Contains("num_generations", error.ToString());
    }
}

/// <summary>A user's own reward function, loaded by <c>--reward-funcs FILE.dll:Type</c>: the completion's token count.</summary>
public sealed class CompletionLength : Alignment.Scoring.IRewardFunction
{
    public string Name => "completion_length";

    public IReadOnlyList<double?> Score(IReadOnlyList<Alignment.Scoring.RewardSample> samples) => samples.Select(s => (double?)s.CompletionIds.Count).ToList();
}
