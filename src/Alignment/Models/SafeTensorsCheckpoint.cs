using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Alignment.Models;

/// <summary>
/// The weights of a Hugging Face model folder: <c>model.safetensors</c>, or the shards listed by
/// <c>model.safetensors.index.json</c>.
/// </summary>
internal sealed class SafeTensorsCheckpoint : IDisposable
{
    /// <summary>File name of a single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>File name of a sharded checkpoint's index.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    readonly Dictionary<string, SafeTensorsFile> _fileOf;
    readonly List<SafeTensorsFile> _files;

    SafeTensorsCheckpoint(List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> fileOf)
    {
        _files = files;
        _fileOf = fileOf;
    }

    /// <summary>Every tensor of the checkpoint, by name.</summary>
    public IReadOnlyDictionary<string, SafeTensorEntry> Entries =>
        _fileOf.ToDictionary(kv => kv.Key, kv => kv.Value.Entries[kv.Key]);

    /// <summary>Opens the weights in <paramref name="folder"/>.</summary>
    /// <exception cref="FileNotFoundException">Neither weights file exists, or a shard named by the index is missing.</exception>
    /// <exception cref="InvalidDataException">The index or a header is malformed, or the index names a tensor its shard lacks.</exception>
    public static SafeTensorsCheckpoint Open(string folder)
    {
        string index = Path.Combine(folder, IndexFileName);
        string single = Path.Combine(folder, SingleFileName);
        var files = new List<SafeTensorsFile>();
        var fileOf = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        try
        {
            if (File.Exists(index))
            {
                Dictionary<string, string> weightMap = ReadIndex(index);
                foreach (string shard in weightMap.Values.Distinct().Order(StringComparer.Ordinal))
                {
                    SafeTensorsFile file = SafeTensorsFile.Open(Path.Combine(folder, shard));
                    files.Add(file);
                }
                var byName = files.ToDictionary(f => Path.GetFileName(f.Path), StringComparer.Ordinal);
                foreach (var (tensor, shard) in weightMap)
                {
                    SafeTensorsFile file = byName[shard];
                    if (!file.Entries.ContainsKey(tensor))
                        throw new InvalidDataException($"'{index}' places '{tensor}' in '{shard}', which has no such tensor.");
                    fileOf[tensor] = file;
                }
            }
            else if (File.Exists(single))
            {
                SafeTensorsFile file = SafeTensorsFile.Open(single);
                files.Add(file);
                foreach (string name in file.Entries.Keys)
                    fileOf[name] = file;
            }
            else
            {
                throw new FileNotFoundException($"'{folder}' has neither {SingleFileName} nor {IndexFileName}.", single);
            }
            return new SafeTensorsCheckpoint(files, fileOf);
        }
        catch
        {
            files.ForEach(f => f.Dispose());
            throw;
        }
    }

    /// <summary>Reads one tensor into a new CPU tensor of its stored dtype.</summary>
    /// <exception cref="KeyNotFoundException">No tensor of that name.</exception>
    public Tensor Read(string name) =>
        _fileOf.TryGetValue(name, out SafeTensorsFile? file) ? file.Read(name)
            : throw new KeyNotFoundException($"The checkpoint has no tensor named '{name}'.");

    /// <summary>
    /// Copies the checkpoint into the module's parameters and persistent buffers, matched by name, one tensor at a time
    /// (each converted to the parameter's dtype and device).
    /// </summary>
    /// <param name="module">The module; its state-dict names are the Hugging Face names.</param>
    /// <param name="ignoreUnexpected">Names (exact) that may be in the checkpoint without a place in the module.</param>
    /// <param name="optionalPrefix">A prefix of the module's names that the checkpoint may leave out (transformers'
    /// <c>base_model_prefix</c>: GPT-2 checkpoints saved from the base model say <c>h.0…</c> for <c>transformer.h.0…</c>).</param>
    /// <exception cref="InvalidDataException">
    /// Tensors are missing, unexpected or of the wrong shape; the message lists every one of them.
    /// </exception>
    public void LoadInto(nn.Module module, IReadOnlySet<string>? ignoreUnexpected = null, string? optionalPrefix = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        Dictionary<string, Tensor> targets = module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        // Each model name → its name in the checkpoint: as is, or without the optional prefix when only that is there.
        Dictionary<string, string> stored = targets.Keys.ToDictionary(n => n, n =>
            optionalPrefix is not null && !_fileOf.ContainsKey(n) && n.StartsWith(optionalPrefix, StringComparison.Ordinal)
                && _fileOf.ContainsKey(n[optionalPrefix.Length..]) ? n[optionalPrefix.Length..] : n, StringComparer.Ordinal);
        var used = stored.Values.ToHashSet(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (string name in targets.Keys.Where(n => !_fileOf.ContainsKey(stored[n])).Order(StringComparer.Ordinal))
            problems.Add($"missing: {name} (the model expects [{string.Join(", ", targets[name].shape)}])");
        foreach (string name in _fileOf.Keys.Where(n => !used.Contains(n) && ignoreUnexpected?.Contains(n) != true).Order(StringComparer.Ordinal))
            problems.Add($"unexpected: {name}");
        foreach (var (name, target) in targets)
        {
            if (_fileOf.TryGetValue(stored[name], out SafeTensorsFile? file) && !file.Entries[stored[name]].Shape.SequenceEqual(target.shape))
                problems.Add($"wrong shape: {stored[name]} is [{string.Join(", ", file.Entries[stored[name]].Shape)}] in '{Path.GetFileName(file.Path)}', the model expects [{string.Join(", ", target.shape)}]");
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"The checkpoint does not fit the model ({problems.Count} problem(s)):{Environment.NewLine}  " +
                                           string.Join(Environment.NewLine + "  ", problems));

        using var noGrad = no_grad();
        foreach (var (name, target) in targets)
        {
            using Tensor loaded = Read(stored[name]);
            if (loaded.is_floating_point())
            {
                using Tensor finite = loaded.isfinite().all();
                if (!finite.item<bool>())
                    throw new InvalidDataException($"'{_fileOf[stored[name]].Path}': weight '{stored[name]}' holds NaN or infinite values; the checkpoint is damaged.");
            }
            target.copy_(loaded);
        }
    }

    public static void Save(string folder, IReadOnlyList<KeyValuePair<string, Tensor>> tensors, long maxShardBytes = 5L << 30)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxShardBytes, 1);
        Directory.CreateDirectory(folder);
        var shards = new List<List<KeyValuePair<string, Tensor>>> { new() };
        long current = 0, total = 0;
        foreach (var pair in tensors)
        {
            long bytes = pair.Value.numel() * SafeTensors.ElementSize(pair.Value.dtype);
            if (current > 0 && current + bytes > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(pair);
            current += bytes;
            total += bytes;
        }

        // New files first (each written to a temporary name and renamed), stale ones last: a crash part-way leaves the
        // previous weights or the new ones readable, never neither.
        var written = new HashSet<string>(StringComparer.Ordinal);
        if (shards.Count == 1)
        {
            SafeTensors.Save(Path.Combine(folder, SingleFileName), shards[0]);
            written.Add(SingleFileName);
        }
        else
        {
            var weightMap = new JsonObject();
            for (int i = 0; i < shards.Count; i++)
            {
                string name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                SafeTensors.Save(Path.Combine(folder, name), shards[i]);
                written.Add(name);
                foreach (var (tensor, _) in shards[i])
                    weightMap[tensor] = name;
            }
            var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
            string indexPath = Path.Combine(folder, IndexFileName);
            File.WriteAllText(indexPath + ".tmp", index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.Move(indexPath + ".tmp", indexPath, overwrite: true);
            written.Add(IndexFileName);
        }
        foreach (string stale in Directory.EnumerateFiles(folder, "model*.safetensors*"))
            if (!written.Contains(Path.GetFileName(stale)))
                File.Delete(stale);
    }

    /// <inheritdoc />
    public void Dispose() => _files.ForEach(f => f.Dispose());

    static Dictionary<string, string> ReadIndex(string path)
    {
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException("empty");
            var map = root["weight_map"]?.AsObject() ?? throw new InvalidDataException("no \"weight_map\" object");
            return map.ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>(), StringComparer.Ordinal);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException or NullReferenceException)
        {
            throw new InvalidDataException($"'{path}' is not a valid safetensors index: {e.Message}", e);
        }
    }
}
