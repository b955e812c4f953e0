using Alignment.Models.Decoder;
using Alignment.Models.Gemma;
using Alignment.Models.Gpt2;
using Alignment.Models.Llama;
using Alignment.Native;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Alignment.Models;

/// <summary>How to load a model folder.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>dtype of the weights in memory (float32 or bfloat16; float16 also works). Null keeps float32.</summary>
    public ScalarType? DType { get; init; }

    /// <summary>Device for the weights. Null means CPU.</summary>
    public Device? Device { get; init; }
}

/// <summary>
/// A causal decoder that computes what Hugging Face transformers' <c>…ForCausalLM</c> of its family computes, with the
/// same parameter names, loaded from and saved to Hugging Face model folders: the Llama family (Llama 2/3, Mistral,
/// Qwen2/2.5/3, SmolLM, TinyLlama), Gemma 1/2/3 (text), Phi-3/3.5 and GPT-2. <see cref="DecoderConfig.ModelType"/> picks the family.
/// </summary>
public sealed class LlamaForCausalLM : nn.Module, ICausalLM
{
    private readonly DecoderBackbone _backbone; // "model" (Llama, Gemma, Phi-3) or "transformer" (GPT-2)
    private readonly Projection? _lmHead;       // "lm_head", absent when tied

    /// <summary>Files of a model folder, besides the weights and config.json, that travel with a saved model.</summary>
    public static IReadOnlyList<string> CompanionFiles { get; } =
    [
        "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
        "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja",
    ];

    /// <summary>A randomly initialised model of the given architecture on the CPU, its parameters created in <paramref name="dtype"/>.</summary>
    /// <exception cref="InvalidDataException">The parameters would not fit in this machine's memory (a config whose sizes are wrong).</exception>
    public LlamaForCausalLM(DecoderConfig config, ScalarType dtype = ScalarType.Float32) : base(nameof(LlamaForCausalLM))
    {
        ArgumentNullException.ThrowIfNull(config);
        ModelMemory.EnsureFits(config, dtype);
        Config = config;
        _backbone = config.ModelType == "gpt2" ? new Gpt2Backbone("transformer", config, dtype)
            : config.IsGemma ? new GemmaBackbone("model", config, dtype)
            : new LlamaBackbone("model", config, dtype);
        register_module(_backbone.GetName(), _backbone);
        if (!config.TieWordEmbeddings)
            register_module("lm_head", _lmHead = new Projection("lm_head", config.HiddenSize, config.VocabSize, hasBias: false, dtype));
    }

    /// <summary>
    /// Re-initialises every weight as transformers' <c>_init_weights</c> does for a model trained from scratch: linear
    /// and embedding weights from N(0, <paramref name="std"/>²) (<c>initializer_range</c>, 0.02 by default), biases 0,
    /// norm weights 1.
    /// </summary>
    public void InitializeWeights(double std = 0.02, long seed = 0)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in named_parameters())
        {
            if (IsNormWeight(name))
                parameter.fill_(Config.IsGemma ? 0 : 1); // Gemma's norms scale by (1 + weight)
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
                parameter.zero_();
            else if (Config.ModelType == "gpt2" && name.EndsWith("c_proj.weight", StringComparison.Ordinal))
                parameter.normal_(0, std / Math.Sqrt(2.0 * Config.NumHiddenLayers), generator); // GPT-2's scaled residual projections
            else
                parameter.normal_(0, std, generator);
        }
    }

    /// <summary>Whether a parameter is a norm's scale (<c>…norm.weight</c>, GPT-2's <c>ln_1</c>/<c>ln_2</c>/<c>ln_f</c>).</summary>
    internal static bool IsNormWeight(string name) => name.EndsWith("norm.weight", StringComparison.Ordinal)
        || name.EndsWith(".ln_1.weight", StringComparison.Ordinal) || name.EndsWith(".ln_2.weight", StringComparison.Ordinal)
        || name.EndsWith(".ln_f.weight", StringComparison.Ordinal);

    /// <inheritdoc />
    public DecoderConfig Config { get; }

    /// <summary>
    /// Activation checkpointing (transformers' <c>gradient_checkpointing_enable()</c>): in training mode with gradients
    /// on, each decoder layer keeps only its input for backward and is run again there, trading one more forward pass
    /// for the activations of every layer. Trainers set it from <c>TrainingOptions.GradientCheckpointing</c>.
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// The dtype activations are computed in, whatever the weights are stored in (autocast, as transformers' <c>bf16</c>
    /// and <c>fp16</c> options do): the embeddings' output is cast to it and every weight is used as a copy in it, so
    /// float32 weights stay the master copy and receive float32 gradients. Null computes in the weights' dtype.
    /// Trainers set it from <c>TrainingOptions.Bf16</c>/<c>Fp16</c> for the run.
    /// </summary>
    public ScalarType? ComputeDType { get; set; }

    /// <summary>The options of the attached LoRA adapters, or null when there are none.</summary>
    public LoraOptions? LoraOptions { get; internal set; }

    /// <summary>The folder this model was loaded from, if any (its tokenizer files are copied on save).</summary>
    public string? SourceFolder { get; internal set; }

    /// <inheritdoc />
    /// <remarks>In <see cref="ComputeDType"/> when one is set (a cast copy whose gradient flows back to the weight).</remarks>
    public Tensor LmHeadWeight => ComputeDType is { } compute ? StoredLmHeadWeight.As(compute) : StoredLmHeadWeight;

    Tensor StoredLmHeadWeight => _lmHead?.Weight ?? _backbone.Embeddings.weight!;

    /// <inheritdoc />
    public Device Device => _backbone.Norm.parameters().First().device;

    /// <summary>The dtype of the weights.</summary>
    public ScalarType DType => _backbone.Norm.parameters().First().dtype;

    /// <summary>Every projection that can carry a LoRA adapter, by its Hugging Face module name.</summary>
    internal IEnumerable<(string Name, Projection Projection)> Projections =>
        _backbone.Layers.SelectMany((layer, i) => layer.Projections.Select(p => ($"{_backbone.LayerPrefix}{i}.{p.Name}", p.Projection)));

    /// <summary>Loads a Hugging Face model folder (config.json and safetensors weights, single file or sharded).</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="options">dtype and device; float32 on CPU when null.</param>
    /// <exception cref="FileNotFoundException">config.json or the weights are missing.</exception>
    /// <exception cref="InvalidDataException">The config is unsupported, or the weights do not fit it (every problem listed).</exception>
    public static LlamaForCausalLM FromPretrained(string folder, ModelLoadOptions? options = null)
    {
        TorchRuntime.EnsureLoaded();
        if (options?.Device is { type: DeviceType.CUDA } cuda && !torch.cuda.is_available())
            throw new InvalidOperationException($"Device '{cuda}' was asked for, but TorchSharp sees no CUDA device: the app references a CPU " +
                "backend (TorchSharp-cpu). Reference TorchSharp-cuda-linux or TorchSharp-cuda-windows instead, and check the NVIDIA driver.");
        string configPath = Path.Combine(folder, "config.json");
        DecoderConfig config = DecoderConfig.Load(configPath);
        // Parameters are created in the target dtype: a bfloat16 checkpoint never has a float32 copy of the model.
        LlamaForCausalLM model;
        try
        {
            model = new LlamaForCausalLM(config, options?.DType ?? ScalarType.Float32);
        }
        catch (InvalidDataException e) // the constructor refuses sizes that cannot fit: say which file described them
        {
            throw new InvalidDataException($"'{configPath}': {e.Message}", e);
        }
        try
        {
            using (SafeTensorsCheckpoint checkpoint = SafeTensorsCheckpoint.Open(folder))
                model.LoadWeights(checkpoint);
            if (options?.Device is { } device)
                model.to(device);
            model.SourceFolder = Path.GetFullPath(folder);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies a checkpoint's weights into this model. Tolerated as transformers tolerates them: a tied model's stored
    /// <c>lm_head.weight</c>, buffers older checkpoints saved (rotary frequencies, GPT-2's causal masks), GPT-2 names
    /// without <c>transformer.</c> (OpenAI's own checkpoint), and <paramref name="alsoIgnored"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">Tensors are missing, unexpected or of the wrong shape (every one listed).</exception>
    internal void LoadWeights(SafeTensorsCheckpoint checkpoint, params string[] alsoIgnored)
    {
        bool gpt2 = Config.ModelType == "gpt2";
        var ignorable = new HashSet<string>(alsoIgnored, StringComparer.Ordinal);
        if (Config.TieWordEmbeddings)
            ignorable.Add("lm_head.weight"); // some tied checkpoints store the copy anyway
        foreach (string name in checkpoint.Entries.Keys.Where(n => n.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal)
                     || gpt2 && (n.EndsWith(".attn.bias", StringComparison.Ordinal) || n.EndsWith(".attn.masked_bias", StringComparison.Ordinal))))
            ignorable.Add(name);
        checkpoint.LoadInto(this, ignorable, optionalPrefix: gpt2 ? "transformer." : null);
    }

    /// <summary>
    /// Saves a Hugging Face model folder that this library and transformers load back: config.json (torch_dtype set),
    /// safetensors weights (sharded above <paramref name="maxShardBytes"/>), and the tokenizer and generation files of
    /// <see cref="SourceFolder"/>. Active LoRA adapters are merged into the saved weights (the model itself is unchanged).
    /// </summary>
    /// <param name="folder">Destination folder (created when absent).</param>
    /// <param name="maxShardBytes">Largest shard, in bytes.</param>
    public void SavePretrained(string folder, long maxShardBytes = 5L << 30)
    {
        Directory.CreateDirectory(folder);
        using var scope = NewDisposeScope();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        var adapters = Projections.Where(p => p.Projection.HasLora && p.Projection.LoraEnabled)
            .ToDictionary(p => p.Name + ".weight", p => p.Projection);
        foreach (var (name, tensor) in state_dict())
        {
            if (name.Contains(".lora_", StringComparison.Ordinal))
                continue;
            Tensor value = tensor;
            if (adapters.TryGetValue(name, out Projection? projection))
                using (no_grad())
                    value = tensor.add(projection.Delta());
            tensors.Add(new(name, value));
        }
        SafeTensorsCheckpoint.Save(folder, tensors, maxShardBytes);
        Config.Save(Path.Combine(folder, "config.json"), DTypeName(DType));
        if (SourceFolder is not null && Path.GetFullPath(folder) != SourceFolder)
            foreach (string file in CompanionFiles)
                if (File.Exists(Path.Combine(SourceFolder, file)))
                    File.Copy(Path.Combine(SourceFolder, file), Path.Combine(folder, file), overwrite: true);
    }

    /// <inheritdoc />
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, KvCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.dim() != 2 || inputIds.dtype != ScalarType.Int64)
            throw new ArgumentException($"inputIds must be [B, T] int64, got {inputIds.dtype} [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        long batch = inputIds.shape[0], time = inputIds.shape[1], past = cache?.Length ?? 0;
        if (attentionMask is not null && (attentionMask.dim() != 2 || attentionMask.shape[0] != batch || attentionMask.shape[1] != past + time))
            throw new ArgumentException(
                $"attentionMask must be [{batch}, {past + time}] (cached + new positions), got [{string.Join(", ", attentionMask.shape)}].", nameof(attentionMask));
        if (positionIds is not null && !positionIds.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"positionIds must be [{batch}, {time}] like inputIds.", nameof(positionIds));
        // Packed rows restart their positions per sequence: what must fit is the largest position, not the row.
        long positions = positionIds is null || positionIds.numel() == 0 ? past + time : positionIds.max().item<long>() + 1;
        if (positions > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"{positions} positions exceed the model's max_position_embeddings ({Config.MaxPositionEmbeddings}): " +
                "shorten the sequences (max_length) or generate fewer tokens.", nameof(inputIds));
        if (inputIds.numel() > 0)
        {
            using var range = NewDisposeScope();
            var (low, high) = (inputIds.min().item<long>(), inputIds.max().item<long>());
            if (low < 0 || high >= Config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(inputIds), $"inputIds hold token id {(low < 0 ? low : high)}, outside the model's vocabulary " +
                    $"[0, {Config.VocabSize}): the data or the tokenizer does not belong to this model (vocab_size in config.json).");
        }

        using var scope = NewDisposeScope();
        Device device = inputIds.device;
        Tensor segments = (attentionMask ?? ones(batch, past + time, ScalarType.Int64, device)).to_type(ScalarType.Int64); // [B, S]
        positionIds ??= segments.ne(0).to_type(ScalarType.Int64).cumsum(1).sub(1).clamp_min(0).narrow(1, past, time);

        Tensor hidden = _backbone.Embed(inputIds, positionIds, ComputeDType);       // [B, T, H]
        // Angles and masks once per distinct rotary embedding and window (Gemma's layers differ in both).
        var angles = new Dictionary<RotaryEmbedding, (Tensor Cos, Tensor Sin)>();
        var masks = new Dictionary<int, Tensor>();
        Tensor none = empty(0, hidden.dtype, device);
        var inputs = new (Tensor Cos, Tensor Sin, Tensor Mask)[_backbone.Layers.Count];
        for (int i = 0; i < inputs.Length; i++)
        {
            RotaryEmbedding? rope = _backbone.RopeOf(i);
            var (cos, sin) = rope is null ? (none, none)
                : angles.TryGetValue(rope, out var known) ? known : angles[rope] = rope.Angles(positionIds, hidden.dtype);
            int? window = Config.WindowOf(i);
            if (!masks.TryGetValue(window ?? 0, out Tensor? mask))
                masks[window ?? 0] = mask = AttentionMask(segments, time, past, hidden.dtype, window);
            inputs[i] = (cos, sin, mask);
        }
        bool checkpoint = GradientCheckpointing && training && is_grad_enabled() && cache is null;
        if (checkpoint && !hidden.requires_grad)
            hidden = hidden.detach().requires_grad_(true); // frozen embeddings (LoRA): the layers' function must still be in the graph
        for (int i = 0; i < _backbone.Layers.Count; i++)
        {
            // Each layer's intermediates are released when it ends (what backward needs, autograd keeps): a scope around
            // the whole pass would hold every layer's until the pass returns — all activations, even under no-grad.
            using var layerScope = NewDisposeScope();
            DecoderBlock layer = _backbone.Layers[i];
            var (cos, sin, mask) = inputs[i];
            hidden = (checkpoint ? CheckpointedLayer.apply(hidden, cos, sin, mask, layer) : layer.Forward(hidden, cos, sin, mask, cache?[i]))
                .MoveToOuterDisposeScope();
        }
        return _backbone.Norm.call(hidden).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    /// <remarks>With <see cref="DecoderConfig.FinalLogitSoftcapping"/> c (Gemma 2): c·tanh(hidden · LmHeadWeightᵀ / c).</remarks>
    public Tensor Logits(Tensor hidden)
    {
        if (Config.FinalLogitSoftcapping is not { } cap)
            return F.linear(hidden, LmHeadWeight);
        using var scope = NewDisposeScope();
        return F.linear(hidden, LmHeadWeight).div(cap).tanh().mul(cap).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Additive mask [B, 1, T, S]: 0 where query i (at absolute position P + i) may attend key j — j ≤ P + i, key j is
    /// a real token of the query's own segment, and within the sliding window if any — and the dtype's minimum elsewhere
    /// (not −∞, so that a row with nothing to attend, a left-padding query, stays finite).
    /// </summary>
    /// <param name="segments">[B, S] 0 for padding, otherwise a segment id: 1 everywhere for ordinary batches, 1..n for
    /// n sequences packed into one row (padding-free packing).</param>
    /// <param name="time">New positions T.</param>
    /// <param name="past">Cached positions P.</param>
    /// <param name="dtype">dtype of the mask (the hidden states').</param>
    /// <param name="window">Sliding-window width, or null.</param>
    internal static Tensor AttentionMask(Tensor segments, long time, long past, ScalarType dtype, int? window)
    {
        Device device = segments.device;
        Tensor keep = segments.ne(0);
        Tensor queries = arange(past, past + time, dtype: ScalarType.Int64, device: device).unsqueeze(1); // [T, 1]
        Tensor keys = arange(0, past + time, dtype: ScalarType.Int64, device: device).unsqueeze(0);       // [1, S]
        Tensor allowed = keys.le(queries);
        if (window is { } w)
            allowed = allowed.logical_and(queries.sub(keys).lt(w));
        allowed = allowed.unsqueeze(0).unsqueeze(0).logical_and(keep.unsqueeze(1).unsqueeze(1));        // [B, 1, T, S]
        Tensor querySegments = segments.narrow(1, past, time).unsqueeze(1).unsqueeze(-1);                // [B, 1, T, 1]
        allowed = allowed.logical_and(querySegments.eq(segments.unsqueeze(1).unsqueeze(1)));
        double minimum = finfo(dtype).min;
        return zeros(allowed.shape, dtype, device).masked_fill(allowed.logical_not(), minimum);
    }

    static string DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        ScalarType.Float64 => "float64",
        _ => "float32",
    };
}
