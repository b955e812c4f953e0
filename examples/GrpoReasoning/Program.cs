// GrpoReasoning: GRPO with verifiable rewards (TRL's reward_funcs), end to end on CPU.
//
//   dotnet run --project examples/GrpoReasoning [-- OUTPUT_FOLDER]
//
// The task: sort three digits ("Sort the digits 3 8 5." → "3 5 8"), which a program can check.
// 1. SFT a tiny Llama-style model from scratch on a sloppy corpus: two answers in three repeat the digits unsorted, and
//    half show their reasoning in a <think>…</think> block.
// 2. GRPO that model with two rewards and no reward model: TRL's accuracy reward (the answer against the dataset's
//    `solution` column) and its think-format reward, weighted 1 and 0.5; β = 0, so no reference model either.
// It prints the accuracy and the share of well-formatted answers on held-out prompts before and after, and plots the
// rewards against the step.
using Alignment.Data;
using Alignment.Models;
using Alignment.Native;
using Alignment.Rl;
using Alignment.Scoring;
using Alignment.Tokenization;
using Alignment.Training;

TorchRuntime.EnsureLoaded();
string output = Path.GetFullPath(args.Length > 0 ? args[0] : "grpo-output");
var clock = System.Diagnostics.Stopwatch.StartNew();

// ---- The task: every triple of digits, 100 of them held out -------------------------------------------------------
var random = new Random(7);
var triples = Enumerable.Range(0, 1000).Select(n => new[] { n / 100, n / 10 % 10, n % 10 }).OrderBy(_ => random.Next()).ToList();
var heldOut = triples.Take(100).ToList();
var train = triples.Skip(100).ToList();
string Prompt(int[] digits) => $"Sort the digits {string.Join(' ', digits)}.";
string Sorted(int[] digits) => string.Join(' ', digits.Order());
PromptExample Example(int[] digits) => new(Prompt(digits), ("solution", Sorted(digits)));

// ---- Stage 0 and 1: a model from scratch, SFT on a sloppy corpus ---------------------------------------------------
string baseFolder = Path.Combine(output, "base");
var (tokenizer, chat) = CaseTask.CreateBaseModel(baseFolder);
var tokenize = new PreferenceTokenizer(tokenizer, chat);
// Each training prompt three times: once sorted, twice as given (so a third of the answers are right), each with or
// without its reasoning in a <think> block.
var sftData = train.SelectMany(digits => new[] { true, false, false }.Select(sorted => (digits, sorted))).Select((x, i) =>
{
    string answer = x.sorted ? Sorted(x.digits) : string.Join(' ', x.digits);
    string reasoning = random.Next(2) == 0 ? $"<think>order {string.Join(' ', x.digits)}</think>\n" : "";
    return tokenize.Tokenize(new SftExample(Content.FromMessages([new("user", Prompt(x.digits))]), Content.FromMessages([new("assistant", reasoning + answer)]),
        new SourceLocation("embedded SFT corpus", i + 1)), new TokenizationReport())!;
}).ToList();
string sftFolder = Path.Combine(output, "sft");
using (var sft = new PolicyModel(LlamaForCausalLM.FromPretrained(baseFolder)))
{
    Console.WriteLine($"1. SFT on {sftData.Count} examples…");
    new SftTrainer(sft, new TrainingOptions { LearningRate = 1e-3, WarmupRatio = 0.05, BatchSize = 16, MaxSteps = 1000, Seed = 1, PaddingValue = tokenizer.PadTokenId!.Value })
        .Train(sftData);
    sft.Model.SavePretrained(sftFolder);
}

// ---- Stage 2: GRPO against the two verifiable rewards -----------------------------------------------------------------
using var policy = new PolicyModel(LlamaForCausalLM.FromPretrained(sftFolder));
IRewardFunction accuracy = RewardFunction.Accuracy(), format = RewardFunction.ThinkFormat();
(double Accuracy, double Format) Measure()
{
    var answers = CaseTask.GreedyAnswers(policy.Model, tokenizer, chat, heldOut.Select(Prompt), maxNewTokens: 32);
    var samples = answers.Select((answer, i) => new RewardSample(Prompt(heldOut[i]), answer, [], Example(heldOut[i]).Columns)).ToList();
    return (accuracy.Score(samples).Average(r => r!.Value), format.Score(samples).Average(r => r!.Value));
}
var before = Measure();

Console.WriteLine("2. GRPO with accuracy_reward (weight 1) and think_format_reward (weight 0.5)…");
var history = new PpoLoop(policy, null, [accuracy, format], tokenizer, chat, new PpoOptions
{
    Algorithm = RlAlgorithm.Grpo,
    Training = PpoOptions.DefaultTraining with { MaxSteps = 60, BatchSize = 8, LearningRate = 2e-4, Seed = 3, OutputDir = Path.Combine(output, "grpo-run"), SaveTotalLimit = 1 },
    NumGenerations = 8, ResponseLength = 32, KlCoef = 0, PpoEpochs = 1, Temperature = 1.0,
    LossType = GrpoLossType.Dapo, EpsilonHigh = 0.28, RewardWeights = [1, 0.5],
}).Train(train.Select(Example).ToList()).History;
var after = Measure();
string grpoFolder = Path.Combine(output, "grpo");
policy.Model.SavePretrained(grpoFolder);

double Mean(IEnumerable<IReadOnlyDictionary<string, double>> steps, string key) => steps.Average(h => h[key]);
Console.WriteLine();
Console.WriteLine($"sampled rewards, steps 1–5 → last 5:  accuracy {Mean(history.Take(5), "rewards/accuracy_reward/mean"):F2} → {Mean(history.TakeLast(5), "rewards/accuracy_reward/mean"):F2}, " +
                  $"format {Mean(history.Take(5), "rewards/think_format_reward/mean"):F2} → {Mean(history.TakeLast(5), "rewards/think_format_reward/mean"):F2}");
Console.WriteLine($"greedy answers to {heldOut.Count} held-out prompts: accuracy {before.Accuracy:P0} → {after.Accuracy:P0}, well-formatted {before.Format:P0} → {after.Format:P0}");

var plot = new ScottPlot.Plot();
double[] steps = [.. Enumerable.Range(1, history.Count).Select(i => (double)i)];
foreach (var (key, label) in new[] { ("rewards/accuracy_reward/mean", "accuracy_reward"), ("rewards/think_format_reward/mean", "think_format_reward"), ("reward", "weighted reward") })
    plot.Add.Scatter(steps, history.Select(h => h[key]).ToArray()).LegendText = label;
plot.ShowLegend();
plot.Title("GRPO: mean reward of the sampled completions per step");
plot.XLabel("step");
plot.YLabel("reward");
string png = Path.Combine(grpoFolder, "reward_vs_step.png");
plot.SavePng(png, 900, 500);
Console.WriteLine($"Models: {sftFolder}, {grpoFolder}; plot: {png}; {clock.Elapsed.TotalSeconds:F0} s in all.");
