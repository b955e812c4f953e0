// QuickStart: align a small language model end to end, on CPU, in a few minutes.
//
//   dotnet run --project examples/QuickStart [-- OUTPUT_FOLDER]
//
// 1. Build a tiny Llama-style model and a byte-level tokenizer from scratch (saved as a Hugging Face folder).
// 2. SFT it on an embedded instruction corpus: short questions asking for the answer "in capital letters" or
//    "in lowercase". The corpus answers correctly but in a random case, so the SFT model learns the answers and
//    ignores the case instruction (it complies about half the time).
// 3. DPO on preference pairs where the chosen answer follows the case instruction and the rejected one does not.
// 4. Judge both models on held-out questions (never seen in the preference data) with a rule anyone can check:
//    does the answer use the requested case? Print compliance before and after, the DPO model's win rate against
//    the SFT model, and save a plot of the training curves.
using Alignment.Data;
using Alignment.Evaluation;
using Alignment.Scoring;
using Alignment.Losses;
using Alignment.Models;
using Alignment.Native;
using Alignment.Tokenization;
using Alignment.Training;
using TorchSharp;
using static TorchSharp.torch;

TorchRuntime.EnsureLoaded();
string output = Path.GetFullPath(args.Length > 0 ? args[0] : "quickstart-output");
Directory.CreateDirectory(output);
var clock = System.Diagnostics.Stopwatch.StartNew();

// ---- The task (examples/Shared/CaseTask.cs) and a model from scratch --------------------------------------------------
var heldOut = CaseTask.Facts.TakeLast(4).ToArray();   // questions kept out of the preference data
var preferenceFacts = CaseTask.Facts.SkipLast(4).ToArray();
string baseFolder = Path.Combine(output, "base");
var (tokenizer, chat) = CaseTask.CreateBaseModel(baseFolder);

// ---- 1. SFT ---------------------------------------------------------------------------------------------------------
var random = new Random(1);
var sftExamples = new List<TokenizedCompletion>();
var tokenize = new PreferenceTokenizer(tokenizer, chat);
foreach (var (question, answer) in CaseTask.Facts)
    foreach (string ask in CaseTask.UpperAsks.Concat(CaseTask.LowerAsks))
        for (int copy = 0; copy < 2; copy++)
        {
            string said = random.Next(2) == 0 ? answer.ToUpperInvariant() : answer; // the corpus ignores the requested case
            var example = new SftExample(Content.FromMessages([new("user", $"{question} {ask}")]), Content.FromMessages([new("assistant", said)]),
                new SourceLocation("embedded SFT corpus", sftExamples.Count + 1));
            sftExamples.Add(tokenize.Tokenize(example, new TokenizationReport())!);
        }

using var policy = new PolicyModel(LlamaForCausalLM.FromPretrained(baseFolder));
var sft = new SftTrainer(policy, new TrainingOptions
{
    LearningRate = 3e-3, WarmupRatio = 0.05, BatchSize = 16, MaxSteps = 500, Seed = 1, OutputDir = Path.Combine(output, "sft-run"), SaveTotalLimit = 1,
});
Console.WriteLine($"SFT on {sftExamples.Count} examples…");
TrainingResult sftRun = sft.Train(sftExamples);
Console.WriteLine($"  loss {sftRun.History[0]["loss"]:F3} → {sftRun.History[^1]["loss"]:F3}");
string sftFolder = Path.Combine(output, "sft");
policy.Model.SavePretrained(sftFolder);

// ---- 2. DPO -------------------------------------------------------------------------------------------------------
var pairs = new List<TokenizedPair>();
foreach (var (question, answer) in preferenceFacts)
    foreach (var (ask, upper) in CaseTask.UpperAsks.Select(a => (a, true)).Concat(CaseTask.LowerAsks.Select(a => (a, false))))
    {
        string good = upper ? answer.ToUpperInvariant() : answer, bad = upper ? answer : answer.ToUpperInvariant();
        var pair = new PreferencePair(Content.FromMessages([new("user", $"{question} {ask}")]),
            Content.FromMessages([new("assistant", good)]), Content.FromMessages([new("assistant", bad)]),
            new SourceLocation("embedded preference pairs", pairs.Count + 1));
        pairs.Add(tokenize.Tokenize(pair, new TokenizationReport())!);
    }

var heldOutPrompts = heldOut.SelectMany(f => CaseTask.UpperAsks.Concat(CaseTask.LowerAsks).Select(ask => $"{f.Question} {ask}")).ToList();
List<string> Answers(ICausalLM model) => CaseTask.GreedyAnswers(model, tokenizer, chat, heldOutPrompts, maxNewTokens: 16);

List<string> sftAnswers = Answers(policy.Model);
using ReferenceModel reference = policy.CreateReference();     // a frozen copy of the SFT weights
// DPO, with RPO's forgetting guard: rpo_alpha adds the chosen answers' NLL, so the model keeps answering correctly
// while it learns which case to answer in.
IPreferenceLoss loss = PreferenceLosses.Create("sigmoid", new PreferenceLossOptions { Beta = 0.1, RpoAlpha = 1.0 });
// Every 50 steps: the win rate against the SFT model on the held-out prompts (judged by the rule, both orders), and a
// forgetting monitor on an eighth of the SFT corpus (whose answers ignore the requested case, so their NLL rises as DPO
// teaches the case: drift the monitor makes visible). Neither changes the training.
var judge = RuleJudge.FromScore("follows the requested case", (prompt, answer) => CaseTask.Complies(prompt, answer) ? 1 : 0);
var greedy = new GenerationOptions { MaxNewTokens = 16, Temperature = 0 };
var winRate = new WinRateCallback(new ModelCompletionGenerator("dpo", policy.Model, tokenizer, chat, greedy),
    new ModelCompletionGenerator("sft", reference, tokenizer, chat, greedy), judge, [.. heldOutPrompts.Select(p => new WinRatePrompt(p))]);
var forgetting = new ForgettingMonitor(policy.Model, sftExamples.Where((_, i) => i % 8 == 0).ToList(), tokenizer.PadTokenId!.Value);
var dpo = new PreferenceTrainer(policy, loss, new TrainingOptions
{
    LearningRate = 5e-4, BatchSize = 8, MaxSteps = 300, Schedule = LearningRateSchedule.Constant, Seed = 2, EvalSteps = 50,
    OutputDir = Path.Combine(output, "dpo-run"), SaveTotalLimit = 1,
    PaddingValue = tokenizer.PadTokenId!.Value,
}, reference, callbacks: [winRate, forgetting]);
Console.WriteLine($"DPO on {pairs.Count} pairs…");
TrainingResult dpoRun = dpo.Train(pairs);
var last = dpoRun.History.Last(h => h.ContainsKey("rewards/margins")); // the last training step (evaluations are logged after it)
Console.WriteLine($"  loss {dpoRun.History[0]["loss"]:F3} → {last["loss"]:F3}, rewards/accuracies {last["rewards/accuracies"]:F2}, rewards/margins {last["rewards/margins"]:F2}");
var finalEval = dpoRun.History.Last(h => h.ContainsKey("eval_win_rate"));
Console.WriteLine($"  every 50 steps: eval_win_rate {string.Join(" ", dpoRun.History.Where(h => h.ContainsKey("eval_win_rate")).Select(h => $"{h["eval_win_rate"]:F2}"))}; " +
                  $"eval_forgetting_nll {forgetting.Baseline:F3} → {finalEval["eval_forgetting_nll"]:F3}");
string dpoFolder = Path.Combine(output, "dpo");
policy.Model.SavePretrained(dpoFolder);

// ---- 3. Judge on held-out questions -------------------------------------------------------------------------------
List<string> dpoAnswers = Answers(policy.Model);
// Each pair judged in both orders (a verdict that flips with the order is a tie); every verdict goes to verdicts.jsonl.
WinRateReport report = await WinRate.JudgeAsync(heldOutPrompts.Select((p, i) => (new WinRatePrompt(p), dpoAnswers[i], sftAnswers[i])).ToList(),
    judge, Path.Combine(output, "verdicts.jsonl"));
double Compliance(List<string> answers) => answers.Where((a, i) => CaseTask.Complies(heldOutPrompts[i], a)).Count() / (double)answers.Count;
Console.WriteLine();
Console.WriteLine($"Held-out prompts: {heldOutPrompts.Count} (questions never seen in the preference pairs)");
for (int i = 0; i < Math.Min(6, heldOutPrompts.Count); i++)
    Console.WriteLine($"  {heldOutPrompts[i],-58} SFT: {sftAnswers[i],-10} DPO: {dpoAnswers[i]}");
Console.WriteLine($"Rule compliance: SFT {Compliance(sftAnswers):P0} → DPO {Compliance(dpoAnswers):P0}");
var (wins, losses, ties) = (report.Wins, report.Losses, report.Ties);
Console.WriteLine($"DPO vs SFT: {wins} wins, {losses} losses, {ties} ties → win rate {report.WinRate:P0} " +
                  $"(ties count half; 95 % interval {report.Lower:P0}–{report.Upper:P0}); {(wins + losses == 0 ? "no decisive pair" : $"{wins / (double)(wins + losses):P0} of decisive pairs")}");

// ---- 4. Plot ------------------------------------------------------------------------------------------------------
var steps = dpoRun.History.Where(h => h.ContainsKey("rewards/margins")).ToList();
var plot = new ScottPlot.Plot();
double[] x = steps.Select(h => h["step"]).ToArray();
plot.Add.Scatter(x, steps.Select(h => h["loss"]).ToArray()).LegendText = "DPO loss";
plot.Add.Scatter(x, steps.Select(h => h["rewards/margins"]).ToArray()).LegendText = "rewards/margins";
plot.Add.Scatter(x, steps.Select(h => h["rewards/accuracies"]).ToArray()).LegendText = "rewards/accuracies";
var evaluations = dpoRun.History.Where(h => h.ContainsKey("eval_win_rate")).ToList();
double[] evalSteps = evaluations.Select(h => h["step"]).ToArray();
plot.Add.Scatter(evalSteps, evaluations.Select(h => h["eval_win_rate"]).ToArray()).LegendText = "eval_win_rate (vs SFT, held out)";
plot.Add.Scatter(evalSteps, evaluations.Select(h => h["eval_forgetting_nll"]).ToArray()).LegendText = "eval_forgetting_nll (SFT answers)";
plot.Title("QuickStart DPO");
plot.XLabel("optimizer step");
plot.ShowLegend();
string png = Path.Combine(dpoFolder, "training.png");
plot.SavePng(png, 900, 500);
Console.WriteLine($"Models: {sftFolder}, {dpoFolder}; plot: {png}; {clock.Elapsed.TotalSeconds:F0} s in all.");
