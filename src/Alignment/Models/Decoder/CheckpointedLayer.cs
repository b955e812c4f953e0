using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Alignment.Models.Decoder;

/// <summary>
/// Activation checkpointing of one decoder layer (transformers' <c>gradient_checkpointing</c>, PyTorch's reentrant
/// <c>torch.utils.checkpoint</c>): the forward pass runs without keeping the layer's activations, only its inputs; the
/// backward pass runs the layer again with gradients on and back-propagates through that recomputation, which
/// accumulates the layer's parameter gradients and returns the input's. The random-number state is saved at the first
/// run and restored for the second, so LoRA dropout draws the same masks, and put back afterwards.
/// </summary>
internal sealed class CheckpointedLayer : SingleTensorFunction<CheckpointedLayer>
{
    public override string Name => "DecoderBlock (checkpointed)";

    /// <param name="ctx">Autograd context.</param>
    /// <param name="vars">hidden [B, T, H], cos, sin, mask, the <see cref="DecoderBlock"/>.</param>
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (hidden, cos, sin, mask, layer) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], (DecoderBlock)vars[4]);
        // Saved with the inputs, the generator state lives exactly as long as the graph that needs it.
        ctx.save_for_backward([hidden, cos, sin, mask, get_rng_state()]);
        ctx.save_data("layer", layer);
        return layer.Forward(hidden, cos, sin, mask, null);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        List<Tensor> saved = ctx.get_saved_variables();
        var layer = (DecoderBlock)ctx.get_data("layer");
        Tensor now = get_rng_state();
        set_rng_state(saved[4]);
        Tensor input = saved[0].detach().requires_grad_(true);
        using (enable_grad())
            layer.Forward(input, saved[1], saved[2], saved[3], null).backward([gradOutput]);
        set_rng_state(now);
        return [input.grad!.MoveToOuterDisposeScope(), null!, null!, null!, null!]; // one per argument of apply
    }
}
