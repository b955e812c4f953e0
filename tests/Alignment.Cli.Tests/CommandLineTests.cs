using Alignment.Native;
using System.Text.Json.Nodes;

namespace Alignment.Cli.Tests;

/// <summary>What the parser promises: help, rejected unknown options, TRL's names, and every loss option reachable.</summary>
public sealed class CommandLineTests : CliFixture
{
    public static TheoryData<string> Commands => new() { "sft", "reward", "dpo", "ppo", "grpo", "rloo", "generate", "chat", "evaluate", "evaluate-pairs", "export-gguf" };

    [Theory]
    [MemberData(nameof(Commands))]
    public void Every_command_prints_its_help_and_exits_zero(string command)
    {
        foreach (string flag in new[] { "--help", "-h" })
        {
            var (code, text, error) = Run(command, flag);
            Assert.True(code == 0, error);
            Assert.Contains($"align {command} [options]", text);
            Assert.Contains("--model", text);
        }
    }

    [Fact]
    public void Help_shows_the_defaults_of_the_options_records()
    {
        string help = Run("dpo", "--help").Output;
        Assert.Matches(@"--beta <beta>\s+.*\[default: 0\.1\]", help);          // PreferenceLossOptions.Beta
        Assert.Matches(@"--learning-rate.*\[default: 1E-06\]", help);           // PreferenceTrainer.DefaultOptions
        Assert.Matches(@"--learning-rate.*\[default: 2E-05\]", Run("sft", "--help").Output); // SftTrainer.DefaultOptions
    }

    [Fact]
    public void An_unknown_option_is_rejected_naming_the_closest_known_one()
    {
        var (code, _, error) = Run("dpo", "--model", ModelFolder(), "--dataset", Pairs(), "--output", Path.Combine(_models.Root, "o"), "--lerning-rate", "1e-4");
        Assert.Equal(2, code);
        Assert.Contains("'--lerning-rate'", error);
        Assert.Contains("Did you mean '--learning-rate'?", error);
        Assert.False(Directory.Exists(Path.Combine(_models.Root, "o")));
    }

    [Fact]
    public void An_unknown_key_in_a_config_file_is_rejected()
    {
        string config = Data("bad.json", new JsonObject { ["frobnicate"] = 3 }.ToJsonString());
        var (code, _, error) = Run("sft", "--model", ModelFolder(), "--dataset", Pairs(), "--output", Path.Combine(_models.Root, "o"), "--config", config);
        Assert.Equal(2, code);
        Assert.Contains("'frobnicate' is not an option of 'align sft'", error);
    }

    [Fact]
    public void Sft_takes_trls_flag_names_and_speaks_of_examples()
    {
        string output = Path.Combine(_models.Root, "sft");
        string data = Data("sft.jsonl", """{"prompt": "hello", "completion": " world"}""", """{"prompt": "the", "completion": " hello"}""",
            """{"prompt": "world", "completion": " the"}""");
        var (code, text, error) = Run("sft", "--model_name_or_path", ModelFolder(), "--dataset_name", data, "--output_dir", output,
            "--num_train_epochs", "2", "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "1", "--learning_rate", "1e-3",
            "--max_length", "16", "--save_steps", "2", "--eval-dataset", data, "--num_threads", $"{TorchRuntime.Threads}", "--gradient_checkpointing");

        Assert.True(code == 0, error);
        // embeddings and lm_head 300·32 each, 2 layers of q/o 32·32, k/v 32·16, gate/up/down 32·48 and two norms, a final norm
        const int parameters = 2 * 300 * 32 + 2 * (2 * 32 * 32 + 2 * 32 * 16 + 3 * 32 * 48 + 2 * 32) + 32;
        Assert.Contains($"training 6 steps of {parameters} trainable parameters on cpu with {TorchRuntime.Threads} threads", text);
        Assert.Equal(6, File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Count(l => !l.Contains("eval_"))); // 3 rows × 2 epochs, 1 per step
        Assert.True(Directory.Exists(Path.Combine(output, "checkpoint-2")));
        Assert.Contains("training data: 3 examples kept", text);
        Assert.DoesNotContain("pairs", text);
        Assert.Contains("eval at step 6: eval_loss", text); // evaluation results on screen, not only in metrics.jsonl
    }

    [Fact]
    public void Dpo_takes_loss_type_and_kto_speaks_of_examples()
    {
        string output = Path.Combine(_models.Root, "kto");
        string data = Data("kto.jsonl", """{"prompt": "hello", "completion": " world", "label": true}""",
            """{"prompt": "the", "completion": " hello", "label": false}""");
        var (code, text, error) = Run("dpo", "--model", ModelFolder(), "--dataset", data, "--output_dir", output, "--loss_type", "kto",
            "--max_steps", "2", "--per_device_train_batch_size", "2", "--learning_rate", "1e-3");
        Assert.True(code == 0, error);
        Assert.Contains("training data: 2 examples kept", text);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Length);
    }

    [Theory]
    [InlineData("--cpo-alpha", "-1", "cpo_alpha")]
    [InlineData("--discopop-tau", "0", "discopop_tau")]
    [InlineData("--ld-alpha", "2", "ld_alpha")]
    [InlineData("--f-alpha-divergence-coef", "2", "f_alpha_divergence_coef")]
    [InlineData("--desirable-weight", "0", "desirable_weight")]
    [InlineData("--undesirable-weight", "0", "undesirable_weight")]
    [InlineData("--rpo-alpha", "-1", "rpo_alpha")]
    [InlineData("--f-divergence-type", "banana", "banana")]
    [InlineData("--loss-weights", "1,abc", "--loss-weights: 'abc' is not a number")]
    public void Every_loss_option_reaches_the_loss(string option, string value, string named)
    {
        var (code, _, error) = Run("dpo", "--model", ModelFolder(), "--dataset", Pairs(), "--output", Path.Combine(_models.Root, "o"),
            "--loss", "sigmoid,sft", option, value);
        Assert.Equal(2, code);
        Assert.Contains(named, error);
    }

    [Fact]
    public void The_loss_flags_train_end_to_end()
    {
        string output = Path.Combine(_models.Root, "flags");
        var (code, _, error) = Run("dpo", "--model", ModelFolder(), "--dataset", Pairs(), "--output", output, "--max-steps", "1", "--batch-size", "3",
            "--use-weighting", "--f-divergence-type", "js_divergence", "--ld-alpha", "0.5", "--simpo-gamma", "0.3", "--cpo-alpha", "0.5");
        Assert.True(code == 0, error);
        string config = Data("flags.json", new JsonObject { ["reference_free"] = true, ["max_steps"] = 1, ["batch_size"] = 3, ["loss_type"] = new JsonArray("sigmoid") }.ToJsonString());
        var (fromConfig, _, configError) = Run("dpo", "--model", ModelFolder(), "--dataset", Pairs(), "--output", Path.Combine(_models.Root, "cfg"), "--config", config);
        Assert.True(fromConfig == 0, configError);
    }

    [Fact]
    public void Every_bad_training_option_is_named_at_once()
    {
        var (code, _, error) = Run("dpo", "--model", ModelFolder(), "--dataset", Pairs(), "--output", Path.Combine(_models.Root, "o"),
            "--warmup-ratio", "2", "--gradient-accumulation-steps", "0", "--max-grad-norm", "-1", "--bf16", "--fp16");
        Assert.Equal(2, code);
        Assert.Contains("warmup_ratio", error);
        Assert.Contains("gradient_accumulation_steps", error);
        Assert.Contains("max_grad_norm", error);
        Assert.Contains("bf16 and fp16 cannot both be set", error);
    }

    [Fact]
    public void A_thread_count_out_of_range_is_refused_before_any_work()
    {
        var (code, _, error) = Run("generate", "--model", ModelFolder(), "--prompt", "hello", "--num-threads", "0");
        Assert.Equal(2, code);
        Assert.Contains("--num-threads must be in [1, 1024], got 0", error);
    }

    [Fact]
    public void Sft_mixing_early_stopping_lora_targets_and_truncation_are_reachable()
    {
        string output = Path.Combine(_models.Root, "mix");
        string sft = Data("mix-sft.jsonl", """{"prompt": "hello", "completion": " world"}""");
        var (code, text, error) = Run("dpo", "--model", ModelFolder(), "--dataset", Pairs(), "--eval-dataset", Pairs(), "--output", output,
            "--sft-dataset", sft, "--sft-weight", "0.5", "--lora-rank", "2", "--lora-target-modules", "q_proj,v_proj", "--truncation-mode", "keep_start",
            "--max-steps", "10", "--batch-size", "3", "--eval-steps", "1", "--learning-rate", "1e-12",
            "--metric-for-best-model", "eval_loss", "--early-stopping-patience", "1");
        Assert.True(code == 0, error);
        Assert.Contains("(stopped early)", text); // a learning rate of 1e-12 leaves eval_loss where it was
        var lines = File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Contains(lines, l => l.ContainsKey("sft_loss"));
    }

    [Theory]
    [InlineData("dpo", "--sft-weight", "2", "share of SFT steps")]
    [InlineData("dpo", "--lora-target-modules", ",", "target_modules")]
    [InlineData("grpo", "--kl-target", "-1", "target KL")]
    public void Bad_values_of_the_other_options_fail_before_loading(string command, string option, string value, string named)
    {
        string[] extra = command == "dpo"
            ? ["--sft-dataset", Data("s.jsonl", """{"prompt": "a", "completion": " b"}"""), "--sft-mix-mode", "sequential", "--lora-rank", "2"]
            : ["--reward-model", "nowhere"];
        var (code, _, error) = Run([command, "--model", ModelFolder(), "--dataset", Pairs(), "--output", Path.Combine(_models.Root, "o"), .. extra, option, value]);
        Assert.Equal(2, code);
        Assert.Contains(named, error);
    }
}
