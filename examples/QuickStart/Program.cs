// QuickStart: the hot path of preference training, side by side.
//
// Every preference loss (DPO, IPO, SimPO, ORPO, KTO...) needs the log-probability that the model gives to each
// token of a completion. The textbook way computes log_softmax over the whole vocabulary and keeps that
// [batch, time, vocab] tensor for the backward pass. Alignment's TokenLogProbs gets the same numbers without it:
//   FromLogits  - from the logits, one streaming pass per chunk of tokens;
//   FromHidden  - from the last hidden states and the lm_head weight, never building the logits at all.
//
// Run:  dotnet run --project examples/QuickStart [-- --device cuda]
using Alignment.Kernels;
using Alignment.Native;
using TorchSharp;
using static TorchSharp.torch;

TorchRuntime.EnsureLoaded();
Device device = args.Length == 2 && args[0] == "--device" ? torch.device(args[1]) : CPU;
torch.manual_seed(0);

// A stand-in for a language model's last layer: hidden states [B, T, H] and an lm_head weight [V, H].
const int Batch = 2, Time = 6, Hidden = 32, Vocab = 100;
Tensor hidden = randn(Batch, Time, Hidden, device: device).requires_grad_(true);
Tensor lmHead = randn(Vocab, Hidden, device: device).div(Math.Sqrt(Hidden)).requires_grad_(true);

// Targets are the next tokens. The second sequence is shorter: its last two positions are padding (mask 0).
Tensor targets = randint(0, Vocab, [Batch, Time], dtype: ScalarType.Int64, device: device);
Tensor mask = tensor(new long[,] { { 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 0, 0 } }, device: device);

// 1. The textbook path: materialise the logits and a full log_softmax.
Tensor logits = hidden.matmul(lmHead.t());                                   // [B, T, V]
Tensor naive = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1).where(mask.ne(0), 0f);

// 2. The fused paths.
Tensor fromLogits = TokenLogProbs.FromLogits(logits, targets, mask);
Tensor fromHidden = TokenLogProbs.FromHidden(hidden, lmHead, targets, mask, chunkSize: 4);

Console.WriteLine("Per-token log-probabilities (padding shows as 0):");
Console.WriteLine($"{"seq",3} {"t",2} {"target",6} {"naive",12} {"FromLogits",12} {"FromHidden",12}");
for (int b = 0; b < Batch; b++)
    for (int t = 0; t < Time; t++)
        Console.WriteLine($"{b,3} {t,2} {targets[b, t].item<long>(),6} {naive[b, t].item<float>(),12:F6} " +
                          $"{fromLogits[b, t].item<float>(),12:F6} {fromHidden[b, t].item<float>(),12:F6}");

// What DPO consumes: the summed log-probability of each completion, and IPO/SimPO's per-token mean.
Tensor sums = TokenLogProbs.SequenceSum(fromHidden, mask);
Tensor means = TokenLogProbs.SequenceMean(fromHidden, mask);
Console.WriteLine();
for (int b = 0; b < Batch; b++)
    Console.WriteLine($"sequence {b}: sum {sums[b].item<float>():F6}, mean {means[b].item<float>():F6} " +
                      $"over {TokenLogProbs.TokenCounts(mask)[b].item<long>()} tokens");

// Gradients agree too: back-propagate the same objective through the naive and the fused path.
naive.sum().backward();
Tensor naiveGrad = hidden.grad!.clone();
hidden.grad!.zero_();
fromHidden.sum().backward();
double largest = hidden.grad!.sub(naiveGrad).abs().max().item<float>();
Console.WriteLine();
Console.WriteLine($"largest difference between values: {fromHidden.sub(naive).abs().max().item<float>():E2}; " +
                  $"between hidden-state gradients: {largest:E2}");
