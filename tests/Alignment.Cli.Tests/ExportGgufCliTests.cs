using System.Text;

namespace Alignment.Cli.Tests;

/// <summary><c>align export-gguf</c> end to end (the file's contents are checked in llama.cpp by the library's tests).</summary>
public sealed class ExportGgufCliTests : CliFixture
{
    [Fact]
    public void A_model_folder_becomes_a_gguf_file_under_llama_cpps_flag_names()
    {
        string folder = ModelFolder(), output = Path.Combine(_models.Root, "model.gguf");
        var (code, text, error) = Run("export-gguf", "--model", folder, "--outfile", output, "--outtype", "q8_0");
        Assert.True(code == 0, error);
        Assert.Contains("model.gguf (q8_0", text);
        using var reader = new BinaryReader(File.OpenRead(output));
        Assert.Equal("GGUF", Encoding.ASCII.GetString(reader.ReadBytes(4)));
        Assert.Equal(3u, reader.ReadUInt32());                                   // version
        Assert.Equal(2 + 2 * 9 + 1u, reader.ReadUInt64());                       // tensors: embeddings, 2 layers × 9, final norm, output
    }

    [Fact]
    public void A_lora_adapter_exports_on_its_base()
    {
        string folder = ModelFolder(), adapter = Path.Combine(_models.Root, "adapter"), output = Path.Combine(_models.Root, "adapter.gguf");
        using (var model = Alignment.Models.LlamaForCausalLM.FromPretrained(folder))
        {
            Alignment.Models.LoraAdapters.Attach(model, new Alignment.Models.LoraOptions { Rank = 2, TargetModules = ["q_proj", "v_proj"] });
            Alignment.Models.LoraAdapters.Save(model, adapter);
        }
        var (code, text, error) = Run("export-gguf", "--model", folder, "--adapter", adapter, "--out", output, "--type", "f32");
        Assert.True(code == 0, error);
        using var reader = new BinaryReader(File.OpenRead(output));
        Assert.Equal("GGUF", Encoding.ASCII.GetString(reader.ReadBytes(4)));
        reader.ReadUInt32();
        Assert.Equal(2 * 2 * 2ul, reader.ReadUInt64()); // 2 layers × (q, v) × (lora_a, lora_b)
    }

    [Theory]
    [InlineData("--type", "q4_k", "q4_k")]
    [InlineData("--adapter", "nowhere", "'nowhere' is not a folder")]
    [InlineData("--model", "nowhere", "'nowhere' is not a folder")]
    public void Bad_input_is_named_and_nothing_is_written(string option, string value, string expected)
    {
        string output = Path.Combine(_models.Root, "bad.gguf");
        string[] args = option == "--model" ? ["export-gguf", option, value, "--out", output] : ["export-gguf", "--model", ModelFolder(), "--out", output, option, value];
        var (code, _, error) = Run(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, error);
        Assert.False(File.Exists(output));
    }
}
