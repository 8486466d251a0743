using System.Text.Json.Serialization;

namespace Distill.Mesh.Specs.Configuration;

/// <summary>A training run, as written in a recipe YAML (snake_case keys; unknown keys are errors).</summary>
public sealed class TrainConfig
{
    /// <summary>kd, sft, seq_kd or gkd.</summary>
    public string Recipe { get; set; } = "kd";

    /// <summary>Seed of every random choice (initialisation, data order, dropout, sampling): the same seed gives the same run.</summary>
    public int Seed { get; set; } = 42;

    /// <summary>Where the student, metrics, checkpoints and the resolved config go.</summary>
    public string OutputDir { get; set; } = "runs/run";

    /// <summary>The model being trained.</summary>
    public StudentConfig Student { get; set; } = new();

    /// <summary>The teachers (one, or a weighted mixture); none for sft.</summary>
    public List<TeacherConfig> Teachers { get; set; } = [];

    /// <summary>What the teacher sends per position: all logits, the top k, or samples.</summary>
    public SignalConfig Signal { get; set; } = new();

    /// <summary>The distillation loss and its mix with cross-entropy.</summary>
    public LossConfig Loss { get; set; } = new();

    /// <summary>The training data and how it becomes sequences.</summary>
    public DatasetConfig Dataset { get; set; } = new();

    /// <summary>Steps, batches, optimizer, schedule, checkpoints.</summary>
    public TrainingConfig Training { get; set; } = new();

    /// <summary>Where step metrics are written besides the run's metrics.jsonl.</summary>
    public LoggingConfig Logging { get; set; } = new();

    /// <summary>How seq_kd's teacher and gkd's student generate completions.</summary>
    public GenerationSettings Generation { get; set; } = new();

    /// <summary>Settings of the gkd (on-policy) recipe.</summary>
    public GkdSettings Gkd { get; set; } = new();

    /// <summary>Push the result (adapter or model) to the registry when the run succeeds.</summary>
    public PublishSettings? Publish { get; set; }
}

/// <summary>Where a finished run's result is pushed (the publish section).</summary>
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

/// <summary>How completions are generated (seq_kd's teacher, gkd's student).</summary>
public sealed class GenerationSettings
{
    /// <summary>Longest completion, in tokens.</summary>
    public int MaxNewTokens { get; set; } = 64;

    /// <summary>Sampling temperature (ignored when greedy).</summary>
    public double Temperature { get; set; } = 1.0;

    /// <summary>Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p (1: all).</summary>
    public double TopP { get; set; } = 1.0;

    /// <summary>Always take the most likely token (no sampling).</summary>
    public bool Greedy { get; set; }
}

/// <summary>Generalized KD (on-policy) settings.</summary>
public sealed class GkdSettings
{
    /// <summary>Share of micro-batches whose completions the student generates (on-policy).</summary>
    public double Lmbda { get; set; } = 0.5;
}

/// <summary>The student: the model trained.</summary>
public sealed class StudentConfig
{
    /// <summary>HF model folder (with tokenizer).</summary>
    public string Model { get; set; } = "";

    /// <summary>float32 or bfloat16: the student's weights and compute.</summary>
    public string Dtype { get; set; } = "float32";

    /// <summary>cpu, cuda or cuda:N.</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>LoRA settings; absent means full fine-tuning.</summary>
    public LoraSettings? Lora { get; set; }
}

/// <summary>LoRA adapters (PEFT format) instead of full fine-tuning.</summary>
public sealed class LoraSettings
{
    /// <summary>Rank of each adapter.</summary>
    public int R { get; set; } = 8;

    /// <summary>lora_alpha: the update is scaled by alpha / r.</summary>
    public double Alpha { get; set; } = 16;

    /// <summary>Dropout on the adapter's input during training (0 to 1).</summary>
    public double Dropout { get; set; }

    /// <summary>Module names, or ["all-linear"].</summary>
    public List<string> TargetModules { get; set; } = ["q_proj", "v_proj"];

    /// <summary>
    /// Start from this PEFT adapter (for example one `distill extract` wrote) instead of a fresh
    /// one: its r, lora_alpha, target_modules and rank_pattern replace the settings above.
    /// </summary>
    public string? InitFrom { get; set; }
}

/// <summary>One teacher: loaded in the trainer, or reached at a teacher service.</summary>
public sealed class TeacherConfig
{
    /// <summary>HF model folder (loaded in the trainer; with <see cref="Endpoint"/>, what that service serves, for lineage).</summary>
    public string Model { get; set; } = "";

    /// <summary>Weight in a multi-teacher mixture.</summary>
    public double Weight { get; set; } = 1.0;

    /// <summary>float32 or bfloat16 for a teacher loaded in the trainer.</summary>
    public string Dtype { get; set; } = "float32";

    /// <summary>cpu, cuda or cuda:N for a teacher loaded in the trainer (its rows move to the student's device).</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>A teacher service serving this teacher (http://host:port); each teacher of a mixture has its own.</summary>
    public string? Endpoint { get; set; }
}

/// <summary>The teacher signal per position.</summary>
public sealed class SignalConfig
{
    /// <summary>dense (every logit), topk (the k most likely per position) or sampled (tokens drawn from the teacher, importance-weighted).</summary>
    public string Format { get; set; } = "dense";

    /// <summary>Entries per position of a topk signal.</summary>
    public int K { get; set; } = 64;

    /// <summary>topk only: tail (the k tokens plus one bucket for the rest of the mass; exact as k → vocab) or zero (the teacher renormalised over its k; biased).</summary>
    public string Mode { get; set; } = "tail";

    /// <summary>Tokens drawn per position of a sampled signal.</summary>
    public int Samples { get; set; } = 16;

    /// <summary>How a remote teacher packs values: fp32, fp16, bf16 or q8.</summary>
    public string Precision { get; set; } = "fp32";
}

/// <summary>The distillation loss.</summary>
public sealed class LossConfig
{
    /// <summary>fkl, fkl-ce, rkl, sym, jsd, skl, srkl, tvd, mse.</summary>
    public string Kind { get; set; } = "fkl";

    /// <summary>T: both distributions are softmax(logits / T).</summary>
    public double Temperature { get; set; } = 1.0;

    /// <summary>Multiply the soft loss by T².</summary>
    public bool T2 { get; set; }

    /// <summary>Total loss = (1 − kd_ratio)·CE + kd_ratio·KD (0 to 1).</summary>
    public double KdRatio { get; set; } = 0.5;

    /// <summary>β of the generalized JSD (jsd), in (0, 1).</summary>
    public double Beta { get; set; } = 0.5;

    /// <summary>α of the skew KLs (skl, srkl), in (0, 1).</summary>
    public double Alpha { get; set; } = 0.1;

    /// <summary>Weight of the forward term in the symmetric KL (sym), 0 to 1.</summary>
    public double SymmetricRatio { get; set; } = 0.5;

    /// <summary>Fused, chunked lm_head + loss (bounded memory).</summary>
    public bool Chunked { get; set; } = true;
}

/// <summary>Training data.</summary>
public sealed class DatasetConfig
{
    /// <summary>JSON, JSONL or Parquet file (empty when sources lists the files of a mixture).</summary>
    public string Path { get; set; } = "";

    /// <summary>
    /// A mixture: several files, each drawn from with probability weight / sum of weights (a file
    /// that runs out starts over). Sampled as a stream: needs training.max_steps.
    /// </summary>
    public List<DatasetSourceConfig> Sources { get; set; } = [];

    /// <summary>
    /// Field names of the dataset's rows, as layout field → the dataset's column, e.g.
    /// {prompt: question, completion: answer}; layout fields: messages, conversations, instruction,
    /// input, output, response, prompt, completion, text.
    /// </summary>
    public Dictionary<string, string> Columns { get; set; } = [];

    /// <summary>
    /// Read rows as a stream (JSONL, Parquet): memory independent of file size, rows shuffled within
    /// windows of shuffle_buffer rows; needs training.max_steps. Always on for a mixture.
    /// </summary>
    public bool Streaming { get; set; }

    /// <summary>Streamed rows are shuffled within consecutive windows of this many rows (Parquet: within each row group).</summary>
    public int ShuffleBuffer { get; set; } = 10_000;

    /// <summary>Streamed datasets: how many of the held-out rows (eval_fraction of each file, the first in file order) are evaluated.</summary>
    public int EvalMaxExamples { get; set; } = 256;

    /// <summary>Longest sequence in tokens; longer examples are truncated.</summary>
    public int MaxLength { get; set; } = 512;

    /// <summary>Also train on prompt and user tokens (default: only the assistant's / the completion's).</summary>
    public bool TrainOnInputs { get; set; }

    /// <summary>
    /// Share of the examples held out for evaluation (0 to 0.9). Streamed: each row is held out with
    /// this probability (a hash of seed, file and row), never trained on.
    /// </summary>
    public double EvalFraction { get; set; } = 0.05;

    /// <summary>chatml, llama3, mistral; null: from the tokenizer.</summary>
    public string? ChatFormat { get; set; }

    /// <summary>Pack training examples into max_length sequences (attention kept within each example).</summary>
    public bool Packing { get; set; }
}

/// <summary>One file of a dataset mixture.</summary>
public sealed class DatasetSourceConfig
{
    /// <summary>JSON, JSONL or Parquet file.</summary>
    public string Path { get; set; } = "";

    /// <summary>Relative sampling weight (above 0).</summary>
    public double Weight { get; set; } = 1;

    /// <summary>This file's field names (layout field → column), in place of dataset.columns.</summary>
    public Dictionary<string, string>? Columns { get; set; }
}

/// <summary>The training loop.</summary>
public sealed class TrainingConfig
{
    /// <summary>Passes over the training examples (when max_steps is not set).</summary>
    public int Epochs { get; set; } = 1;

    /// <summary>Stop after this many optimizer steps (overrides epochs when set).</summary>
    public int? MaxSteps { get; set; }

    /// <summary>Sequences per micro-batch.</summary>
    public int BatchSize { get; set; } = 4;

    /// <summary>Micro-batches per optimizer step (the step sees batch_size × this many sequences).</summary>
    public int GradientAccumulation { get; set; } = 1;

    /// <summary>The optimizer and its hyper-parameters.</summary>
    public OptimizerConfig Optimizer { get; set; } = new();

    /// <summary>The learning-rate schedule.</summary>
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

    /// <summary>Write a metrics line every N steps.</summary>
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

/// <summary>The optimizer.</summary>
public sealed class OptimizerConfig
{
    /// <summary>adamw, sgd, adafactor.</summary>
    public string Name { get; set; } = "adamw";

    /// <summary>Peak learning rate.</summary>
    public double Lr { get; set; } = 2e-4;

    /// <summary>Decoupled weight decay (AdamW), or L2 (SGD).</summary>
    public double WeightDecay { get; set; }

    /// <summary>Adam's β1 and β2, each in [0, 1).</summary>
    public List<double> Betas { get; set; } = [0.9, 0.999];

    /// <summary>Adam's ε (added to the root of the second moment).</summary>
    public double Eps { get; set; } = 1e-8;

    /// <summary>SGD momentum, 0 to 1.</summary>
    public double Momentum { get; set; } = 0.9;
}

/// <summary>The learning-rate schedule.</summary>
public sealed class SchedulerConfig
{
    /// <summary>constant, linear, cosine.</summary>
    public string Name { get; set; } = "cosine";

    /// <summary>Steps of linear warmup from 0 to lr.</summary>
    public int WarmupSteps { get; set; }

    /// <summary>Warmup as a share of all steps (used when warmup_steps is 0).</summary>
    public double WarmupRatio { get; set; }

    /// <summary>Final rate as a share of the peak (cosine).</summary>
    public double MinLrRatio { get; set; }
}
