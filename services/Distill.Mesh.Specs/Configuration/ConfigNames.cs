namespace Distill.Mesh.Specs.Configuration;

/// <summary>
/// The names a config may use for each choice, so specs are checked without the engine (the
/// engine's own parsers accept the same names; a test keeps the two lists equal).
/// </summary>
public static class ConfigNames
{
    public static readonly string[] Recipes = ["kd", "seq_kd", "gkd", "sft"];

    public static readonly string[] Losses = ["fkl", "fkl-ce", "rkl", "sym", "jsd", "skl", "srkl", "tvd", "mse"];

    public static readonly string[] SignalFormats = ["dense", "topk", "top-k", "sampled"];

    public static readonly string[] TopKModes = ["tail", "zero"];

    public static readonly string[] Precisions = ["fp32", "fp16", "bf16", "q8"];

    public static readonly string[] Optimizers = ["adamw", "sgd", "adafactor"];

    public static readonly string[] Schedulers = ["constant", "linear", "cosine"];

    /// <summary>Model dtypes: training and teachers.</summary>
    public static readonly string[] ModelDtypes = ["float32", "fp32", "bfloat16", "bf16"];

    public static readonly string[] AdapterDtypes = ["float32", "bfloat16", "float16", "float64"];

    public static readonly string[] ChatFormats = ["chatml", "llama3", "mistral"];

    /// <summary>The row fields the dataset layouts read (what dataset.columns maps to).</summary>
    public static readonly string[] DatasetFields = ["messages", "conversations", "instruction", "input", "output", "response", "prompt", "completion", "text"];

    /// <summary>Metric loggers (logging.backends).</summary>
    public static readonly string[] LoggingBackends = ["jsonl", "tensorboard"];

    public static readonly string[] SvdMethods = ["exact", "randomized"];
}
