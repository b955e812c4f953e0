using System.Text.Json.Nodes;

namespace Alignment.Training;

/// <summary>Checkpoints of the engine: what a checkpoint records, and the resume that reads it back.</summary>
internal sealed partial class TrainingLoop<T>
{
    /// <summary>Writes checkpoint-STEP (see <see cref="CheckpointFiles"/>), or nothing without an output folder.</summary>
    string? Save(LoopState state, AdamW optimizer)
    {
        if (_options.OutputDir is null)
            return null;
        if (_group.WorldSize > 1)
        {
            string? written = _group.Rank == 0 ? SaveHere(state, optimizer) : null;
            _group.Barrier(); // no process runs ahead of a checkpoint that is not yet complete
            return written ?? CheckpointFiles.FolderOf(_options.OutputDir, state.Step);
        }
        return SaveHere(state, optimizer);
    }

    string SaveHere(LoopState state, AdamW optimizer)
    {
        var json = new JsonObject
        {
            ["seed"] = _options.Seed,
            ["total_steps"] = TotalSteps,
            ["best_metric"] = state.Best,
            ["best_step"] = state.BestStep,
            ["evals_without_improvement"] = state.EvalsWithoutImprovement,
            ["config"] = ConfigSnapshot(),
            ["log_history"] = new JsonArray(state.History.Select(h => (JsonNode)new JsonObject(h.Select(kv =>
                new KeyValuePair<string, JsonNode?>(kv.Key, double.IsFinite(kv.Value) ? kv.Value : null)))).ToArray()),
        };
        _scaler?.Save(json);
        _task.SaveState?.Invoke(json);
        string folder = CheckpointFiles.Save(_options.OutputDir!, state.Step, _task.Trainable, optimizer, json, _task.ExtraTensors);
        LogCheckpoint(_logger, folder);
        if (_options.SaveTotalLimit is { } limit)
            CheckpointFiles.KeepNewest(_options.OutputDir!, limit, state.BestStep);
        foreach (ITrainingCallback callback in _callbacks)
            callback.OnCheckpoint(folder);
        return folder;
    }

    /// <summary>What a checkpoint records of the options, to refuse a resume that would silently change them.</summary>
    JsonObject ConfigSnapshot()
    {
        var config = new JsonObject
        {
            ["learning_rate"] = _options.LearningRate, ["lr_scheduler_type"] = _options.Schedule.ToString().ToLowerInvariant(),
            ["warmup_ratio"] = _options.WarmupRatio, ["warmup_steps"] = _options.WarmupSteps, ["min_lr"] = _options.MinLr, ["min_lr_rate"] = _options.MinLrRate,
            ["weight_decay"] = _options.WeightDecay, ["per_device_train_batch_size"] = _options.BatchSize,
            ["gradient_accumulation_steps"] = _options.GradientAccumulationSteps, ["num_train_epochs"] = _options.Epochs,
            ["max_steps"] = _options.MaxSteps, ["max_grad_norm"] = _options.MaxGradNorm, ["seed"] = _options.Seed,
            ["train_examples"] = _train.Count, ["bf16"] = _options.Bf16, ["fp16"] = _options.Fp16,
            ["world_size"] = _group.WorldSize, ["total_train_batch_size"] = ExamplesPerStep,
        };
        foreach (var (key, value) in _task.Config ?? new Dictionary<string, string>())
            config[key] = value;
        return config;
    }

    /// <summary>
    /// "name: saved → now" for each recorded option that differs (a checkpoint from before snapshots has none). How the
    /// global batch is split — processes, per-device batch, accumulation — may change as long as the global batch stays.
    /// </summary>
    List<string> ConfigChanges(JsonObject? saved)
    {
        var changes = new List<string>();
        if (saved is null)
            return changes;
        JsonObject current = ConfigSnapshot();
        bool sameGlobalBatch = saved["total_train_batch_size"]?.ToJsonString() == current["total_train_batch_size"]!.ToJsonString();
        foreach (var (key, now) in current)
        {
            if (sameGlobalBatch && key is "world_size" or "per_device_train_batch_size" or "gradient_accumulation_steps")
                continue;
            string before = saved[key]?.ToJsonString() ?? "null", after = now?.ToJsonString() ?? "null";
            if (saved.ContainsKey(key) && before != after)
                changes.Add($"{key}: {before} → {after}");
        }
        return changes;
    }

    /// <summary>
    /// Restores the newest complete checkpoint; a damaged one (a truncated or corrupt file) is passed over with a warning
    /// for the one before it. Null when there is none.
    /// </summary>
    /// <exception cref="InvalidDataException">Every checkpoint is damaged; the message names the newest one's file.</exception>
    (string Checkpoint, LoopState State)? Resume(AdamW optimizer)
    {
        InvalidDataException? first = null;
        foreach (string checkpoint in CheckpointFiles.Newest(_options.OutputDir!))
        {
            try
            {
                return (checkpoint, Restore(checkpoint, optimizer));
            }
            catch (InvalidDataException e)
            {
                first ??= e;
                LogDamaged(_logger, checkpoint, e.Message);
            }
        }
        return first is null ? null : throw new InvalidDataException("No checkpoint could be resumed from: " + first.Message, first);
    }

    LoopState Restore(string checkpoint, AdamW optimizer)
    {
        JsonObject json = CheckpointFiles.Restore(checkpoint, _task.Trainable, optimizer, _task.ExtraTensors);
        if (!_options.ResumeWithChangedConfig && ConfigChanges(json["config"] as JsonObject) is { Count: > 0 } changes)
            throw new ArgumentException($"The options differ from those '{checkpoint}' was trained with: {string.Join("; ", changes)}. Resume with the " +
                "same options, or set ResumeWithChangedConfig (align: --resume-with-changed-config) to continue anyway.");
        var state = new LoopState
        {
            Step = json["global_step"]!.GetValue<int>(),
            Best = json["best_metric"]?.GetValue<double>(),
            BestStep = json["best_step"]?.GetValue<int>(),
            EvalsWithoutImprovement = json["evals_without_improvement"]?.GetValue<int>() ?? 0,
        };
        foreach (JsonNode? entry in json["log_history"]?.AsArray() ?? [])
            state.History.Add(entry!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<double>() ?? double.NaN));
        _scaler?.Restore(json);
        _task.RestoreState?.Invoke(json);
        return state;
    }
}
