using Alignment.Distributed;
using Alignment.Kernels;
using static TorchSharp.torch;

namespace Alignment.Losses;

/// <summary>
/// One model's log-probabilities of one set of completions (for example the policy's on the chosen completions):
/// per-sequence sums and token counts, and optionally the per-token values they came from.
/// </summary>
/// <remarks>The tensors stay owned by the caller; this type neither copies nor disposes them.</remarks>
public sealed class CompletionLogProbs
{
    /// <summary>From per-sequence sums and token counts.</summary>
    /// <param name="sums">[B] summed log-probabilities of each completion.</param>
    /// <param name="tokenCounts">[B] number of completion tokens (any numeric dtype).</param>
    /// <param name="wpoLogWeights">Optional [B] WPO log-weights (see <see cref="WpoLogWeights"/>).</param>
    /// <exception cref="ArgumentException">The shapes are not [B] and [B].</exception>
    public CompletionLogProbs(Tensor sums, Tensor tokenCounts, Tensor? wpoLogWeights = null)
    {
        ArgumentNullException.ThrowIfNull(sums);
        ArgumentNullException.ThrowIfNull(tokenCounts);
        if (sums.dim() != 1)
            throw new ArgumentException($"sums has shape {KernelInputs.Shape(sums)}; expected [B].", nameof(sums));
        if (!tokenCounts.shape.SequenceEqual(sums.shape))
            throw new ArgumentException($"tokenCounts has shape {KernelInputs.Shape(tokenCounts)}; expected {KernelInputs.Shape(sums)}.", nameof(tokenCounts));
        if (wpoLogWeights is not null && !wpoLogWeights.shape.SequenceEqual(sums.shape))
            throw new ArgumentException($"wpoLogWeights has shape {KernelInputs.Shape(wpoLogWeights)}; expected {KernelInputs.Shape(sums)}.", nameof(wpoLogWeights));
        Sums = sums;
        TokenCounts = tokenCounts;
        WpoLogWeights = wpoLogWeights;
    }

    CompletionLogProbs(Tensor sums, Tensor tokenCounts, Tensor tokens, Tensor mask, Tensor? wpoLogWeights)
        : this(sums, tokenCounts, wpoLogWeights)
    {
        TokenValues = tokens;
        Mask = mask;
    }

    /// <summary>From per-token log-probabilities (as <see cref="TokenLogProbs"/> returns them) and their mask.</summary>
    /// <param name="tokenLogProbs">[B, T] per-token log-probabilities.</param>
    /// <param name="mask">[B, T] completion tokens that count.</param>
    /// <param name="wpoLogWeights">Optional [B] WPO log-weights.</param>
    public static CompletionLogProbs FromTokens(Tensor tokenLogProbs, Tensor mask, Tensor? wpoLogWeights = null)
    {
        Tensor sums = TokenLogProbs.SequenceSum(tokenLogProbs, mask);
        Tensor counts = TokenLogProbs.TokenCounts(mask);
        return new CompletionLogProbs(sums, counts, tokenLogProbs, mask.to_type(ScalarType.Bool), wpoLogWeights);
    }

    /// <summary>[B] summed log-probability of each completion.</summary>
    public Tensor Sums { get; }

    /// <summary>[B] number of completion tokens.</summary>
    public Tensor TokenCounts { get; }

    /// <summary>[B, T] per-token log-probabilities, when built with <see cref="FromTokens"/>.</summary>
    public Tensor? TokenValues { get; }

    /// <summary>[B, T] bool mask of the counted tokens, when built with <see cref="FromTokens"/>.</summary>
    public Tensor? Mask { get; }

    /// <summary>
    /// [B] WPO log-weight of each completion (Zhou et al. 2024, eq. 2 as TRL computes it): the mean over its tokens of
    /// <c>log p(token) − log Σ_v p(v)²</c>, computed without gradient.
    /// </summary>
    public Tensor? WpoLogWeights { get; }

    /// <summary>[B] mean log-probability per token (0 for an empty completion), in the dtype of <see cref="Sums"/>.</summary>
    public Tensor Means() => Sums.div(TokenCounts.to_type(Sums.dtype).clamp_min(1));

    /// <summary>Number of completions B.</summary>
    public long Count => Sums.shape[0];
}

/// <summary>
/// Everything a loss may consume for one batch. Paired losses read <see cref="Chosen"/>/<see cref="Rejected"/> (and
/// their reference counterparts); unpaired losses read <see cref="Completions"/>, <see cref="Desirable"/> and, for
/// KTO, the mismatched-pair <see cref="KlCompletions"/>.
/// </summary>
public sealed class PreferenceForward
{
    /// <summary>Policy on the chosen completions.</summary>
    public CompletionLogProbs? Chosen { get; init; }

    /// <summary>Policy on the rejected completions.</summary>
    public CompletionLogProbs? Rejected { get; init; }

    /// <summary>Reference model on the chosen completions.</summary>
    public CompletionLogProbs? ReferenceChosen { get; init; }

    /// <summary>Reference model on the rejected completions.</summary>
    public CompletionLogProbs? ReferenceRejected { get; init; }

    /// <summary>Policy on unpaired completions.</summary>
    public CompletionLogProbs? Completions { get; init; }

    /// <summary>Reference model on unpaired completions.</summary>
    public CompletionLogProbs? ReferenceCompletions { get; init; }

    /// <summary>[B] bool: true where the unpaired completion is desirable.</summary>
    public Tensor? Desirable { get; init; }

    /// <summary>Policy on mismatched prompt/completion pairs (KTO's KL estimate).</summary>
    public CompletionLogProbs? KlCompletions { get; init; }

    /// <summary>Reference model on the same mismatched pairs.</summary>
    public CompletionLogProbs? ReferenceKlCompletions { get; init; }

    /// <summary>
    /// [B] optional per-pair margins from the data (for example a rating difference), for losses that use them;
    /// the built-in losses ignore it.
    /// </summary>
    public Tensor? Margins { get; init; }

    /// <summary>
    /// The processes training together; this batch is this process's share of the global batch. A loss that needs a
    /// statistic of the whole batch (KTO's reference point) sums it across them; per-example losses ignore it.
    /// </summary>
    public IProcessGroup Group { get; init; } = ProcessGroup.Single;

    internal static T Require<T>(T? value, string field, string loss) where T : class =>
        value ?? throw new InvalidOperationException($"The '{loss}' loss needs PreferenceForward.{field}, which is not set.");
}
