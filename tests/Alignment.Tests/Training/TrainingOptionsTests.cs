using Alignment.Training;

namespace Alignment.Tests.Training;

/// <summary>The learning-rate schedules against transformers' formulas, written out step by step.</summary>
public sealed class TrainingOptionsTests
{
    [Fact]
    public void Cosine_with_min_lr_warms_up_then_falls_from_the_peak_to_the_floor()
    {
        // The seed DPO stage: 50 warm-up steps, cosine from 5e-7 down to 1e-7, here over 250 steps.
        var options = new TrainingOptions { LearningRate = 5e-7, Schedule = LearningRateSchedule.CosineWithMinLr, WarmupSteps = 50, MinLr = 1e-7 };
        options.Validate();
        const int total = 250;
        Assert.Equal(0, options.LearningRateAt(0, total));
        Assert.Equal(5e-7 * 25 / 50, options.LearningRateAt(25, total), tolerance: 1e-20);
        Assert.Equal(5e-7, options.LearningRateAt(50, total), tolerance: 1e-20);                         // progress 0: the peak
        double midway = 0.5 * (1 + Math.Cos(Math.PI * 0.5)) * (1 - 0.2) + 0.2;             // progress ½, floor 1e-7 / 5e-7
        Assert.Equal(5e-7 * midway, options.LearningRateAt(150, total), tolerance: 1e-20);
        Assert.Equal(3e-7, options.LearningRateAt(150, total), tolerance: 1e-18);                        // halfway between peak and floor
        Assert.Equal(1e-7, options.LearningRateAt(250, total), tolerance: 1e-20);                        // progress 1: the floor
        Assert.Equal(options.LearningRateAt(150, total), (options with { MinLr = null, MinLrRate = 0.2 }).LearningRateAt(150, total), tolerance: 1e-20);
    }

    [Theory]
    [InlineData(LearningRateSchedule.Constant, 0, 1.0)]             // constant ignores warm-up, as transformers' does
    [InlineData(LearningRateSchedule.Constant, 90, 1.0)]
    [InlineData(LearningRateSchedule.ConstantWithWarmup, 5, 0.5)]
    [InlineData(LearningRateSchedule.ConstantWithWarmup, 90, 1.0)]
    [InlineData(LearningRateSchedule.Linear, 5, 0.5)]
    [InlineData(LearningRateSchedule.Linear, 55, 0.5)]              // (100 − 55) / (100 − 10)
    [InlineData(LearningRateSchedule.Cosine, 55, 0.5)]              // ½(1 + cos(π · 45/90))
    [InlineData(LearningRateSchedule.Cosine, 100, 0.0)]
    public void Schedules_follow_transformers_formulas(LearningRateSchedule schedule, int step, double factor)
    {
        var options = new TrainingOptions { LearningRate = 2e-5, Schedule = schedule, WarmupRatio = 0.1 };   // ⌈0.1 · 100⌉ = 10 warm-up steps
        Assert.Equal(2e-5 * factor, options.LearningRateAt(step, 100), 15);
    }

    [Fact]
    public void Warmup_steps_replace_the_warmup_ratio()
    {
        var options = new TrainingOptions { LearningRate = 1, Schedule = LearningRateSchedule.ConstantWithWarmup, WarmupRatio = 0.5, WarmupSteps = 4 };
        Assert.Equal(0.75, options.LearningRateAt(3, 100), 15);
        Assert.Equal(1, options.LearningRateAt(4, 100), 15);
    }

    [Theory]
    [InlineData(null, null, "exactly one of min_lr and min_lr_rate")]
    [InlineData(1e-7, 0.1, "exactly one of min_lr and min_lr_rate")]
    [InlineData(1e-3, null, "min_lr must be in [0, learning_rate]")]
    [InlineData(null, 1.5, "min_lr_rate must be in [0, 1]")]
    public void Cosine_with_min_lr_needs_one_valid_floor(double? minLr, double? minLrRate, string expected)
    {
        var options = new TrainingOptions { LearningRate = 1e-5, Schedule = LearningRateSchedule.CosineWithMinLr, MinLr = minLr, MinLrRate = minLrRate };
        Assert.Contains(expected, Assert.Throws<ArgumentException>(options.Validate).Message);
    }

    [Fact]
    public void A_floor_on_another_schedule_and_negative_warmup_steps_are_refused()
    {
        var error = Assert.Throws<ArgumentException>(new TrainingOptions { MinLr = 1e-7, WarmupSteps = -1 }.Validate);
        Assert.Contains("min_lr and min_lr_rate apply to cosine_with_min_lr only", error.Message);
        Assert.Contains("warmup_steps must be >= 0", error.Message);
    }
}
