using System.Text.RegularExpressions;
using Distill.Mesh.Specs.Naming;

namespace Distill.Mesh.Specs.Configuration;

/// <summary>
/// Every value of a <see cref="TrainConfig"/> checked before any work: choices, ranges, finiteness,
/// the folders it names (when the caller can see them) and how they relate (the output folder is
/// not a model folder). Each problem names the key, the value and what is allowed.
/// </summary>
public static partial class TrainConfigValidator
{
    [GeneratedRegex("^(cpu|cuda|cuda:[0-9]{1,2})$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex DevicePattern();

    /// <summary>The problems found (empty: the config is sound).</summary>
    /// <param name="config">The config, paths resolved.</param>
    /// <param name="checkPaths">Whether the folders and files it names are on this machine (they are checked to exist).</param>
    public static List<string> Problems(TrainConfig config, bool checkPaths)
    {
        var p = new ProblemList();
        p.OneOf("recipe", config.Recipe, ConfigNames.Recipes);
        p.Path("output_dir", config.OutputDir);

        var student = config.Student;
        p.Required("student.model", student.Model);
        p.OneOf("student.dtype", student.Dtype, ConfigNames.ModelDtypes);
        p.Device("student.device", student.Device);
        if (student.Lora is { } lora)
        {
            p.Range("student.lora.r", lora.R, 1, 4096);
            p.Positive("student.lora.alpha", lora.Alpha, max: 1e6);
            p.Range("student.lora.dropout", lora.Dropout, 0, 0.999);
            if (lora.TargetModules.Count == 0 || lora.TargetModules.Any(string.IsNullOrWhiteSpace))
                p.Add("student.lora.target_modules: give module names (e.g. [q_proj, v_proj]) or [all-linear]");
        }

        var needsTeacher = config.Recipe is "kd" or "seq_kd" or "gkd";
        if (needsTeacher && config.Teachers.Count == 0)
            p.Add($"teachers: the {config.Recipe} recipe needs at least one teacher (teachers: [{{model: …}}])");
        if (config.Recipe == "sft" && config.Teachers.Count > 0)
            p.Add("teachers: the sft recipe trains on the dataset's labels only and would ignore its teachers; remove them, or use recipe kd");
        if (config.Recipe == "seq_kd" && config.Teachers.Count > 1)
            p.Add("teachers: seq_kd has one teacher write the responses; give exactly one");
        for (var i = 0; i < config.Teachers.Count; i++)
        {
            var teacher = config.Teachers[i];
            if (string.IsNullOrWhiteSpace(teacher.Endpoint))
                p.Required($"teachers.{i}.model", teacher.Model);
            else
                p.Address($"teachers.{i}.endpoint", teacher.Endpoint);
            p.Positive($"teachers.{i}.weight", teacher.Weight, max: 1e6);
            p.OneOf($"teachers.{i}.dtype", teacher.Dtype, ConfigNames.ModelDtypes);
            p.Device($"teachers.{i}.device", teacher.Device);
        }

        var signal = config.Signal;
        p.OneOf("signal.format", signal.Format, ConfigNames.SignalFormats);
        p.Range("signal.k", signal.K, 1, 1 << 20);
        p.OneOf("signal.mode", signal.Mode, ConfigNames.TopKModes);
        p.Range("signal.samples", signal.Samples, 1, 4096);
        p.OneOf("signal.precision", signal.Precision, ConfigNames.Precisions);
        if (signal.Format.Equals("dense", StringComparison.OrdinalIgnoreCase) && config.Teachers.Any(t => !string.IsNullOrWhiteSpace(t.Endpoint)))
            p.Add("signal.format: dense (full logits) cannot come from a teacher service (teachers[].endpoint); use topk or sampled");

        var loss = config.Loss;
        p.OneOf("loss.kind", loss.Kind, ConfigNames.Losses);
        p.Range("loss.temperature", loss.Temperature, 0.05, 100);
        p.Range("loss.kd_ratio", loss.KdRatio, 0, 1);
        p.Range("loss.beta", loss.Beta, 0, 1);
        p.Range("loss.alpha", loss.Alpha, 0, 1);
        p.Range("loss.symmetric_ratio", loss.SymmetricRatio, 0, 1);
        if (needsTeacher && loss.KdRatio == 0)
            p.Add($"loss.kd_ratio: 0 leaves only the cross-entropy term, so the {config.Recipe} recipe would learn nothing from its teacher; use recipe sft for that");

        var dataset = config.Dataset;
        if (dataset.Sources.Count == 0)
            p.Required("dataset.path", dataset.Path);
        else if (dataset.Path.Length > 0)
            p.Add($"dataset.path: '{dataset.Path}' and dataset.sources both name the data; list every file under sources (with its weight)");
        p.Range("dataset.max_length", dataset.MaxLength, 2, 1 << 20);
        p.Range("dataset.eval_fraction", dataset.EvalFraction, 0, 0.9);
        p.Range("dataset.shuffle_buffer", dataset.ShuffleBuffer, 1, 10_000_000);
        p.Range("dataset.eval_max_examples", dataset.EvalMaxExamples, 0, 10_000_000);
        if (dataset.ChatFormat is { } format)
            p.OneOf("dataset.chat_format", format, ConfigNames.ChatFormats);
        p.DatasetFile("dataset.path", dataset.Path);
        p.Columns("dataset.columns", dataset.Columns);
        for (var i = 0; i < dataset.Sources.Count; i++)
        {
            var source = dataset.Sources[i];
            p.Required($"dataset.sources.{i}.path", source.Path);
            p.DatasetFile($"dataset.sources.{i}.path", source.Path);
            p.Positive($"dataset.sources.{i}.weight", source.Weight, max: 1e6);
            if (source.Columns is { } columns)
                p.Columns($"dataset.sources.{i}.columns", columns);
        }

        if (dataset.Streaming || dataset.Sources.Count > 0)
        {
            var what = dataset.Sources.Count > 0 ? "a mixture (dataset.sources)" : "a streamed dataset (dataset.streaming: true)";
            if (config.Training.MaxSteps is null)
                p.Add($"training.max_steps: {what} has no length known ahead, so epochs cannot set the run's length; give training.max_steps");
            if (config.Recipe == "seq_kd")
                p.Add($"dataset: the seq_kd recipe has its teacher answer every training prompt before training, which needs the whole dataset in memory; {what} works with the kd, sft and gkd recipes");
        }

        var training = config.Training;
        p.Range("training.epochs", training.Epochs, 1, 100_000);
        if (training.MaxSteps is { } maxSteps)
            p.Range("training.max_steps", maxSteps, 1, 1_000_000_000);
        p.Range("training.batch_size", training.BatchSize, 1, 65_536);
        p.Range("training.gradient_accumulation", training.GradientAccumulation, 1, 65_536);
        p.Range("training.max_grad_norm", training.MaxGradNorm, 0, 1e6);
        p.Range("training.checkpoint_every", training.CheckpointEvery, 0, int.MaxValue);
        p.Range("training.eval_every", training.EvalEvery, 0, int.MaxValue);
        p.Range("training.log_every", training.LogEvery, 1, int.MaxValue);
        p.Range("training.keep_checkpoints", training.KeepCheckpoints, 0, int.MaxValue);
        if (training.KeepBest && !(training.EvalEvery > 0 && training.CheckpointEvery > 0 && training.EvalEvery % training.CheckpointEvery == 0))
            p.Add($"training.keep_best: true needs every evaluation checkpointed: set training.eval_every (now {training.EvalEvery}) to a multiple of training.checkpoint_every (now {training.CheckpointEvery}), both above 0");
        var optimizer = training.Optimizer;
        p.OneOf("training.optimizer.name", optimizer.Name, ConfigNames.Optimizers);
        p.Positive("training.optimizer.lr", optimizer.Lr, max: 10);
        p.Range("training.optimizer.weight_decay", optimizer.WeightDecay, 0, 10);
        if (optimizer.Betas.Count != 2 || optimizer.Betas.Any(b => !(b >= 0 && b < 1)))
            p.Add($"training.optimizer.betas: [{string.Join(", ", optimizer.Betas.Select(ConfigBinder.Number))}] must be two numbers in [0, 1), e.g. [0.9, 0.999]");
        p.Positive("training.optimizer.eps", optimizer.Eps, max: 1);
        p.Range("training.optimizer.momentum", optimizer.Momentum, 0, 0.9999);
        var scheduler = training.Scheduler;
        p.OneOf("training.scheduler.name", scheduler.Name, ConfigNames.Schedulers);
        p.Range("training.scheduler.warmup_steps", scheduler.WarmupSteps, 0, int.MaxValue);
        p.Range("training.scheduler.warmup_ratio", scheduler.WarmupRatio, 0, 0.999);
        p.Range("training.scheduler.min_lr_ratio", scheduler.MinLrRatio, 0, 1);

        var backends = config.Logging.Backends;
        for (var i = 0; i < backends.Count; i++)
            p.OneOf($"logging.backends.{i}", backends[i] ?? "", ConfigNames.LoggingBackends);
        if (backends.GroupBy(b => b?.ToLowerInvariant()).FirstOrDefault(g => g.Count() > 1) is { } twice)
            p.Add($"logging.backends: '{twice.Key}' is listed twice");
        if (!backends.Contains("jsonl", StringComparer.OrdinalIgnoreCase))
            p.Add($"logging.backends: [{string.Join(", ", backends)}] leaves out jsonl; metrics.jsonl is the run's history (resume, plots and `distill plot` read it), so list it: [jsonl{string.Concat(backends.Select(b => ", " + b))}]");

        var generation = config.Generation;
        p.Range("generation.max_new_tokens", generation.MaxNewTokens, 1, 65_536);
        p.Range("generation.temperature", generation.Temperature, 0.05, 100);
        if (!(generation.TopP > 0 && generation.TopP <= 1))
            p.Add($"generation.top_p: {ConfigBinder.Number(generation.TopP)} must be in (0, 1]");
        p.Range("gkd.lmbda", config.Gkd.Lmbda, 0, 1);

        if (config.Publish is { } publish)
        {
            p.Check("publish.name", () => ArtifactNames.CheckName(publish.Name));
            if (publish.Registry is not null)
                p.Address("publish.registry", publish.Registry);
            for (var i = 0; i < publish.Tags.Count; i++)
                p.Check($"publish.tags.{i}", () => ArtifactNames.CheckTag(publish.Tags[i]));
        }

        // Folders: the output folder never is (or holds) a model the run reads.
        var models = new List<(string Key, string Path)> { ("student.model", student.Model) };
        models.AddRange(config.Teachers.Select((t, i) => ($"teachers.{i}.model", t.Model)));
        if (student.Lora?.InitFrom is { } initFrom)
            models.Add(("student.lora.init_from", initFrom));
        foreach (var (key, path) in models.Where(m => m.Path.Length > 0 && config.OutputDir.Length > 0))
        {
            if (Inside(path, config.OutputDir) || Inside(config.OutputDir, path))
                p.Add($"output_dir: '{config.OutputDir}' {(Inside(path, config.OutputDir) ? "holds" : "is inside")} {key} '{path}'; the run writes, resumes and restarts there, so give it its own folder");
        }

        if (checkPaths)
        {
            var served = config.Teachers.Select((t, i) => (t, i)).Where(x => !string.IsNullOrWhiteSpace(x.t.Endpoint)).Select(x => $"teachers.{x.i}.model").ToHashSet();
            foreach (var (key, path) in models.Where(m => m.Path.Length > 0 && !served.Contains(m.Key)))
                p.Folder(key, path, key == "student.lora.init_from" ? "adapter_config.json" : "config.json");
            if (dataset.Path.Length > 0 && !File.Exists(dataset.Path))
                p.Add($"dataset.path: no file at '{dataset.Path}'");
            for (var i = 0; i < dataset.Sources.Count; i++)
            {
                if (dataset.Sources[i].Path.Length > 0 && !File.Exists(dataset.Sources[i].Path))
                    p.Add($"dataset.sources.{i}.path: no file at '{dataset.Sources[i].Path}'");
            }
        }

        return p.List;
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or inside it.</summary>
    public static bool Inside(string path, string folder)
    {
        var full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        var root = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        return full.StartsWith(root, StringComparison.Ordinal);
    }

    /// <summary>Collects problems in the shape every message takes: "key: value … allowed".</summary>
    public sealed class ProblemList
    {
        public List<string> List { get; } = [];

        public void Add(string problem) => List.Add(problem);

        /// <summary>A dataset file's extension is one the readers know (empty paths are left to <see cref="Required"/>).</summary>
        public void DatasetFile(string key, string path)
        {
            if (path.Length > 0 && System.IO.Path.GetExtension(path).ToLowerInvariant() is not (".json" or ".jsonl" or ".parquet"))
                Add($"{key}: '{path}' is not a .json, .jsonl or .parquet file");
        }

        /// <summary>A column mapping: known layout fields, each to a distinct non-empty column name.</summary>
        public void Columns(string key, IReadOnlyDictionary<string, string> columns)
        {
            foreach (var (field, column) in columns)
            {
                if (!ConfigNames.DatasetFields.Contains(field))
                    Add($"{key}.{field}: not a layout field (known: {string.Join(", ", ConfigNames.DatasetFields)}); the mapping goes layout field → your column, e.g. prompt: question");
                else if (string.IsNullOrWhiteSpace(column))
                    Add($"{key}.{field}: give the dataset's column name");
            }

            foreach (var shared in columns.GroupBy(c => c.Value, StringComparer.Ordinal).Where(g => g.Count() > 1))
                Add($"{key}: '{shared.Key}' is mapped to {string.Join(" and ", shared.Select(c => c.Key))}; a column can stand for one field");
        }

        public void Required(string key, string? value)
        {
            if (string.IsNullOrWhiteSpace(value))
                Add($"{key} is required");
        }

        public void Path(string key, string value)
        {
            if (string.IsNullOrWhiteSpace(value))
                Add($"{key} is required");
            else if (value.IndexOfAny(System.IO.Path.GetInvalidPathChars()) >= 0 || value.Contains('\0'))
                Add($"{key}: '{value}' is not a valid path");
        }

        public void OneOf(string key, string value, string[] allowed)
        {
            if (!allowed.Contains(value, StringComparer.OrdinalIgnoreCase))
            {
                var suggestion = ConfigBinder.Suggest(value.ToLowerInvariant(), allowed);
                Add($"{key}: '{value}' is not one of {string.Join(", ", allowed)}{(suggestion is null ? "" : $" (did you mean '{suggestion}'?)")}");
            }
        }

        public void Range(string key, long value, long min, long max)
        {
            if (value < min || value > max)
                Add($"{key}: {value} is out of range; it must be {(max == int.MaxValue || max == long.MaxValue ? $"at least {min}" : $"in [{min}, {max}]")}");
        }

        public void Range(string key, double value, double min, double max)
        {
            if (!double.IsFinite(value) || value < min || value > max)
                Add($"{key}: {ConfigBinder.Number(value)} is out of range; it must be in [{ConfigBinder.Number(min)}, {ConfigBinder.Number(max)}]");
        }

        public void Positive(string key, double value, double max)
        {
            if (!double.IsFinite(value) || value <= 0 || value > max)
                Add($"{key}: {ConfigBinder.Number(value)} must be greater than 0{(max < double.MaxValue ? $" and at most {ConfigBinder.Number(max)}" : "")}");
        }

        public void Device(string key, string value)
        {
            if (!DevicePattern().IsMatch(value))
                Add($"{key}: '{value}' is not cpu, cuda or cuda:N");
        }

        public void Address(string key, string? value)
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Port <= 0 || !string.IsNullOrEmpty(uri.Query) || uri.AbsolutePath != "/")
                Add($"{key}: '{value}' is not a service address like http://host:port");
        }

        public void Folder(string key, string path, string marker)
        {
            if (!Directory.Exists(path))
                Add($"{key}: no folder at '{path}'");
            else if (!File.Exists(System.IO.Path.Combine(path, marker)))
                Add($"{key}: '{path}' has no {marker}");
        }

        public void Check(string key, Action check)
        {
            try
            {
                check();
            }
            catch (ArgumentException e)
            {
                Add($"{key}: {e.Message}");
            }
        }
    }
}
