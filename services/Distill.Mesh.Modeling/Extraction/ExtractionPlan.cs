using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Distill.Mesh.Modeling.Adapters;
using Distill.Mesh.Modeling.Checkpoints;

namespace Distill.Mesh.Modeling.Extraction;

/// <summary>
/// What an extraction will do, fixed before any work: the student tensors that get factors, the
/// ones that do not (and why), the layer map, and which shard computes which tensor. Every shard
/// worker derives the same plan from the same inputs; its <see cref="Hash"/> ties shard files to it.
/// </summary>
public sealed class ExtractionPlan
{
    private readonly int[] _shardOf;

    private ExtractionPlan(
        IReadOnlyList<string> tasks, int[] shardOf, IReadOnlyList<string> notCarried, IReadOnlyList<LayerSource> layers,
        int teacherLayers, int studentLayers, string hash, int shards)
    {
        Tasks = tasks;
        _shardOf = shardOf;
        NotCarried = notCarried;
        Layers = layers;
        TeacherLayers = teacherLayers;
        StudentLayers = studentLayers;
        Hash = hash;
        Shards = shards;
    }

    /// <summary>Student tensors to factorise, in name order.</summary>
    public IReadOnlyList<string> Tasks { get; }

    /// <summary>Student tensors left as they are, each with the reason ("name: reason").</summary>
    public IReadOnlyList<string> NotCarried { get; }

    /// <summary>Student layer → teacher layers.</summary>
    public IReadOnlyList<LayerSource> Layers { get; }

    public int TeacherLayers { get; }

    public int StudentLayers { get; }

    /// <summary>SHA-256 of both models' identities and the options.</summary>
    public string Hash { get; }

    public int Shards { get; }

    /// <summary>The tensors shard <paramref name="shard"/> computes.</summary>
    public IReadOnlyList<string> TasksOf(int shard)
    {
        if (shard < 0 || shard >= Shards)
            throw new ArgumentOutOfRangeException(nameof(shard), $"shard index {shard} is outside [0, {Shards})");
        return Tasks.Where((_, i) => _shardOf[i] == shard).ToList();
    }

    /// <summary>Whether a weight is a token embedding table (PEFT's embedding LoRA, not a linear one).</summary>
    public static bool IsEmbedding(string weightName) => LoraTargets.IsEmbedding(ModuleOf(weightName));

    /// <summary>The module path PEFT keys a weight by (the name without <c>.weight</c>).</summary>
    public static string ModuleOf(string weightName) => weightName[..^".weight".Length];

    /// <summary>The module type: the last segment of the module path (<c>q_proj</c>, <c>w2</c>, <c>gate</c>, <c>lm_head</c>).</summary>
    public static string TypeOf(string weightName) => ModuleOf(weightName).Split('.')[^1];

    /// <summary>Plans an extraction of <paramref name="student"/> from <paramref name="teacher"/>.</summary>
    public static ExtractionPlan Create(SafetensorsCheckpoint teacher, SafetensorsCheckpoint student, ExtractionOptions options)
    {
        options.Validate();
        var teacherLayers = LayerCount(teacher, "teacher");
        var studentLayers = LayerCount(student, "student");
        var layers = LayerMap.Build(teacherLayers, studentLayers);
        var targets = options.TargetModules?.ToHashSet(StringComparer.Ordinal);

        if (options.IncludeEmbeddings && !student.Contains("lm_head.weight"))
            throw new ArgumentException("include embeddings: the student has no lm_head.weight (its output head is tied to the embeddings), and an embedding adapter on a tied table is not supported");
        var tasks = new List<string>();
        var notCarried = new List<string>();
        foreach (var name in student.Names.Order(StringComparer.Ordinal))
        {
            var info = student.GetInfo(name);
            var reason = name switch
            {
                _ when !name.EndsWith(".weight", StringComparison.Ordinal) => "not a weight (LoRA adapts linear weights only)",
                _ when info.Shape.Length != 2 => "a vector (norm or bias): LoRA adapts matrices only",
                _ when IsEmbedding(name) => options.IncludeEmbeddings ? null : "embedding: not extracted unless asked (--include-embeddings)",
                "lm_head.weight" when !options.IncludeLmHead => "lm_head: not extracted unless asked (--include-lm-head)",
                "lm_head.weight" => null,
                _ when ExpertNaming.ParseLayer(name) is null => "outside the decoder layers",
                _ when targets is not null && !targets.Contains(TypeOf(name)) => $"module type {TypeOf(name)} is not in target_modules",
                _ => null,
            };
            if (reason is null)
                tasks.Add(name);
            else
                notCarried.Add($"{name}: {reason}");
        }

        if (targets is not null)
        {
            var known = student.Names.Where(n => n.EndsWith(".weight", StringComparison.Ordinal)).Select(TypeOf).ToHashSet(StringComparer.Ordinal);
            var unknown = targets.Where(t => !known.Contains(t)).Order(StringComparer.Ordinal).ToList();
            if (unknown.Count > 0)
                throw new ArgumentException($"target_modules names module types the student does not have: {string.Join(", ", unknown)} (it has: {string.Join(", ", known.Order(StringComparer.Ordinal))})");
        }

        if (tasks.Count == 0)
            throw new ArgumentException("nothing to extract: no student weight matches the options");
        if (options.Shards > tasks.Count)
            throw new ArgumentException($"{options.Shards} shards for {tasks.Count} tensors: at most one shard per tensor");

        return new ExtractionPlan(tasks, Balance(tasks, student, options.Shards), notCarried, layers, teacherLayers, studentLayers, HashOf(teacher, student, layers, options), options.Shards);
    }

    /// <summary>Decoder layers: one more than the highest <c>model.layers.N</c> index.</summary>
    private static int LayerCount(SafetensorsCheckpoint checkpoint, string role)
    {
        var layers = checkpoint.Names.Select(ExpertNaming.ParseLayer).Where(l => l is not null).Select(l => l!.Value).ToList();
        if (layers.Count == 0)
            throw new ArgumentException($"the {role} ({checkpoint.Folder}) has no model.layers.N tensors: not a decoder checkpoint in Hugging Face naming");
        return layers.Max() + 1;
    }

    /// <summary>Largest tensors first, each to the least loaded shard (ties: lowest index); deterministic.</summary>
    private static int[] Balance(IReadOnlyList<string> tasks, SafetensorsCheckpoint student, int shards)
    {
        var shardOf = new int[tasks.Count];
        var load = new long[shards];
        var sizes = tasks.Select(t => student.GetInfo(t).Shape.Aggregate(1L, (a, b) => a * b)).ToArray();
        foreach (var i in Enumerable.Range(0, tasks.Count).OrderByDescending(i => sizes[i]).ThenBy(i => i))
        {
            var shard = Array.IndexOf(load, load.Min());
            shardOf[i] = shard;
            load[shard] += sizes[i];
        }

        return shardOf;
    }

    /// <summary>
    /// Both models' fingerprints (config and tensor index), their weight files' sizes and write
    /// times (a fine-tuned teacher has its base's fingerprint), the layer map (so shards of an
    /// earlier mapping rule are not taken as finished), and the options.
    /// </summary>
    private static string HashOf(SafetensorsCheckpoint teacher, SafetensorsCheckpoint student, IReadOnlyList<LayerSource> layers, ExtractionOptions options)
    {
        var text = new StringBuilder();
        text.AppendJoin('\n', layers.Select(l => string.Join(" ", l.Parts.Select(p => FormattableString.Invariant($"{p.Layer}:{p.Weight:R}"))))).Append('\n');
        foreach (var checkpoint in new[] { teacher, student })
        {
            text.Append(checkpoint.Fingerprint()).Append('\n');
            foreach (var file in checkpoint.Files.Select(f => new FileInfo(f.Path)).OrderBy(f => f.Name, StringComparer.Ordinal))
                text.Append($"{file.Name} {file.Length} {file.LastWriteTimeUtc.Ticks}\n");
        }

        text.Append(JsonSerializer.Serialize(new
        {
            options.Rank,
            RankPattern = options.RankPattern.OrderBy(p => p.Key, StringComparer.Ordinal).ToList(),
            options.Alpha,
            Svd = options.Svd.ToString(),
            options.Oversample,
            options.PowerIterations,
            options.Seed,
            options.TargetModules,
            options.IncludeLmHead,
            options.IncludeEmbeddings,
            options.ReportOptimum,
            ComputeDtype = options.ComputeDtype.ToString(),
            AdapterDtype = options.AdapterDtype.ToString(),
            options.Shards,
        }));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}
