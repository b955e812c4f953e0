using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>Runs evaluation with a module in eval mode (no dropout) and puts its previous mode back.</summary>
internal static class EvaluationMode
{
    public static TResult Run<TResult>(nn.Module module, Func<TResult> evaluate)
    {
        bool training = module.training;
        module.eval();
        try
        {
            return evaluate();
        }
        finally
        {
            module.train(training);
        }
    }
}
