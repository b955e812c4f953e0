using System.Globalization;
using Alignment.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Alignment.Training;

/// <summary>
/// AdamW with decoupled weight decay, computed as PyTorch's <c>torch.optim.AdamW</c> computes it (β = 0.9, 0.999,
/// ε = 1e-8): <c>p ← p·(1 − lr·λ)</c>, <c>m ← β₁m + (1 − β₁)g</c>, <c>v ← β₂v + (1 − β₂)g²</c>,
/// <c>p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)</c>, with a step count t per parameter.
/// </summary>
/// <remarks>
/// Every update runs in place and inside one dispose scope, and every scalar operand is created once per update and
/// disposed: no native handle waits for the garbage collector. The moments are float32 whatever the parameter's dtype (float64 for a float64 parameter);
/// a bfloat16 or float16 parameter also gets a float32 master copy that the update is applied to and that is copied
/// back into the parameter afterwards, so updates smaller than the half type's resolution accumulate instead of being
/// rounded away. Gradients are released (set to none, as PyTorch's <c>zero_grad</c> does by default) after each update.
/// </remarks>
internal sealed class AdamW : IDisposable
{
    const double Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;
    const string StepKey = "step.", AverageKey = "exp_avg.", SquareKey = "exp_avg_sq.", MasterKey = "master.";

    readonly Slot[] _slots;
    readonly double _weightDecay;
    readonly Scalar _beta1 = Beta1.ToScalar(), _beta2 = Beta2.ToScalar(), _oneMinusBeta1 = (1 - Beta1).ToScalar(),
        _oneMinusBeta2 = (1 - Beta2).ToScalar(), _epsilon = Epsilon.ToScalar();

    public AdamW(IReadOnlyList<(string Name, Parameter Parameter)> trainable, double learningRate, double weightDecay)
    {
        LearningRate = learningRate;
        _weightDecay = weightDecay;
        using var noGrad = no_grad();
        _slots = trainable.Select(t => new Slot(t.Name, t.Parameter)).ToArray();
    }

    /// <summary>The learning rate of the next update (the engine sets it from the schedule each step).</summary>
    public double LearningRate { get; set; }

    /// <summary>Bytes of optimizer state: two float32 moments per trainable element, plus the master copies.</summary>
    public long StateBytes => _slots.Sum(s => s.Average.numel() * s.Average.element_size() * (s.Master is null ? 2 : 3));

    /// <summary>One update of every parameter that has a gradient; parameters without one are left alone, as PyTorch does.</summary>
    public void Step()
    {
        using var scope = NewDisposeScope(); // each read of .grad makes a wrapper; the temporaries die with it
        using var noGrad = no_grad();
        using Scalar decay = (1 - LearningRate * _weightDecay).ToScalar();
        foreach (Slot slot in _slots)
        {
            if (slot.Parameter.grad is not { } gradient)
                continue;
            slot.Step++;
            Tensor target = slot.Master ?? slot.Parameter;
            Tensor g = gradient.dtype == target.dtype ? gradient : gradient.to_type(target.dtype);
            if (_weightDecay != 0)
                target.mul_(decay);
            slot.Average.mul_(_beta1).add_(g, _oneMinusBeta1);
            slot.Square.mul_(_beta2).addcmul_(g, g, _oneMinusBeta2);
            double correction1 = 1 - Math.Pow(Beta1, slot.Step), correction2 = 1 - Math.Pow(Beta2, slot.Step);
            using Scalar root = Math.Sqrt(correction2).ToScalar(), stepSize = (-LearningRate / correction1).ToScalar();
            Tensor denominator = slot.Square.sqrt().div_(root).add_(_epsilon);
            target.addcdiv_(slot.Average, denominator, stepSize);
            if (slot.Master is not null)
                slot.Parameter.copy_(slot.Master);
        }
    }

    /// <summary>Releases every gradient (the next backward pass allocates them again).</summary>
    public void ZeroGrad()
    {
        foreach (Slot slot in _slots)
            slot.Parameter.grad = null;
    }

    /// <summary>The state as named float32 tensors (moments, master copies) and the step counts as metadata.</summary>
    public void Save(string path)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        var metadata = new Dictionary<string, string>();
        foreach (Slot slot in _slots)
        {
            tensors.Add(new(AverageKey + slot.Name, slot.Average));
            tensors.Add(new(SquareKey + slot.Name, slot.Square));
            if (slot.Master is not null)
                tensors.Add(new(MasterKey + slot.Name, slot.Master));
            metadata[StepKey + slot.Name] = slot.Step.ToString(CultureInfo.InvariantCulture);
        }
        SafeTensors.Save(path, tensors, metadata);
    }

    /// <summary>Loads what <see cref="Save"/> wrote, after checking every entry is there with its shape.</summary>
    /// <exception cref="InvalidDataException">The file is damaged or was written for other parameters; the message names the file and entry.</exception>
    public void Load(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        var steps = new long[_slots.Length];
        for (int i = 0; i < _slots.Length; i++)
        {
            Slot slot = _slots[i];
            if (!file.Metadata.TryGetValue(StepKey + slot.Name, out string? text) ||
                !long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out steps[i]))
                throw new InvalidDataException($"'{path}' has no step count for '{slot.Name}': it was written for other trainable parameters.");
            foreach (string key in slot.Master is null ? [AverageKey, SquareKey] : new[] { AverageKey, SquareKey, MasterKey })
                if (!file.Entries.TryGetValue(key + slot.Name, out SafeTensorEntry? entry) || !entry.Shape.SequenceEqual(slot.Parameter.shape))
                    throw new InvalidDataException($"'{path}' has no entry '{key}{slot.Name}' of shape [{string.Join(", ", slot.Parameter.shape)}]: " +
                        "it was written for other trainable parameters.");
        }
        using var noGrad = no_grad();
        for (int i = 0; i < _slots.Length; i++)
        {
            Slot slot = _slots[i];
            slot.Step = steps[i];
            Copy(file, AverageKey + slot.Name, slot.Average);
            Copy(file, SquareKey + slot.Name, slot.Square);
            if (slot.Master is not null)
                Copy(file, MasterKey + slot.Name, slot.Master);
        }
    }

    static void Copy(SafeTensorsFile file, string name, Tensor destination)
    {
        using Tensor saved = file.Read(name);
        destination.copy_(saved);
    }

    public void Dispose()
    {
        foreach (Slot slot in _slots)
            slot.Dispose();
        foreach (Scalar scalar in new[] { _beta1, _beta2, _oneMinusBeta1, _oneMinusBeta2, _epsilon })
            scalar.Dispose();
    }

    /// <summary>float64 parameters keep float64 state; every other dtype float32.</summary>
    static ScalarType StateType(Tensor parameter) => parameter.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    sealed class Slot(string name, Parameter parameter) : IDisposable
    {
        public string Name { get; } = name;
        public Parameter Parameter { get; } = parameter;
        public Tensor Average { get; } = zeros(parameter.shape, StateType(parameter), parameter.device).DetachFromDisposeScope();
        public Tensor Square { get; } = zeros(parameter.shape, StateType(parameter), parameter.device).DetachFromDisposeScope();
        public Tensor? Master { get; } = StateType(parameter) == parameter.dtype ? null
            : parameter.detach().to_type(ScalarType.Float32).DetachFromDisposeScope(); // a copy: to_type of another dtype allocates
        public long Step { get; set; }

        public void Dispose()
        {
            Average.Dispose();
            Square.Dispose();
            Master?.Dispose();
        }
    }
}
