// RlhfPipeline: the three stages of InstructGPT-style RLHF, end to end on CPU.
//
//   dotnet run --project examples/RlhfPipeline [-- OUTPUT_FOLDER]
//
// 1. SFT a tiny Llama-style model from scratch on questions that ask for the answer in capital or small letters
//    (the corpus answers correctly but ignores the requested case).
// 2. Train a reward model on embedded preference pairs: the answer in the requested case beats the other.
// 3. PPO the SFT model against that reward model, with a KL penalty to the SFT model.
// It prints the mean reward and the KL before and after, the rule compliance, and plots reward against KL.
using Alignment.Data;
using Alignment.Evaluation;
using Alignment.Models;
using Alignment.Native;
using Alignment.Rl;
using Alignment.Scoring;
using Alignment.Tokenization;
using Alignment.Training;

TorchRuntime.EnsureLoaded();
string output = Path.GetFullPath(args.Length > 0 ? args[0] : "rlhf-output");
var clock = System.Diagnostics.Stopwatch.StartNew();

// The task of examples/Shared/CaseTask.cs, on its first 12 questions with one way of asking for each case.
var facts = CaseTask.Facts.Take(12).ToArray();
string[] asks = [CaseTask.UpperAsks[0], CaseTask.LowerAsks[0]];
var prompts = facts.SelectMany(f => asks.Select(a => $"{f.Question} {a}")).ToList();

// ---- Stage 0: tokenizer and a model from scratch ------------------------------------------------------------------
string baseFolder = Path.Combine(output, "base");
var (tokenizer, chat) = CaseTask.CreateBaseModel(baseFolder);
var tokenize = new PreferenceTokenizer(tokenizer, chat);
long pad = tokenizer.PadTokenId!.Value;

// ---- Stage 1: SFT ---------------------------------------------------------------------------------------------------
var random = new Random(1);
var sftData = facts.SelectMany(f => asks.SelectMany(a => Enumerable.Range(0, 3).Select(_ => (Prompt: $"{f.Question} {a}",
        Answer: random.Next(2) == 0 ? f.Answer.ToUpperInvariant() : f.Answer))))
    .Select((x, i) => tokenize.Tokenize(new SftExample(Content.FromMessages([new("user", x.Prompt)]), Content.FromMessages([new("assistant", x.Answer)]),
        new SourceLocation("embedded SFT corpus", i + 1)), new TokenizationReport())!).ToList();
string sftFolder = Path.Combine(output, "sft");
using (var sft = new PolicyModel(LlamaForCausalLM.FromPretrained(baseFolder)))
{
    Console.WriteLine($"1. SFT on {sftData.Count} examples…");
    new SftTrainer(sft, new TrainingOptions { LearningRate = 3e-3, WarmupRatio = 0.05, BatchSize = 16, MaxSteps = 400, Seed = 1, PaddingValue = pad }).Train(sftData);
    sft.Model.SavePretrained(sftFolder);
}

// ---- Stage 2: reward model on preference pairs ---------------------------------------------------------------------
var pairs = facts.SelectMany(f => asks.Select(a => (Prompt: $"{f.Question} {a}", Upper: a.Contains("capital"), f.Answer)))
    .Select((x, i) => tokenize.Tokenize(new PreferencePair(Content.FromMessages([new("user", x.Prompt)]),
        Content.FromMessages([new("assistant", x.Upper ? x.Answer.ToUpperInvariant() : x.Answer)]),
        Content.FromMessages([new("assistant", x.Upper ? x.Answer : x.Answer.ToUpperInvariant())]), new SourceLocation("embedded pairs", i + 1)),
        new TokenizationReport())!).ToList();
string rewardFolder = Path.Combine(output, "reward");
using (RewardModel training = RewardModel.FromCausalLM(sftFolder))
{
    Console.WriteLine($"2. Reward model on {pairs.Count} pairs…");
    var trainer = new RewardTrainer(training, new TrainingOptions { LearningRate = 1e-3, BatchSize = 8, MaxSteps = 150, Seed = 2, PaddingValue = pad });
    trainer.Train(pairs);
    Console.WriteLine($"   accuracy on its pairs: {trainer.Evaluate(pairs)["accuracy"]:P0}");
    training.SavePretrained(rewardFolder);
}

// ---- Stage 3: PPO against the reward model --------------------------------------------------------------------------
using RewardModel reward = RewardModel.FromPretrained(rewardFolder);  // scores text with the folder's tokenizer and chat template
using var policy = new PolicyModel(LlamaForCausalLM.FromPretrained(sftFolder));
using ReferenceModel reference = policy.CreateReference();
List<string> Greedy() => CaseTask.GreedyAnswers(policy.Model, tokenizer, chat, prompts, maxNewTokens: 12);
List<string> before = Greedy();
double RuleCompliance(List<string> answers) => answers.Where((a, i) => CaseTask.Complies(prompts[i], a)).Count() / (double)answers.Count;

Console.WriteLine("3. PPO against the reward model…");
var history = new PpoLoop(policy, reference, reward, tokenizer, chat, new PpoOptions
{
    Training = PpoOptions.DefaultTraining with { MaxSteps = 40, BatchSize = 12, LearningRate = 1e-4, Seed = 3, OutputDir = Path.Combine(output, "ppo-run"), SaveTotalLimit = 1 },
    ResponseLength = 10, KlCoef = 0.3, PpoEpochs = 4, Temperature = 1.0, MissingEosPenalty = 1.0,
}).Train(prompts).History;
List<string> after = Greedy();
string ppoFolder = Path.Combine(output, "ppo");
policy.Model.SavePretrained(ppoFolder);

var first = history.Take(5).ToList();
var last = history.TakeLast(5).ToList();
Console.WriteLine();
Console.WriteLine($"mean reward (sampled, iterations 1–5 → last 5): {first.Average(h => h["objective/scores"]):F3} → {last.Average(h => h["objective/scores"]):F3}");
Console.WriteLine($"KL to the SFT model per completion (nats):      {first.Average(h => h["objective/kl"]):F3} → {last.Average(h => h["objective/kl"]):F3}");
Console.WriteLine($"rule compliance of greedy answers:              {RuleCompliance(before):P0} → {RuleCompliance(after):P0}");
// The PPO model against the SFT model by the same rule, each pair judged in both orders (Alignment.Evaluation).
var ruleJudge = RuleJudge.FromScore("follows the requested case", (prompt, answer) => CaseTask.Complies(prompt, answer) ? 1 : 0);
WinRateReport winRate = await WinRate.JudgeAsync(prompts.Select((p, i) => (new WinRatePrompt(p), after[i], before[i])).ToList(), ruleJudge,
    Path.Combine(output, "verdicts.jsonl"));
Console.WriteLine($"PPO vs SFT by the rule:                         {winRate.Wins} wins, {winRate.Ties} ties, {winRate.Losses} losses → win rate {winRate.WinRate:P0} " +
                  $"(95 % {winRate.Lower:P0}–{winRate.Upper:P0})");
for (int i = 0; i < 4; i++)
    Console.WriteLine($"  {prompts[i],-48} SFT: {before[i],-8} PPO: {after[i]}");

var plot = new ScottPlot.Plot();
var scatter = plot.Add.Scatter(history.Select(h => h["objective/kl"]).ToArray(), history.Select(h => h["objective/scores"]).ToArray());
scatter.LegendText = "one PPO iteration";
scatter.LineWidth = 0;   // points only: each is one iteration's mean KL and mean reward
plot.Title("PPO: reward against KL to the SFT model");
plot.XLabel("objective/kl (nats per completion)");
plot.YLabel("objective/scores (reward model)");
string png = Path.Combine(ppoFolder, "reward_vs_kl.png");
plot.SavePng(png, 900, 500);
Console.WriteLine($"Models: {sftFolder}, {rewardFolder}, {ppoFolder}; plot: {png}; {clock.Elapsed.TotalSeconds:F0} s in all.");
