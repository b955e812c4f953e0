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
/// disposed: no native handle waits for the garbage collector. Parameters are updated a slice at a time with one
/// scratch buffer for the denominator, so an update allocates nothing as large as a parameter. The moments are float32 whatever the parameter's dtype (float64 for a float64 parameter);
/// a bfloat16 or float16 parameter also gets a float32 master copy that the update is applied to and that is copied
/// back into the parameter afterwards, so updates smaller than the half type's resolution accumulate instead of being
/// rounded away. Gradients are released (set to none, as PyTorch's <c>zero_grad</c> does by default) after each update.
/// </remarks>
internal sealed class AdamW : IDisposable
{
    const double Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;
    const string StepKey = "step.", AverageKey = "exp_avg.", SquareKey = "exp_avg_sq.", MasterKey = "master.";

    /// <summary>
    /// Elements updated at a time on CPU: a slice of the parameter, its gradient, both moments and the scratch
    /// denominator stay in cache across the update's passes (measured: the 4-layer scale benchmark's 45M-parameter
    /// update went from 0.36 to ~0.1 s), and no temporary as large as a parameter is allocated.
    /// </summary>
    internal const long CpuSliceElements = 1 << 18;

    /// <summary>Elsewhere (GPU): few slices, so that the kernel launches stay few; the scratch buffer is 64 MiB of float32.</summary>
    internal const long DeviceSliceElements = 1 << 24;

    readonly Slot[] _slots;
    readonly double _weightDecay;
    readonly long _sliceElements;
    readonly Dictionary<(ScalarType, string), Tensor> _scratch = [];
    readonly Scalar _beta1 = Beta1.ToScalar(), _beta2 = Beta2.ToScalar(), _oneMinusBeta1 = (1 - Beta1).ToScalar(),
        _oneMinusBeta2 = (1 - Beta2).ToScalar(), _epsilon = Epsilon.ToScalar();

    /// <param name="trainable">The parameters to update, by name (the names key the saved state).</param>
    /// <param name="learningRate">The first update's learning rate.</param>
    /// <param name="weightDecay">Decoupled weight decay λ.</param>
    /// <param name="sliceElements">Elements updated at a time; by default <see cref="CpuSliceElements"/> on CPU and
    /// <see cref="DeviceSliceElements"/> elsewhere.</param>
    public AdamW(IReadOnlyList<(string Name, Parameter Parameter)> trainable, double learningRate, double weightDecay, long? sliceElements = null)
    {
        LearningRate = learningRate;
        _weightDecay = weightDecay;
        _sliceElements = sliceElements ?? (trainable.Count > 0 && trainable[0].Parameter.device.type != DeviceType.CPU ? DeviceSliceElements : CpuSliceElements);
        ArgumentOutOfRangeException.ThrowIfLessThan(_sliceElements, 1, nameof(sliceElements));
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
            double correction1 = 1 - Math.Pow(Beta1, slot.Step), correction2 = 1 - Math.Pow(Beta2, slot.Step);
            using Scalar root = Math.Sqrt(correction2).ToScalar(), stepSize = (-LearningRate / correction1).ToScalar();
            Tensor target = slot.Master ?? slot.Parameter;
            var update = new Update(decay, root, stepSize);
            if (!target.is_contiguous() || !gradient.is_contiguous() || !slot.Parameter.is_contiguous())
            {
                Apply(update, target, gradient, slot.Average, slot.Square, slot.Master is null ? null : slot.Parameter, scratch: null);
                continue;
            }
            long count = target.numel();
            Tensor scratch = ScratchFor(target);
            for (long start = 0; start < count; start += _sliceElements)
            {
                using var inner = NewDisposeScope();
                long length = Math.Min(_sliceElements, count - start);
                Tensor Slice(Tensor t) => t.view(-1).narrow(0, start, length);
                Apply(update, Slice(target), Slice(gradient), Slice(slot.Average), Slice(slot.Square),
                    slot.Master is null ? null : Slice(slot.Parameter), scratch.narrow(0, 0, length));
            }
        }
    }

    /// <summary>The per-slot scalars of one update.</summary>
    readonly record struct Update(Scalar Decay, Scalar Root, Scalar StepSize);

    /// <summary>
    /// The update of matching pieces of a parameter (its master copy when it has one), gradient and moments, in place; the
    /// denominator is formed in <paramref name="scratch"/> (a fresh tensor when null), and <paramref name="halfParameter"/>
    /// receives the master copy's new values.
    /// </summary>
    void Apply(Update update, Tensor target, Tensor gradient, Tensor average, Tensor square, Tensor? halfParameter, Tensor? scratch)
    {
        Tensor g = gradient.dtype == target.dtype ? gradient : gradient.to_type(target.dtype);
        if (_weightDecay != 0)
            target.mul_(update.Decay);
        average.mul_(_beta1).add_(g, _oneMinusBeta1);
        square.mul_(_beta2).addcmul_(g, g, _oneMinusBeta2);
        Tensor denominator = (scratch is null ? square.sqrt() : scratch.copy_(square).sqrt_()).div_(update.Root).add_(_epsilon);
        target.addcdiv_(average, denominator, update.StepSize);
        halfParameter?.copy_(target);
    }

    /// <summary>The optimizer's one scratch buffer for <paramref name="target"/>'s dtype and device, made at the first need.</summary>
    Tensor ScratchFor(Tensor target)
    {
        var key = (target.dtype, target.device.ToString());
        if (!_scratch.TryGetValue(key, out Tensor? scratch))
        {
            long largest = _slots.Max(s => s.Average.numel());
            _scratch[key] = scratch = empty(Math.Min(_sliceElements, largest), target.dtype, target.device).DetachFromDisposeScope();
        }
        return scratch;
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
        foreach (Tensor scratch in _scratch.Values)
            scratch.Dispose();
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
