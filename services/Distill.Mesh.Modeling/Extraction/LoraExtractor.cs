using Distill.Mesh.Specs.Storage;
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
public sealed partial class LoraExtractor : IDisposable
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
        return new FileInfo(path).Length == report.Bytes && FileHash.Sha256(path) == report.Sha256 ? report : null;
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
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var (report, a, b) = ExtractOne(name, sources);
                ExtractionMetrics.Tensor(report, System.Diagnostics.Stopwatch.GetElapsedTime(started));
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
            var result = new ShardReport(Plan.Hash, shard, Plan.Shards, FileHash.Sha256(path), new FileInfo(path).Length, reports, sources.Clusters);
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

        var (projected, method) = ProjectFused(name, teacher, shape) ?? ShapeProjector.Project(teacher, shape);
        var delta = projected - _student.ReadTensor(name).to_type(Options.ComputeDtype);
        // Δ in float64 once: its norm now, the error of the saved factors below.
        var exact = delta.to_type(ScalarType.Float64);
        var norm = exact.norm().item<double>();
        if (norm == 0)
            return (Skipped(source, method.ToString(), 0, "no difference between teacher and student"), null, null);
        if (!double.IsFinite(norm))
            throw new InvalidOperationException($"{name}: the teacher − student difference has NaN or infinite entries");

        var scaling = alpha / rank;
        // An embedding adapter is applied transposed (ΔE = scaling·(B·A)ᵀ): factorise Δᵀ [hidden, vocab].
        if (ExtractionPlan.IsEmbedding(name))
            (delta, exact) = (delta.t(), exact.t());
        using var low = TruncatedSvd.Compute(delta, rank, Options.Svd, Options.Oversample, Options.PowerIterations, Options.Seed + StableHash(name));
        var root = low.S.sqrt();
        // α/r is divided out here and applied once by the loader (PEFT's contract).
        var b = ((low.U * root.unsqueeze(0)) / Math.Sqrt(scaling)).to_type(Options.AdapterDtype).contiguous();
        var a = ((root.unsqueeze(1) * low.V.t()) / Math.Sqrt(scaling)).to_type(Options.AdapterDtype).contiguous();

        // Errors of what is saved (after the dtype cast), in float64.
        var saved = b.to_type(ScalarType.Float64).matmul(a.to_type(ScalarType.Float64)) * scaling;
        var error = (exact - saved).norm().item<double>() / norm;
        // The exact SVD saw the whole spectrum; the randomized one needs the singular values computed.
        double? optimum = !(Options.ReportOptimum ?? Options.Svd == SvdMethod.Exact) ? null
            : (low.DroppedNorm ?? TruncatedSvd.OptimalError(TruncatedSvd.SingularValues(exact), rank)) / norm;
        var report = new TensorReport(name, module, shape, source, method.ToString(), rank, alpha, Options.Svd.ToString(), error, optimum, norm);
        return (report, a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope());
    }

    /// <summary>A fused weight of another size, projected part by part (teacher parts sized from its first mapped layer); null otherwise.</summary>
    private (Tensor Projected, ProjectionMethod Method)? ProjectFused(string name, Tensor teacher, long[] shape)
    {
        if (teacher.shape.SequenceEqual(shape) || FusedProjections.RowBlocks(name, _student) is not { } studentBlocks)
            return null;
        var teacherName = ExpertNaming.ParseLayer(name) is { } layer ? ExpertNaming.InLayer(name, Plan.Layers[layer].Parts[0].Layer) : name;
        return FusedProjections.RowBlocks(teacherName, _teacher) is { } teacherBlocks
            ? FusedProjections.Project(teacher, teacherBlocks, studentBlocks, shape[1])
            : null;
    }

    /// <summary>The module's rank by PEFT's rank_pattern rule (the loader's own matching).</summary>
    private int RankOf(string module) =>
        LoraTargets.RankAndAlpha(new LoraConfig { R = Options.Rank, RankPattern = new Dictionary<string, int>(Options.RankPattern) }, module).Rank;

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
