using Alignment.Losses;
using static Alignment.Tests.Losses.LossTestKit;
using static TorchSharp.torch;

namespace Alignment.Tests.Losses;

public sealed class PreferenceLossesTests
{
    [Fact]
    public void Every_trl_loss_name_is_registered()
    {
        string[] trlNames =
        [
            "sigmoid", "robust", "hinge", "ipo", "exo_pair", "nca_pair", "sppo_hard", "apo_zero", "apo_down", "bco_pair",
            "aot", "aot_unpaired", "aot_pair", "discopop", "sigmoid_norm", "sft", "simpo", "cpo", "orpo", "kto", "apo_zero_unpaired",
        ];
        foreach (string name in trlNames)
            Assert.Equal(name == "aot_pair" ? "aot_unpaired" : name,
                PreferenceLosses.Create(name, name == "exo_pair" ? new PreferenceLossOptions { LabelSmoothing = 1e-3 } : null).Name);
    }

    [Fact]
    public void Unknown_names_are_rejected_with_the_list_of_known_ones()
    {
        var error = Assert.Throws<ArgumentException>(() => PreferenceLosses.Create("dpop"));
        Assert.Contains("'dpop'", error.Message);
        Assert.Contains("sigmoid", error.Message);
        Assert.Contains("kto", error.Message);
    }

    [Fact]
    public void Names_are_case_insensitive_and_options_are_passed_on()
    {
        var loss = (DpoLoss)PreferenceLosses.Create("IPO", new PreferenceLossOptions { Beta = 0.25 });
        Assert.Equal(0.25, loss.Options.Beta);
    }

    [Fact]
    public void Users_can_register_their_own_loss()
    {
        PreferenceLosses.Register("test_margin_dpo", options => new DpoLoss("hinge", options));
        Assert.Equal("hinge", PreferenceLosses.Create("test_margin_dpo").Name);
        Assert.Contains("test_margin_dpo", PreferenceLosses.Names);
    }

    [Fact]
    public void A_weighted_combination_sums_its_weighted_parts_as_in_mpo()
    {
        using var scope = NewDisposeScope();
        var options = new PreferenceLossOptions { Beta = 0.3 };
        var combined = PreferenceLosses.Create(["sigmoid", "bco_pair", "sft"], [0.8, 0.2, 1.0], options);
        double expected = 0.8 * Value(new DpoLoss("sigmoid", options).Compute(Sample.Forward()).Loss)
                        + 0.2 * Value(new DpoLoss("bco_pair", options).Compute(Sample.Forward()).Loss)
                        + 1.0 * (-Sample.Chosen.Sum() / Sample.ChosenCount.Sum());
        var output = combined.Compute(Sample.Forward());
        Assert.Equal(expected, Value(output.Loss), 12);
        Assert.True(combined.Requirements.Reference);
        Assert.Contains("loss/bco_pair", output.Metrics.Keys);
        Assert.Contains("rewards/margins", output.Metrics.Keys);
    }

    [Fact]
    public void Rpo_alpha_in_a_combination_is_added_once()
    {
        using var scope = NewDisposeScope();
        var options = new PreferenceLossOptions { Beta = 0.3, RpoAlpha = 0.5 };
        var combined = PreferenceLosses.Create(["sigmoid", "hinge"], null, options);
        var plain = options with { RpoAlpha = null };
        double expected = Value(new DpoLoss("sigmoid", plain).Compute(Sample.Forward()).Loss)
                        + Value(new DpoLoss("hinge", plain).Compute(Sample.Forward()).Loss)
                        + 0.5 * (-Sample.Chosen.Sum() / Sample.ChosenCount.Sum());
        Assert.Equal(expected, Value(combined.Compute(Sample.Forward()).Loss), 12);
    }

    [Fact]
    public void Reference_free_losses_declare_so()
    {
        foreach (string name in new[] { "simpo", "cpo", "orpo", "sft" })
            Assert.False(PreferenceLosses.Create(name).Requirements.Reference, name);
        Assert.True(PreferenceLosses.Create("kto").Requirements.KlCompletions);
        Assert.Equal(PreferenceDataKind.Unpaired, PreferenceLosses.Create("kto").Requirements.Data);
    }

    [Fact]
    public void Mismatched_weight_count_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => PreferenceLosses.Create(["sigmoid", "sft"], [1.0]));
    }
}
