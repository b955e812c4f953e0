using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Alignment.Losses;

/// <summary>
/// Creates losses by the names the CLI and config files use (TRL's <c>loss_type</c> names), and lets users register
/// their own.
/// </summary>
public static class PreferenceLosses
{
    static readonly ConcurrentDictionary<string, Func<PreferenceLossOptions, ILogger, IPreferenceLoss>> Factories = new(StringComparer.OrdinalIgnoreCase);

    static PreferenceLosses()
    {
        foreach (string type in DpoLoss.Types)
            Factories[type] = (options, _) => new DpoLoss(type, options);
        Factories["aot_pair"] = (options, _) => new DpoLoss("aot_unpaired", options);
        Factories["cpo"] = (options, _) => new CpoLoss("cpo", options);
        Factories["simpo"] = (options, _) => new CpoLoss("simpo", options);
        Factories["orpo"] = (options, _) => new OrpoLoss(options);
        Factories["kto"] = (options, logger) => new KtoLoss("kto", options, logger);
        Factories["apo_zero_unpaired"] = (options, logger) => new KtoLoss("apo_zero_unpaired", options, logger);
    }

    /// <summary>Every registered name, sorted.</summary>
    public static IReadOnlyList<string> Names => Factories.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>Creates the loss registered under <paramref name="name"/>.</summary>
    /// <param name="name">A registered name (case-insensitive), for example <c>sigmoid</c>, <c>ipo</c>, <c>kto</c>.</param>
    /// <param name="options">Hyper-parameters; defaults when null.</param>
    /// <param name="logger">Where the loss logs warnings (KTO's class-balance advice); nowhere when null.</param>
    /// <exception cref="ArgumentException">The name is unknown (the message lists the known ones), or an option is out of range.</exception>
    public static IPreferenceLoss Create(string name, PreferenceLossOptions? options = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (!Factories.TryGetValue(name.Trim(), out var factory))
            throw new ArgumentException($"Unknown loss '{name}'. Known losses: {string.Join(", ", Names)}.", nameof(name));
        return factory(options ?? new PreferenceLossOptions(), logger ?? NullLogger.Instance);
    }

    /// <summary>
    /// Creates a weighted combination (TRL's <c>loss_type</c> list with <c>loss_weights</c>). Options apply to every
    /// part, except <c>rpo_alpha</c>, which is added once as an <c>sft</c> part of that weight.
    /// </summary>
    /// <param name="names">The parts' names.</param>
    /// <param name="weights">One weight per name; null gives every part weight 1.</param>
    /// <param name="options">Hyper-parameters; defaults when null.</param>
    /// <param name="logger">Where the losses log warnings; nowhere when null.</param>
    /// <exception cref="ArgumentException">Unknown name, mismatched counts, or incompatible parts.</exception>
    public static IPreferenceLoss Create(IReadOnlyList<string> names, IReadOnlyList<double>? weights, PreferenceLossOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(names);
        if (names.Count == 0)
            throw new ArgumentException("At least one loss name is required.", nameof(names));
        if (weights is not null && weights.Count != names.Count)
            throw new ArgumentException($"{weights.Count} loss weights were given for {names.Count} losses.", nameof(weights));
        options ??= new PreferenceLossOptions();
        options.Validate(); // rpo_alpha is taken out of the shared options below: check it here
        if (names.Count == 1 && (weights is null || weights[0] == 1))
            return Create(names[0], options, logger);

        var shared = options with { RpoAlpha = null };
        var parts = names.Select((name, i) => (Create(name, shared, logger), weights?[i] ?? 1.0)).ToList();
        if (options.RpoAlpha is > 0 and var rpo)
            parts.Add((new DpoLoss("sft", shared with { UseWeighting = false }), rpo));
        return new CombinedPreferenceLoss(parts);
    }

    /// <summary>Registers (or replaces) a loss under a name, so that <see cref="Create(string, PreferenceLossOptions?, ILogger?)"/>, the CLI and config files can use it.</summary>
    /// <param name="name">The name (case-insensitive).</param>
    /// <param name="factory">Creates the loss from the options.</param>
    public static void Register(string name, Func<PreferenceLossOptions, IPreferenceLoss> factory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(factory);
        Factories[name.Trim()] = (options, _) => factory(options);
    }

    /// <summary>DPO (sigmoid loss; cDPO when <paramref name="labelSmoothing"/> &gt; 0).</summary>
    /// <param name="beta">β; <see cref="PreferenceLossOptions.Beta"/>'s default when null.</param>
    /// <param name="labelSmoothing">ε of cDPO.</param>
    public static IPreferenceLoss Dpo(double? beta = null, double labelSmoothing = 0) =>
        new DpoLoss("sigmoid", WithBeta(beta) with { LabelSmoothing = labelSmoothing });

    /// <summary>IPO (Azar et al. 2023).</summary>
    /// <param name="beta">τ; <see cref="PreferenceLossOptions.Beta"/>'s default when null.</param>
    public static IPreferenceLoss Ipo(double? beta = null) => new DpoLoss("ipo", WithBeta(beta));

    /// <summary>SimPO (Meng et al. 2024).</summary>
    public static IPreferenceLoss SimPo(double beta = 2.0, double gamma = 0.5) =>
        new CpoLoss("simpo", new PreferenceLossOptions { Beta = beta, SimpoGamma = gamma });

    /// <summary>ORPO (Hong et al. 2024); λ is <paramref name="lambda"/>.</summary>
    /// <param name="lambda">λ; <see cref="PreferenceLossOptions.Beta"/>'s default when null.</param>
    public static IPreferenceLoss Orpo(double? lambda = null) => new OrpoLoss(WithBeta(lambda));

    /// <summary>KTO (Ethayarajh et al. 2024).</summary>
    /// <param name="beta">β; <see cref="PreferenceLossOptions.Beta"/>'s default when null.</param>
    /// <param name="desirableWeight">λD.</param>
    /// <param name="undesirableWeight">λU.</param>
    public static IPreferenceLoss Kto(double? beta = null, double desirableWeight = 1, double undesirableWeight = 1) =>
        new KtoLoss("kto", WithBeta(beta) with { DesirableWeight = desirableWeight, UndesirableWeight = undesirableWeight });

    static PreferenceLossOptions WithBeta(double? beta) => beta is { } value ? new PreferenceLossOptions { Beta = value } : new PreferenceLossOptions();
}
