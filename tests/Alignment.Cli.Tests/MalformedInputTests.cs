using System.Text.Json.Nodes;

namespace Alignment.Cli.Tests;

/// <summary>
/// Inputs that used to abort the process (exit 134) or eat the machine's memory: each is now exit 2 with the place
/// named, and nothing is written to the output folder.
/// </summary>
public sealed class MalformedInputTests : CliFixture
{
    string Output => Path.Combine(_models.Root, "out");

    void AssertRefused((int Code, string Output, string Error) run, params string[] named)
    {
        Assert.True(run.Code == 2, $"exit {run.Code}: {run.Error}");
        foreach (string text in named)
            Assert.Contains(text, run.Error);
        Assert.False(File.Exists(Path.Combine(Output, "metrics.jsonl")));
    }

    /// <summary>A model folder whose config.json has <paramref name="key"/> set to <paramref name="value"/>.</summary>
    string ModelWith(string key, JsonNode? value)
    {
        string folder = ModelFolder();
        string path = Path.Combine(folder, "config.json");
        JsonObject config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        config[key] = value;
        File.WriteAllText(path, config.ToJsonString());
        return folder;
    }

    [Fact]
    public void A_pretokenized_id_outside_the_vocabulary_is_named_with_its_line()
    {
        string data = Data("ids.jsonl", """{"prompt_input_ids": [1, 5], "chosen_input_ids": [10, 2], "rejected_input_ids": [11, 2]}""",
            """{"prompt_input_ids": [1, 99999], "chosen_input_ids": [10, 2], "rejected_input_ids": [11, 2]}""");
        AssertRefused(Run("dpo", "--model", ModelFolder(), "--dataset", data, "--output", Output), "ids.jsonl:2", "99999", "vocabulary");
    }

    [Fact]
    public void A_tokenizer_whose_ids_pass_the_models_vocabulary_is_named()
    {
        AssertRefused(Run("dpo", "--model", ModelWith("vocab_size", 260), "--dataset", Pairs(), "--output", Output), "tokenizer of", "vocab_size");
    }

    [Theory]
    [InlineData("num_key_value_heads", "0", "num_key_value_heads")]
    [InlineData("max_position_embeddings", "0", "max_position_embeddings")]
    [InlineData("rms_norm_eps", "\"abc\"", "rms_norm_eps")]
    [InlineData("eos_token_id", "\"abc\"", "eos_token_id")]
    [InlineData("pad_token_id", "-3", "pad_token_id")]
    [InlineData("hidden_size", "1000000000", "more than this machine's")]
    [InlineData("num_hidden_layers", "1000000", "more than this machine's")]
    [InlineData("vocab_size", "2000000000", "more than this machine's")]
    public void A_config_that_cannot_be_built_is_named_with_its_field(string key, string value, string named)
    {
        string data = Data("sft.jsonl", """{"prompt": "hello", "completion": " world"}""");
        AssertRefused(Run("sft", "--model", ModelWith(key, JsonNode.Parse(value)), "--dataset", data, "--output", Output), "config.json", named);
    }

    [Theory]
    [InlineData("--learning-rate", "1e300", "learning_rate")]
    [InlineData("--batch-size", "-4", "per_device_train_batch_size")]
    [InlineData("--max-length", "1", "max_length")]
    [InlineData("--device", "banana", "--device 'banana'")]
    public void An_option_out_of_range_is_named(string option, string value, string named)
    {
        AssertRefused(Run("dpo", "--model", ModelFolder(), "--dataset", Pairs(), "--output", Output, option, value), named);
    }

    [Fact]
    public void Sequences_past_the_models_positions_are_refused_not_allocated()
    {
        string longRow = new string('a', 400); // the tiny model takes 128 positions; max_length defaults to 1024
        string data = Data("long.jsonl", $$"""{"prompt": "hello", "chosen": "{{longRow}}", "rejected": " the"}""");
        AssertRefused(Run("dpo", "--model", ModelFolder(), "--dataset", data, "--output", Output), "max_position_embeddings");
        var generate = Run("generate", "--model", ModelFolder(), "--prompt", "hello", "--max-new-tokens", "100000");
        Assert.Equal(2, generate.Code);
        Assert.Contains("max_position_embeddings", generate.Error);
    }

    [Fact]
    public void Invalid_utf8_is_an_error_naming_the_line_or_a_reported_skip()
    {
        string path = Path.Combine(_models.Root, "latin1.jsonl");
        var bytes = new List<byte>();
        bytes.AddRange(System.Text.Encoding.UTF8.GetBytes("""{"prompt": "hello", "chosen": " world", "rejected": " the"}""" + "\n"));
        bytes.AddRange(System.Text.Encoding.UTF8.GetBytes("{\"prompt\": \"caf"));
        bytes.Add(0xE9); // Latin-1 é: not UTF-8
        bytes.AddRange(System.Text.Encoding.UTF8.GetBytes("\", \"chosen\": \" a\", \"rejected\": \" b\"}\n"));
        bytes.AddRange(System.Text.Encoding.UTF8.GetBytes("""{"prompt": "the", "chosen": " hello", "rejected": " world"}""" + "\n"));
        File.WriteAllBytes(path, bytes.ToArray());

        AssertRefused(Run("dpo", "--model", ModelFolder(), "--dataset", path, "--output", Output), "latin1.jsonl:2", "UTF-8");
        var (code, text, error) = Run("dpo", "--model", ModelFolder(), "--dataset", path, "--output", Output, "--skip-bad-rows", "--max-steps", "1");
        Assert.True(code == 0, error);
        Assert.Contains("1 skipped", text);             // the data report reaches the user before training
        Assert.Contains("latin1.jsonl:2", text);
    }

    [Fact]
    public void A_dataset_with_no_preference_or_no_example_is_refused_naming_the_file()
    {
        string same = Data("same.jsonl", """{"prompt": "hello", "chosen": " world", "rejected": " world"}""", """{"prompt": "the", "chosen": " a", "rejected": " a"}""");
        AssertRefused(Run("dpo", "--model", ModelFolder(), "--dataset", same, "--output", Output), "same.jsonl", "chosen completion equals the rejected");
        string empty = Data("empty.jsonl", "", "   ");
        AssertRefused(Run("sft", "--model", ModelFolder(), "--dataset", empty, "--output", Output), "empty.jsonl", "no usable example");
    }

    /// <summary>Rewrites model.safetensors' header with <paramref name="edit"/>, keeping its length (padded with spaces).</summary>
    static void EditHeader(string folder, Action<JsonObject> edit)
    {
        string path = Path.Combine(folder, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(path);
        int length = (int)BitConverter.ToUInt64(bytes, 0);
        JsonObject header = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(bytes, 8, length))!.AsObject();
        edit(header);
        byte[] edited = System.Text.Encoding.UTF8.GetBytes(header.ToJsonString().PadRight(length));
        Assert.Equal(length, edited.Length);
        edited.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public void Weights_that_share_bytes_or_hold_nan_are_named()
    {
        string overlapping = ModelFolder();
        EditHeader(overlapping, header =>
        {
            var norms = header.Where(kv => kv.Key.EndsWith("input_layernorm.weight", StringComparison.Ordinal)).Select(kv => kv.Value!.AsObject()).ToList();
            norms[1]["data_offsets"] = norms[0]["data_offsets"]!.DeepClone();
        });
        AssertRefused(Run("dpo", "--model", overlapping, "--dataset", Pairs(), "--output", Output), "model.safetensors", "share bytes");

        string nan = ModelFolder();
        EditHeader(nan, _ => { });
        string weights = Path.Combine(nan, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(weights);
        int length = (int)BitConverter.ToUInt64(bytes, 0);
        JsonObject header = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(bytes, 8, length))!.AsObject();
        var (name, entry) = header.First(kv => kv.Key.EndsWith("norm.weight", StringComparison.Ordinal));
        long begin = entry!["data_offsets"]![0]!.GetValue<long>();
        BitConverter.GetBytes(float.NaN).CopyTo(bytes, 8 + length + (int)begin);
        File.WriteAllBytes(weights, bytes);
        AssertRefused(Run("dpo", "--model", nan, "--dataset", Pairs(), "--output", Output), name, "NaN");
    }

    [Fact]
    public void A_tokenizer_json_with_numeric_merges_names_the_file_and_the_field()
    {
        string folder = ModelFolder();
        string path = Path.Combine(folder, "tokenizer.json");
        JsonObject tokenizer = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        tokenizer["model"]!["merges"]!.AsArray()[1] = 42;
        File.WriteAllText(path, tokenizer.ToJsonString());
        AssertRefused(Run("dpo", "--model", folder, "--dataset", Pairs(), "--output", Output), "tokenizer.json", "model.merges[1]");
    }

    [Fact]
    public void Cuda_without_the_cuda_backend_says_which_package_is_missing()
    {
        AssertRefused(Run("dpo", "--model", ModelFolder(), "--dataset", Pairs(), "--output", Output, "--device", "cuda"), "TorchSharp-cuda");
    }

    [Fact]
    public void A_damaged_newest_checkpoint_is_passed_over_with_a_warning()
    {
        string model = ModelFolder();
        string[] args = ["dpo", "--model", model, "--dataset", Pairs(), "--output", Output, "--max-steps", "4", "--batch-size", "1", "--save-steps", "1"];
        Assert.Equal(0, Run([.. args]).Code);
        File.WriteAllText(Path.Combine(Output, "checkpoint-4", "trainer_state.json"), "{ truncated");
        var (code, _, error) = Run([.. args, "--resume"]);
        Assert.True(code == 0, error);
        Assert.Contains("checkpoint-4", error);
        Assert.Contains("trainer_state.json", error);
        Assert.Equal(4, File.ReadAllLines(Path.Combine(Output, "metrics.jsonl")).Length);
    }
}
