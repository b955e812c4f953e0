using Alignment.Models.Decoder;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Models;

/// <summary>
/// A linear head from hidden states to one scalar per token (<c>score</c>, as in transformers'
/// <c>LlamaForSequenceClassification</c> with one label): the reward of a reward model at the last real token, or the
/// per-token value of a PPO value function.
/// </summary>
public sealed class ScalarHead : nn.Module
{
#pragma warning disable IDE1006 // Hugging Face name
    private Parameter weight;
    private Parameter? bias;
#pragma warning restore IDE1006

    /// <summary>A head for hidden size <paramref name="hiddenSize"/>, initialised N(0, 1/(H+1)) as TRL's value head; no bias by default (HF's score head).</summary>
    /// <param name="hiddenSize">H.</param>
    /// <param name="hasBias">Whether the head has a bias.</param>
    /// <param name="dtype">Parameter dtype.</param>
    /// <param name="device">Parameter device.</param>
    /// <param name="generator">Random source of the initial weight; TorchSharp's global generator when null.</param>
    public ScalarHead(long hiddenSize, bool hasBias = false, ScalarType dtype = ScalarType.Float32, Device? device = null, Generator? generator = null) : base("score")
    {
        weight = new Parameter(randn(1, hiddenSize, ScalarType.Float32, generator: generator).div(Math.Sqrt(hiddenSize + 1)).to(dtype, device ?? CPU));
        if (hasBias)
            bias = new Parameter(zeros(1, dtype, device));
        RegisterComponents();
    }

    /// <summary>[1, H] weight.</summary>
    public Parameter Weight => weight;

    /// <summary>One scalar per position.</summary>
    /// <param name="hidden">[B, T, H]</param>
    /// <returns>[B, T]</returns>
    public Tensor PerToken(Tensor hidden) => F.linear(hidden, weight.As(hidden), bias?.As(hidden)).squeeze(-1);

    /// <summary>The scalar at each sequence's last real token (the rightmost position where the mask is 1; works for left and right padding).</summary>
    /// <param name="hidden">[B, T, H]</param>
    /// <param name="attentionMask">[B, T] 1 for real tokens.</param>
    /// <returns>[B]</returns>
    public Tensor AtLastToken(Tensor hidden, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        Tensor last = LastTokenIndex(attentionMask);                                    // [B]
        Tensor picked = hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[2])).squeeze(1); // [B, H]
        return F.linear(picked, weight.As(picked), bias?.As(picked)).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>Index of the rightmost real token of each row.</summary>
    /// <param name="attentionMask">[B, T]</param>
    /// <returns>[B] int64</returns>
    public static Tensor LastTokenIndex(Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        Tensor positions = arange(attentionMask.shape[1], dtype: ScalarType.Int64, device: attentionMask.device);
        return positions.mul(attentionMask.ne(0).to_type(ScalarType.Int64)).argmax(1).MoveToOuterDisposeScope();
    }
}
