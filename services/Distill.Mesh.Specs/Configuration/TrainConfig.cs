using System.Text.Json.Serialization;

namespace Distill.Mesh.Specs.Configuration;

/// <summary>A training run, as written in a recipe YAML (snake_case keys; unknown keys are errors).</summary>
public sealed class TrainConfig
{
    /// <summary>kd, sft, seq_kd or gkd.</summary>
    public string Recipe { get; set; } = "kd";

    public int Seed { get; set; } = 42;

    /// <summary>Where the student, metrics, checkpoints and the resolved config go.</summary>
    public string OutputDir { get; set; } = "runs/run";

    public StudentConfig Student { get; set; } = new();

    public List<TeacherConfig> Teachers { get; set; } = [];

    public SignalConfig Signal { get; set; } = new();

    public LossConfig Loss { get; set; } = new();

    public DatasetConfig Dataset { get; set; } = new();

    public TrainingConfig Training { get; set; } = new();

    /// <summary>Where step metrics are written besides the run's metrics.jsonl.</summary>
    public LoggingConfig Logging { get; set; } = new();

    /// <summary>How seq_kd's teacher and gkd's student generate completions.</summary>
    public GenerationSettings Generation { get; set; } = new();

    public GkdSettings Gkd { get; set; } = new();

    /// <summary>Push the result (adapter or model) to the registry when the run succeeds.</summary>
    public PublishSettings? Publish { get; set; }
}

public sealed class PublishSettings
{
    /// <summary>Artifact name in the registry (versions accumulate under it).</summary>
    public string Name { get; set; } = "";

    /// <summary>
    /// Registry address. Null: the trainer's own (Trainer:Registry), or for <c>distill train</c> the
    /// DISTILL_REGISTRY environment variable, else the local mesh's (http://127.0.0.1:7103).
    /// </summary>
    public string? Registry { get; set; }

    /// <summary>The local mesh's registry, where nothing else names one.</summary>
    public const string LocalRegistry = "http://127.0.0.1:7103";

    /// <summary>Tags to point at the pushed version (e.g. candidate).</summary>
    public List<string> Tags { get; set; } = [];
}

public sealed class GenerationSettings
{
    public int MaxNewTokens { get; set; } = 64;

    public double Temperature { get; set; } = 1.0;

    public double TopP { get; set; } = 1.0;

    public bool Greedy { get; set; }
}

public sealed class GkdSettings
{
    /// <summary>Share of micro-batches whose completions the student generates (on-policy).</summary>
    public double Lmbda { get; set; } = 0.5;
}

public sealed class StudentConfig
{
    /// <summary>HF model folder (with tokenizer).</summary>
    public string Model { get; set; } = "";

    public string Dtype { get; set; } = "float32";

    public string Device { get; set; } = "cpu";

    /// <summary>LoRA settings; absent means full fine-tuning.</summary>
    public LoraSettings? Lora { get; set; }
}

public sealed class LoraSettings
{
    public int R { get; set; } = 8;

    public double Alpha { get; set; } = 16;

    public double Dropout { get; set; }

    /// <summary>Module names, or ["all-linear"].</summary>
    public List<string> TargetModules { get; set; } = ["q_proj", "v_proj"];

    /// <summary>
    /// Start from this PEFT adapter (for example one `distill extract` wrote) instead of a fresh
    /// one: its r, lora_alpha, target_modules and rank_pattern replace the settings above.
    /// </summary>
    public string? InitFrom { get; set; }
}

public sealed class TeacherConfig
{
    /// <summary>HF model folder (loaded in the trainer; with <see cref="Endpoint"/>, what that service serves, for lineage).</summary>
    public string Model { get; set; } = "";

    /// <summary>Weight in a multi-teacher mixture.</summary>
    public double Weight { get; set; } = 1.0;

    public string Dtype { get; set; } = "float32";

    /// <summary>cpu, cuda or cuda:N for a teacher loaded in the trainer (its rows move to the student's device).</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>A teacher service serving this teacher (http://host:port); each teacher of a mixture has its own.</summary>
    public string? Endpoint { get; set; }
}

public sealed class SignalConfig
{
    /// <summary>dense, topk or sampled.</summary>
    public string Format { get; set; } = "dense";

    public int K { get; set; } = 64;

    /// <summary>tail or zero.</summary>
    public string Mode { get; set; } = "tail";

    public int Samples { get; set; } = 16;

    /// <summary>How a remote teacher packs values: fp32, fp16, bf16 or q8.</summary>
    public string Precision { get; set; } = "fp32";
}

public sealed class LossConfig
{
    /// <summary>fkl, fkl-ce, rkl, sym, jsd, skl, srkl, tvd, mse.</summary>
    public string Kind { get; set; } = "fkl";

    public double Temperature { get; set; } = 1.0;

    /// <summary>Multiply the soft loss by T².</summary>
    public bool T2 { get; set; }

    public double KdRatio { get; set; } = 0.5;

    public double Beta { get; set; } = 0.5;

    public double Alpha { get; set; } = 0.1;

    public double SymmetricRatio { get; set; } = 0.5;

    /// <summary>Fused, chunked lm_head + loss (bounded memory).</summary>
    public bool Chunked { get; set; } = true;
}

public sealed class DatasetConfig
{
    /// <summary>JSON, JSONL or Parquet file.</summary>
    public string Path { get; set; } = "";

    public int MaxLength { get; set; } = 512;

    public bool TrainOnInputs { get; set; }

    public double EvalFraction { get; set; } = 0.05;

    /// <summary>chatml, llama3, mistral; null: from the tokenizer.</summary>
    public string? ChatFormat { get; set; }

    /// <summary>Pack training examples into max_length sequences (attention kept within each example).</summary>
    public bool Packing { get; set; }
}

public sealed class TrainingConfig
{
    public int Epochs { get; set; } = 1;

    /// <summary>Stop after this many optimizer steps (overrides epochs when set).</summary>
    public int? MaxSteps { get; set; }

    public int BatchSize { get; set; } = 4;

    public int GradientAccumulation { get; set; } = 1;

    public OptimizerConfig Optimizer { get; set; } = new();

    public SchedulerConfig Scheduler { get; set; } = new();

    /// <summary>Clip the global gradient norm; 0 disables.</summary>
    public double MaxGradNorm { get; set; } = 1.0;

    /// <summary>Write a checkpoint every N steps; 0 only at the end.</summary>
    public int CheckpointEvery { get; set; }

    /// <summary>
    /// How many of the newest checkpoints stay on disk (older ones are deleted after each save);
    /// 0 keeps every checkpoint.
    /// </summary>
    public int KeepCheckpoints { get; set; } = 3;

    /// <summary>
    /// Also keep the checkpoint with the lowest eval loss (among checkpoints written at an
    /// evaluated step); needs eval_every and checkpoint_every, eval_every a multiple of checkpoint_every.
    /// </summary>
    public bool KeepBest { get; set; }

    /// <summary>Evaluate every N steps; 0 only at the end.</summary>
    public int EvalEvery { get; set; }

    public int LogEvery { get; set; } = 1;

    /// <summary>Recompute layer activations in backward (less memory, one more forward per layer).</summary>
    public bool ActivationCheckpointing { get; set; }
}

/// <summary>The run's metric loggers (the <c>logging</c> section).</summary>
public sealed class LoggingConfig
{
    /// <summary>
    /// Metric loggers: jsonl (metrics.jsonl, the run's history: always listed) and tensorboard
    /// (event files under tensorboard/ in the output folder).
    /// </summary>
    public List<string> Backends { get; set; } = ["jsonl"];
}

public sealed class OptimizerConfig
{
    /// <summary>adamw, sgd, adafactor.</summary>
    public string Name { get; set; } = "adamw";

    public double Lr { get; set; } = 2e-4;

    public double WeightDecay { get; set; }

    public List<double> Betas { get; set; } = [0.9, 0.999];

    public double Eps { get; set; } = 1e-8;

    public double Momentum { get; set; } = 0.9;
}

public sealed class SchedulerConfig
{
    /// <summary>constant, linear, cosine.</summary>
    public string Name { get; set; } = "cosine";

    public int WarmupSteps { get; set; }

    /// <summary>Warmup as a share of all steps (used when warmup_steps is 0).</summary>
    public double WarmupRatio { get; set; }

    /// <summary>Final rate as a share of the peak (cosine).</summary>
    public double MinLrRatio { get; set; }
}
