// CustomLoss: write a preference loss of your own, register it by name, and train with it.
//
// The model is a tiny bigram language model (embedding → lm_head) so that the example runs in seconds; the loss,
// the log-probability kernel and the optimisation are the same ones a real model uses.
//
// Run:  dotnet run --project examples/CustomLoss
using Alignment.Kernels;
using Alignment.Losses;
using Alignment.Native;
using CustomLoss;
using TorchSharp;
using static TorchSharp.torch;

TorchRuntime.EnsureLoaded();
torch.manual_seed(1);

// 1. Register the loss: from now on "margin_dpo" works wherever a loss name is accepted (CLI, config files).
PreferenceLosses.Register("margin_dpo", options => new MarginDpoLoss(options.Beta, alpha: 0.5));
IPreferenceLoss loss = PreferenceLosses.Create("margin_dpo", new PreferenceLossOptions { Beta = 0.5 });

// 2. Preference data: after token t, the preferred continuation counts upwards (t+1, t+2, ...); the rejected one
//    repeats t. The rating gap says how strongly raters preferred the chosen answer.
const int Vocab = 16, Hidden = 8, Pairs = 24, Length = 5;
var prompts = randint(0, Vocab, [Pairs, 1], dtype: ScalarType.Int64);
var steps = arange(Length, dtype: ScalarType.Int64).unsqueeze(0);
Tensor chosen = cat([prompts, prompts.add(steps.add(1)).remainder(Vocab)], 1);   // [P, 1 + L]
Tensor rejected = cat([prompts, prompts.expand(Pairs, Length)], 1);                // [P, 1 + L]
Tensor ratingGap = randint(1, 4, [Pairs], dtype: ScalarType.Int64).to_type(ScalarType.Float32);

// 3. Policy and reference: the reference is a frozen copy of the starting weights.
var embedding = nn.Embedding(Vocab, Hidden);
var lmHead = nn.Linear(Hidden, Vocab, hasBias: false);
Tensor referenceEmbedding = embedding.weight!.detach().clone();
Tensor referenceHead = lmHead.weight!.detach().clone();
var optimizer = optim.AdamW(embedding.parameters().Concat(lmHead.parameters()), lr: 0.003);

// Summed log-probability of each sequence's continuation (every token after the prompt).
CompletionLogProbs Score(Tensor sequences, Tensor embeddingWeight, Tensor headWeight)
{
    Tensor inputs = sequences.narrow(1, 0, Length);    // tokens that predict...
    Tensor targets = sequences.narrow(1, 1, Length);   // ...the next ones
    Tensor hidden = embeddingWeight.index_select(0, inputs.reshape(-1)).reshape(Pairs, Length, Hidden);
    Tensor perToken = TokenLogProbs.FromHidden(hidden, headWeight, targets);
    return CompletionLogProbs.FromTokens(perToken, ones_like(targets));
}

for (int step = 1; step <= 60; step++)
{
    using var scope = NewDisposeScope();
    PreferenceForward forward;
    using (no_grad())
    {
        forward = new PreferenceForward
        {
            ReferenceChosen = Score(chosen, referenceEmbedding, referenceHead),
            ReferenceRejected = Score(rejected, referenceEmbedding, referenceHead),
        };
    }
    forward = new PreferenceForward
    {
        Chosen = Score(chosen, embedding.weight!, lmHead.weight!),
        Rejected = Score(rejected, embedding.weight!, lmHead.weight!),
        ReferenceChosen = forward.ReferenceChosen,
        ReferenceRejected = forward.ReferenceRejected,
        Margins = ratingGap,
    };

    PreferenceLossOutput output = loss.Compute(forward);
    optimizer.zero_grad();
    output.Loss.backward();
    optimizer.step();

    if (step % 10 == 0 || step == 1)
        Console.WriteLine($"step {step,3}  loss {output.Loss.item<float>():F4}  " +
                          $"rewards/margins {output.Metrics["rewards/margins"].item<float>():F3}  " +
                          $"rewards/accuracies {output.Metrics["rewards/accuracies"].item<float>():F2}");
}
