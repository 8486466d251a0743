using System.Text.Json.Serialization;
using Distill.Mesh.Specs.Configuration;

namespace Distill.Mesh.Specs.Runs;

/// <summary>
/// A run as the runs API, the trainer's job mode and the Kubernetes operator read it: the stages
/// to run, in order, and the recipe they share. In YAML the run-level sections (<c>stages</c>,
/// <c>mesh</c>, <c>precompute</c>, <c>extract</c>, <c>evaluate</c>) sit beside the keys
/// <c>distill train</c> reads, so any training config is a run spec with the single stage "train".
/// </summary>
public sealed class RunSpec
{
    /// <summary>A subset of <see cref="Stage.Order"/>, in that order. Default: train, then publish when a publish section names an artifact.</summary>
    public List<string> Stages { get; set; } = [];

    /// <summary>Where the services of the mesh are.</summary>
    public MeshSettings Mesh { get; set; } = new();

    public PrecomputeSettings Precompute { get; set; } = new();

    public ExtractSettings Extract { get; set; } = new();

    public EvaluateSettings Evaluate { get; set; } = new();

    /// <summary>The recipe: every key that is not a run-level section.</summary>
    [JsonIgnore]
    public TrainConfig Train { get; set; } = new();

    public bool Has(string stage) => Stages.Contains(stage, StringComparer.Ordinal);
}

/// <summary>The stages a run can have.</summary>
public static class Stage
{
    public const string Precompute = "precompute";
    public const string Train = "train";
    public const string Extract = "extract";
    public const string Evaluate = "evaluate";
    public const string Publish = "publish";

    /// <summary>Every stage, in the order a run takes them.</summary>
    public static readonly string[] Order = [Precompute, Train, Extract, Evaluate, Publish];
}

/// <summary>Service addresses (http://host:port or https://…).</summary>
public sealed class MeshSettings
{
    /// <summary>The trainer that runs the stages (local backend; default: the controller's Controller:Trainer).</summary>
    public string? Trainer { get; set; }

    /// <summary>The teacher service for every teacher without its own <c>endpoint</c> (a run with one teacher).</summary>
    public string? Teacher { get; set; }
}

/// <summary>Filling the teacher's signal cache before training (every sequence the train stage will ask for, scored once).</summary>
public sealed class PrecomputeSettings
{
    /// <summary>Parts the work is split into (one Kubernetes pod each; the local trainer runs them in turn).</summary>
    public int Shards { get; set; } = 1;
}

/// <summary>Weight-space distillation: a LoRA adapter from teacher − student by truncated SVD.</summary>
public sealed class ExtractSettings
{
    /// <summary>Teacher folder; default: the first teacher's model.</summary>
    public string? Teacher { get; set; }

    /// <summary>Student (base) folder; default: student.model, or the train stage's model when train ran a full fine-tune.</summary>
    public string? Student { get; set; }

    public int Rank { get; set; } = 16;

    /// <summary>Ranks per module type or path, as PEFT's rank_pattern.</summary>
    public Dictionary<string, int> RankPattern { get; set; } = [];

    /// <summary>lora_alpha; null: alpha = rank.</summary>
    public double? Alpha { get; set; }

    /// <summary>exact or randomized.</summary>
    public string Svd { get; set; } = "exact";

    public int Oversample { get; set; } = 8;

    public int PowerIterations { get; set; } = 2;

    /// <summary>Module types to extract; null: every linear weight of the decoder layers.</summary>
    public List<string>? TargetModules { get; set; }

    public bool IncludeLmHead { get; set; }

    public bool IncludeEmbeddings { get; set; }

    /// <summary>float32, bfloat16, float16 or float64.</summary>
    public string AdapterDtype { get; set; } = "float32";

    /// <summary>Shards the work is split into (one worker or pod each), then consolidated.</summary>
    public int Shards { get; set; } = 1;
}

/// <summary>Held-out evaluation of the run's result (perplexity; KL and top-1 agreement to the first teacher).</summary>
public sealed class EvaluateSettings
{
    /// <summary>Dataset; default: the eval split of dataset.path.</summary>
    public string? Dataset { get; set; }

    /// <summary>Most examples evaluated.</summary>
    public int MaxExamples { get; set; } = 1000;
}
