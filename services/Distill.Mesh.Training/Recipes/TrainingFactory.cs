using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Training.Optimization;
using TorchSharp.Modules;

namespace Distill.Mesh.Training.Recipes;

/// <summary>Builds the run's components from its config, rejecting bad values by name.</summary>
public static class TrainingFactory
{
    public static TrainingOptimizer Optimizer(OptimizerConfig config, IEnumerable<(string, Parameter)> parameters) => config.Name.ToLowerInvariant() switch
    {
        "adamw" => config.Betas.Count == 2
            ? new Optimization.AdamW(parameters, config.Lr, config.Betas[0], config.Betas[1], config.Eps, config.WeightDecay)
            : throw new ConfigException("training.optimizer.betas must hold two numbers"),
        "sgd" => new Sgd(parameters, config.Lr, config.Momentum, config.WeightDecay),
        "adafactor" => new Adafactor(parameters, config.Lr, weightDecay: config.WeightDecay),
        _ => throw new ConfigException($"training.optimizer.name '{config.Name}' is not one of adamw, sgd, adafactor"),
    };

    public static LearningRateSchedule Schedule(SchedulerConfig config, double peak, long totalSteps)
    {
        var kind = config.Name.ToLowerInvariant() switch
        {
            "constant" => ScheduleKind.Constant,
            "linear" => ScheduleKind.Linear,
            "cosine" => ScheduleKind.Cosine,
            _ => throw new ConfigException($"training.scheduler.name '{config.Name}' is not one of constant, linear, cosine"),
        };
        var warmup = config.WarmupSteps > 0 ? config.WarmupSteps : LearningRateSchedule.WarmupFromRatio(config.WarmupRatio, totalSteps);
        return new LearningRateSchedule(kind, peak, totalSteps, warmup, config.MinLrRatio);
    }

    public static DistillationLossOptions Loss(LossConfig config)
    {
        var options = new DistillationLossOptions
        {
            Kind = DivergenceNames.Parse(config.Kind),
            Temperature = config.Temperature,
            ScaleByTemperatureSquared = config.T2,
            KdRatio = config.KdRatio,
            Beta = config.Beta,
            Alpha = config.Alpha,
            SymmetricRatio = config.SymmetricRatio,
        };
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ConfigException($"loss: {e.Message}", e);
        }

        return options;
    }

    public static Teachers.SignalRequest Signal(SignalConfig config, int vocabulary, double temperature, long seed) => new(
        config.Format.ToLowerInvariant() switch
        {
            "dense" => Teachers.SignalFormat.Dense,
            "topk" or "top-k" => Teachers.SignalFormat.TopK,
            "sampled" => Teachers.SignalFormat.Sampled,
            _ => throw new ConfigException($"signal.format '{config.Format}' is not one of dense, topk, sampled"),
        },
        vocabulary,
        temperature,
        config.K,
        config.Mode.ToLowerInvariant() switch
        {
            "tail" => TopKMode.Tail,
            "zero" => TopKMode.Zero,
            _ => throw new ConfigException($"signal.mode '{config.Mode}' is not one of tail, zero"),
        },
        config.Samples,
        seed,
        config.Precision.ToLowerInvariant() switch
        {
            "fp32" => Teachers.SignalPrecision.Fp32,
            "fp16" => Teachers.SignalPrecision.Fp16,
            "bf16" => Teachers.SignalPrecision.Bf16,
            "q8" => Teachers.SignalPrecision.Q8,
            _ => throw new ConfigException($"signal.precision '{config.Precision}' is not one of fp32, fp16, bf16, q8"),
        });

    public static ChatFormat? ChatFormat(string? name) =>
        name is null ? null
        : ChatTemplates.Names.TryGetValue(name, out var format) ? format
        : throw new ConfigException($"dataset.chat_format '{name}' is not one of {string.Join(", ", ChatTemplates.Names.Keys)}");
}
