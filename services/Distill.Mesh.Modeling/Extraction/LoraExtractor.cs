using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Extraction;

/// <summary>
/// Extracts a PEFT LoRA adapter that moves a student towards a teacher in weight space:
/// Δ = project(teacher) − student per linear weight, factorised by truncated SVD into
/// B = U·√S / √(α/r) and A = √S·Vᵀ / √(α/r), so the loader's one α/r scaling gives back U·S·Vᵀ.
/// The work is split into shards that each write their own file (kept, never overwritten by
/// another shard); <see cref="Consolidate"/> merges verified shards into the adapter.
/// </summary>
public sealed class LoraExtractor : IDisposable
{
    /// <summary>Folder under the output that holds shard files.</summary>
    public const string ShardFolder = "shards";

    /// <summary>The consolidated report beside the adapter.</summary>
    public const string ReportFileName = "extraction_report.json";

    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private readonly SafetensorsCheckpoint _teacher;
    private readonly SafetensorsCheckpoint _student;

    private LoraExtractor(string teacherFolder, string studentFolder, SafetensorsCheckpoint teacher, SafetensorsCheckpoint student, ExtractionOptions options)
    {
        TeacherFolder = teacherFolder;
        StudentFolder = studentFolder;
        _teacher = teacher;
        _student = student;
        Options = options;
        Plan = ExtractionPlan.Create(teacher, student, options);
    }

    public string TeacherFolder { get; }

    public string StudentFolder { get; }

    public ExtractionOptions Options { get; }

    public ExtractionPlan Plan { get; }

    /// <summary>Opens both models (Hugging Face folders with config.json and safetensors) and plans the work.</summary>
    public static LoraExtractor Open(string teacherFolder, string studentFolder, ExtractionOptions options)
    {
        foreach (var (role, folder) in new[] { ("teacher", teacherFolder), ("student", studentFolder) })
        {
            if (!Directory.Exists(folder))
                throw new DirectoryNotFoundException($"{role} folder '{folder}' does not exist");
            if (!File.Exists(Path.Combine(folder, "config.json")))
                throw new FileNotFoundException($"{role} folder '{folder}' has no config.json: not a Hugging Face model folder");
        }

        var teacher = SafetensorsCheckpoint.Open(teacherFolder);
        SafetensorsCheckpoint? student = null;
        try
        {
            student = SafetensorsCheckpoint.Open(studentFolder);
            return new LoraExtractor(Path.GetFullPath(teacherFolder), Path.GetFullPath(studentFolder), teacher, student, options);
        }
        catch
        {
            teacher.Dispose();
            student?.Dispose();
            throw;
        }
    }

    /// <summary>Parses an <c>extraction_report.json</c>.</summary>
    public static ExtractionSummary ReadReport(string json) =>
        JsonSerializer.Deserialize<ExtractionSummary>(json, JsonOptions) ?? throw new JsonException("empty extraction report");

    /// <summary>Where shard <paramref name="shard"/> of <paramref name="shards"/> keeps its factors.</summary>
    public static string ShardPath(string outFolder, int shard, int shards) =>
        Path.Combine(outFolder, ShardFolder, $"shard-{shard:00000}-of-{shards:00000}.safetensors");

    private static string ShardReportPath(string outFolder, int shard, int shards) => Path.ChangeExtension(ShardPath(outFolder, shard, shards), ".json");

    /// <summary>Every shard, then the consolidation (one process doing all the work).</summary>
    public ExtractionSummary Run(string outFolder, bool cleanup = false, Action<ExtractionEvent>? onEvent = null, CancellationToken cancellationToken = default)
    {
        for (var shard = 0; shard < Plan.Shards; shard++)
            RunShard(outFolder, shard, onEvent, cancellationToken);
        return Consolidate(outFolder, cleanup, onEvent);
    }

    /// <summary>
    /// The report of a shard that is finished for this plan: its report names this plan and its
    /// file has the recorded size and SHA-256. Null otherwise (missing, stale or damaged).
    /// </summary>
    public ShardReport? Finished(string outFolder, int shard)
    {
        var reportPath = ShardReportPath(outFolder, shard, Plan.Shards);
        var path = ShardPath(outFolder, shard, Plan.Shards);
        if (!File.Exists(reportPath) || !File.Exists(path))
            return null;
        ShardReport? report;
        try
        {
            report = JsonSerializer.Deserialize<ShardReport>(File.ReadAllText(reportPath), JsonOptions);
        }
        catch (JsonException)
        {
            return null;
        }

        if (report is null || report.PlanHash != Plan.Hash || report.Shard != shard || report.Shards != Plan.Shards)
            return null;
        return new FileInfo(path).Length == report.Bytes && Sha256Of(path) == report.Sha256 ? report : null;
    }

    /// <summary>
    /// Computes one shard and writes its file, then its report (the report marks it finished).
    /// A shard already finished for this plan is skipped. Cancellation stops between tensors and
    /// writes nothing.
    /// </summary>
    public ShardReport RunShard(string outFolder, int shard, Action<ExtractionEvent>? onEvent = null, CancellationToken cancellationToken = default)
    {
        var tasks = Plan.TasksOf(shard);
        if (Finished(outFolder, shard) is { } done)
        {
            onEvent?.Invoke(new ExtractionEvent("shard_skipped", shard, tasks.Count, tasks.Count, Message: $"shard {shard} already finished ({done.Sha256[..12]})"));
            return done;
        }

        using var held = Lock(outFolder, shard);
        onEvent?.Invoke(new ExtractionEvent("shard_started", shard, 0, tasks.Count, Message: $"shard {shard} of {Plan.Shards}: {tasks.Count} tensors"));
        var sources = new TeacherSources(_teacher, _student, Plan, Options);
        var factors = new List<KeyValuePair<string, Tensor>>();
        var reports = new List<TensorReport>();
        try
        {
            foreach (var name in tasks)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (report, a, b) = ExtractOne(name, sources);
                if (a is not null)
                {
                    var embedding = ExtractionPlan.IsEmbedding(name);
                    factors.Add(KeyValuePair.Create(LoraAdapter.KeyOf(report.Module, 'A', embedding), a));
                    factors.Add(KeyValuePair.Create(LoraAdapter.KeyOf(report.Module, 'B', embedding), b!));
                }

                reports.Add(report);
                onEvent?.Invoke(new ExtractionEvent("tensor", shard, reports.Count, tasks.Count, report));
            }

            cancellationToken.ThrowIfCancellationRequested();
            var path = ShardPath(outFolder, shard, Plan.Shards);
            SafetensorsWriter.Write(path, factors.OrderBy(f => f.Key, StringComparer.Ordinal).ToList(), new Dictionary<string, string>
            {
                ["format"] = "pt",
                ["plan_hash"] = Plan.Hash,
                ["shard"] = $"{shard}/{Plan.Shards}",
            });
            var result = new ShardReport(Plan.Hash, shard, Plan.Shards, Sha256Of(path), new FileInfo(path).Length, reports, sources.Clusters);
            AtomicFile.WriteAllText(ShardReportPath(outFolder, shard, Plan.Shards), JsonSerializer.Serialize(result, JsonOptions) + "\n");
            onEvent?.Invoke(new ExtractionEvent("shard_finished", shard, tasks.Count, tasks.Count, Message: $"shard {shard} written ({result.Bytes:N0} bytes)"));
            return result;
        }
        finally
        {
            foreach (var (_, tensor) in factors)
                tensor.Dispose();
        }
    }

    /// <summary>
    /// Claims a shard for this worker: an exclusive lock file beside the shard's file, removed
    /// when released. A second worker on the same shard is refused instead of duplicating it.
    /// </summary>
    private FileStream Lock(string outFolder, int shard)
    {
        var path = Path.ChangeExtension(ShardPath(outFolder, shard, Plan.Shards), ".lock");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (IOException e)
        {
            throw new InvalidOperationException($"shard {shard} of {Plan.Shards} is being computed by another worker (lock {path})", e);
        }
    }

    /// <summary>
    /// One student tensor: its report and, unless skipped, A [r, in] and B [out, r] in the adapter
    /// dtype (for an embedding [vocab, hidden]: A [r, vocab] and B [hidden, r]).
    /// </summary>
    private (TensorReport Report, Tensor? A, Tensor? B) ExtractOne(string name, TeacherSources sources)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var module = ExtractionPlan.ModuleOf(name);
        var shape = _student.GetInfo(name).Shape;
        var rank = Math.Min(RankOf(module), (int)Math.Min(shape[0], shape[1]));
        var alpha = Options.Alpha ?? rank;
        TensorReport Skipped(string source, string projection, double norm, string reason) =>
            new(name, module, shape, source, projection, 0, alpha, Options.Svd.ToString(), 0, null, norm, reason);

        Tensor teacher;
        string source;
        try
        {
            (teacher, source) = sources.For(name);
        }
        catch (NoTeacherSourceException e)
        {
            return (Skipped("-", "-", 0, e.Message), null, null);
        }

        var (projected, method) = ShapeProjector.Project(teacher, shape);
        var delta = projected - _student.ReadTensor(name).to_type(Options.ComputeDtype);
        var norm = delta.to_type(ScalarType.Float64).norm().item<double>();
        if (norm == 0)
            return (Skipped(source, method.ToString(), 0, "no difference between teacher and student"), null, null);
        if (!double.IsFinite(norm))
            throw new InvalidOperationException($"{name}: the teacher − student difference has NaN or infinite entries");

        var scaling = alpha / rank;
        // An embedding adapter is applied transposed (ΔE = scaling·(B·A)ᵀ): factorise Δᵀ [hidden, vocab].
        if (ExtractionPlan.IsEmbedding(name))
            delta = delta.t();
        using var low = TruncatedSvd.Compute(delta, rank, Options.Svd, Options.Oversample, Options.PowerIterations, Options.Seed + StableHash(name));
        var root = low.S.sqrt();
        // α/r is divided out here and applied once by the loader (PEFT's contract).
        var b = ((low.U * root.unsqueeze(0)) / Math.Sqrt(scaling)).to_type(Options.AdapterDtype).contiguous();
        var a = ((root.unsqueeze(1) * low.V.t()) / Math.Sqrt(scaling)).to_type(Options.AdapterDtype).contiguous();

        // Errors of what is saved (after the dtype cast), in float64.
        var exact = delta.to_type(ScalarType.Float64);
        var saved = b.to_type(ScalarType.Float64).matmul(a.to_type(ScalarType.Float64)) * scaling;
        var error = (exact - saved).norm().item<double>() / norm;
        // The exact SVD saw the whole spectrum; the randomized one needs the singular values computed.
        double? optimum = !(Options.ReportOptimum ?? Options.Svd == SvdMethod.Exact) ? null
            : (low.DroppedNorm ?? TruncatedSvd.OptimalError(TruncatedSvd.SingularValues(exact), rank)) / norm;
        var report = new TensorReport(name, module, shape, source, method.ToString(), rank, alpha, Options.Svd.ToString(), error, optimum, norm);
        return (report, a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope());
    }

    /// <summary>The module's rank by PEFT's rank_pattern rule (the loader's own matching).</summary>
    private int RankOf(string module) =>
        LoraTargets.RankAndAlpha(new LoraConfig { R = Options.Rank, RankPattern = new Dictionary<string, int>(Options.RankPattern) }, module).Rank;

    /// <summary>
    /// Merges every finished shard into <c>adapter_model.safetensors</c>, <c>adapter_config.json</c>
    /// and <c>extraction_report.json</c>. Refuses when a shard is missing, stale or damaged. With
    /// <paramref name="cleanup"/>, the shard files go only after the written adapter has been read
    /// back and found equal to them.
    /// </summary>
    public ExtractionSummary Consolidate(string outFolder, bool cleanup = false, Action<ExtractionEvent>? onEvent = null)
    {
        var shards = Enumerable.Range(0, Plan.Shards).Select(s => (Shard: s, Report: Finished(outFolder, s))).ToList();
        var missing = shards.Where(s => s.Report is null).Select(s => s.Shard).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"cannot consolidate: shard(s) {string.Join(", ", missing)} of {Plan.Shards} are not finished for this plan (missing, from other inputs or options, or damaged); run them with --shard-index");

        var reports = shards.SelectMany(s => s.Report!.Tensors).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        if (!reports.Select(r => r.Name).SequenceEqual(Plan.Tasks))
            throw new InvalidOperationException("cannot consolidate: the shards' tensors are not exactly the plan's");
        var extracted = reports.Where(r => r.Skipped is null).ToList();
        if (extracted.Count == 0)
            throw new InvalidOperationException($"nothing to save: every tensor was skipped ({string.Join("; ", reports.Select(r => r.Skipped).Distinct().Take(5))})");

        var files = shards.Select(s => SafetensorsFile.Open(ShardPath(outFolder, s.Shard, Plan.Shards))).ToList();
        var adapterPath = Path.Combine(outFolder, LoraAdapter.WeightsFileName);
        try
        {
            var keys = files.SelectMany(f => f.Tensors.Select(t => (File: f, t.Name))).OrderBy(k => k.Name, StringComparer.Ordinal).ToList();
            var tensors = keys.Select(k => KeyValuePair.Create(k.Name, k.File.ReadTensor(k.Name))).ToList();
            try
            {
                SafetensorsWriter.Write(adapterPath, tensors, new Dictionary<string, string> { ["format"] = "pt", ["plan_hash"] = Plan.Hash });
            }
            finally
            {
                foreach (var (_, tensor) in tensors)
                    tensor.Dispose();
            }

            Verify(adapterPath, keys);
        }
        finally
        {
            foreach (var file in files)
                file.Dispose();
        }

        LoraAdapter.WriteConfig(Config(extracted), outFolder);
        var clusters = shards.SelectMany(s => s.Report!.Clusters).GroupBy(c => c.Layer).Select(g => g.First()).OrderBy(c => c.Layer).ToList();
        var summary = new ExtractionSummary(
            TeacherFolder, StudentFolder, Plan.Layers.Select(l => l.ToString()).ToList(), clusters, reports,
            extracted.Sum(r => (long)r.Rank * (r.Shape[0] + r.Shape[1])), extracted.Sum(r => r.Shape[0] * r.Shape[1]),
            [.. Plan.NotCarried, .. reports.Where(r => r.Skipped is not null).Select(r => $"{r.Name}: {r.Skipped}")]);
        AtomicFile.WriteAllText(Path.Combine(outFolder, ReportFileName), JsonSerializer.Serialize(summary, JsonOptions) + "\n");
        if (cleanup)
            Directory.Delete(Path.Combine(outFolder, ShardFolder), recursive: true);
        onEvent?.Invoke(new ExtractionEvent("consolidated", -1, reports.Count, reports.Count, Message: $"{extracted.Count} modules → {adapterPath}"));
        return summary;
    }

    /// <summary>Reads the written adapter back: every key present with the shard's exact bytes, nothing else.</summary>
    private static void Verify(string adapterPath, IReadOnlyList<(SafetensorsFile File, string Name)> keys)
    {
        using var written = SafetensorsFile.Open(adapterPath);
        if (written.Tensors.Count != keys.Count)
            throw new IOException($"{adapterPath}: {written.Tensors.Count} tensors written, {keys.Count} expected");
        foreach (var (file, name) in keys)
        {
            if (!written.Contains(name) || !written.GetBytes(name).SequenceEqual(file.GetBytes(name)))
                throw new IOException($"{adapterPath}: '{name}' does not match its shard; shards kept");
        }
    }

    /// <summary>
    /// adapter_config.json for the extracted modules: r is the most common rank, other ranks go to
    /// rank_pattern (and, with alpha = rank, alpha_pattern) by full module path; target_modules
    /// lists module types when they select exactly the extracted modules, else full paths.
    /// </summary>
    private LoraConfig Config(IReadOnlyList<TensorReport> extracted)
    {
        var rank = extracted.GroupBy(r => r.Rank).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        var odd = extracted.Where(r => r.Rank != rank).ToList();
        var types = extracted.Select(r => ExtractionPlan.TypeOf(r.Name)).Distinct().Order(StringComparer.Ordinal).ToList();
        var modules = extracted.Select(r => r.Module).ToHashSet(StringComparer.Ordinal);
        var selectedByTypes = _student.Names
            .Where(n => n.EndsWith(".weight", StringComparison.Ordinal) && _student.GetInfo(n).Shape.Length == 2)
            .Select(ExtractionPlan.ModuleOf)
            .Where(m => types.Any(t => m == t || m.EndsWith("." + t, StringComparison.Ordinal)))
            .ToHashSet(StringComparer.Ordinal);
        var targets = selectedByTypes.SetEquals(modules) ? types : [.. modules.Order(StringComparer.Ordinal)];
        return new LoraConfig
        {
            BaseModelNameOrPath = StudentFolder,
            R = rank,
            LoraAlpha = Options.Alpha ?? rank,
            TargetModules = JsonSerializer.SerializeToElement(targets),
            RankPattern = odd.ToDictionary(r => r.Module, r => r.Rank),
            AlphaPattern = Options.Alpha is null ? odd.ToDictionary(r => r.Module, r => (double)r.Rank) : [],
        };
    }

    private static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>FNV-1a of the name: a per-tensor seed offset that does not depend on shard or order.</summary>
    private static long StableHash(string name)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(name))
            hash = (hash ^ b) * 1099511628211UL;
        return (long)(hash >> 1);
    }

    public void Dispose()
    {
        _teacher.Dispose();
        _student.Dispose();
    }
}
