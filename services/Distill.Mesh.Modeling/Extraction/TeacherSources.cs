using System.Text.RegularExpressions;
using Distill.Mesh.Modeling.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Extraction;

/// <summary>A student tensor the teacher has nothing for; the reason goes into the report.</summary>
internal sealed class NoTeacherSourceException(string reason) : Exception(reason);

/// <summary>
/// The teacher tensor each student tensor is distilled from, before projection: the blend of the
/// mapped teacher layers; for experts, the blend of a k-means cluster of the mapped layers'
/// experts; for routers, the same blend of the clustered experts' rows. Deterministic for a seed,
/// so every shard worker derives the same clusters.
/// </summary>
internal sealed partial class TeacherSources(SafetensorsCheckpoint teacher, SafetensorsCheckpoint student, ExtractionPlan plan, ExtractionOptions options)
{
    /// <summary>Sampled entries per expert that k-means compares.</summary>
    private const int FingerprintEntries = 4096;

    private readonly Dictionary<int, ExpertLayer> _experts = [];

    /// <summary>Both checkpoints' expert tensors by layer, parsed once.</summary>
    private readonly ILookup<int, ExpertTensor> _teacherExperts = ExpertsByLayer(teacher);
    private readonly ILookup<int, ExpertTensor> _studentExperts = ExpertsByLayer(student);

    [GeneratedRegex(@"^model\.layers\.(\d+)\.mlp\.(gate_proj|up_proj|down_proj)\.weight$", RegexOptions.CultureInvariant)]
    private static partial Regex DenseMlp();

    /// <summary>A teacher expert and its weight in a blend.</summary>
    private sealed record Member(int Layer, int Expert, double Weight);

    /// <summary>A student layer's experts: members per student expert (null when the teacher's layers are dense).</summary>
    private sealed record ExpertLayer(ExpertClusters Report, IReadOnlyList<Member[]>? Members, ExpertStyle TeacherStyle);

    /// <summary>The clusterings computed so far, by student layer.</summary>
    public IReadOnlyList<ExpertClusters> Clusters => _experts.OrderBy(e => e.Key).Select(e => e.Value.Report).ToList();

    /// <summary>The teacher tensor for <paramref name="name"/>, in the compute dtype, and where it came from.</summary>
    public (Tensor Tensor, string Source) For(string name)
    {
        if (ExpertNaming.ParseLayer(name) is not { } layer)
            return (Read(Require(name)), name);
        var source = plan.Layers[layer];
        if (ExpertNaming.ParseExpert(name) is { } expert)
            return Expert(expert);
        if (ExpertNaming.ParseRouter(name) is not null)
            return Router(layer);
        if (DenseMlp().Match(name) is { Success: true } dense && !teacher.Contains(ExpertNaming.InLayer(name, source.Parts[0].Layer)))
            return MeanOfExperts(source, dense.Groups[2].Value);
        var blend = source.Parts.Select(p => (Read(Require(ExpertNaming.InLayer(name, p.Layer))), p.Weight)).ToList();
        return (Sum(blend), source.Blend);
    }

    private string Require(string name) =>
        teacher.Contains(name) ? name : throw new NoTeacherSourceException($"the teacher has no {name}");

    private Tensor Read(string name) => teacher.ReadTensor(name).to_type(options.ComputeDtype);

    private static Tensor Sum(IReadOnlyList<(Tensor Tensor, double Weight)> parts)
    {
        var shapes = parts.Select(p => $"[{string.Join(", ", p.Tensor.shape)}]").Distinct().ToList();
        if (shapes.Count > 1)
            throw new NoTeacherSourceException($"the blended teacher tensors differ in shape ({string.Join(" vs ", shapes)})");
        var total = parts.Sum(p => p.Weight);
        var sum = parts[0].Tensor * (parts[0].Weight / total);
        foreach (var (tensor, weight) in parts.Skip(1))
            sum = sum + tensor * (weight / total);
        return sum;
    }

    private (Tensor, string) Expert(ExpertTensor expert)
    {
        var layer = Experts(expert.Layer);
        var source = plan.Layers[expert.Layer];
        if (layer.Members is null)
        {
            // Dense teacher layers: every student expert starts from the teacher's MLP (upcycling).
            var part = ExpertNaming.Part(expert.Part, ExpertStyle.QwenMoe);
            var blend = source.Parts.Select(p => (Read(Require($"model.layers.{p.Layer}.mlp.{part}.weight")), p.Weight)).ToList();
            return (Sum(blend), $"{source.Blend} dense mlp.{part}");
        }

        if (expert.Expert >= layer.Members.Count)
            throw new NoTeacherSourceException($"student expert {expert.Expert} is outside the layer's {layer.Members.Count} experts");
        var members = layer.Members[expert.Expert];
        var teacherPart = ExpertNaming.Part(expert.Part, layer.TeacherStyle);
        var parts = members.Select(m => (Read(Require(ExpertNaming.ExpertName(m.Layer, m.Expert, teacherPart, layer.TeacherStyle))), m.Weight)).ToList();
        return (Sum(parts), $"experts {string.Join(" + ", members.Select(m => $"{m.Layer}.{m.Expert}"))}");
    }

    private (Tensor, string) Router(int studentLayer)
    {
        var layer = Experts(studentLayer);
        if (layer.Members is null)
            throw new NoTeacherSourceException($"the teacher's layer(s) {plan.Layers[studentLayer].Blend} are dense: no router to start from");
        var routers = layer.Members.SelectMany(m => m).Select(m => m.Layer).Distinct()
            .ToDictionary(l => l, l => Read(Require(ExpertNaming.RouterName(l, layer.TeacherStyle))));
        var rows = layer.Members.Select(members => Sum(members.Select(m => (routers[m.Layer][m.Expert], m.Weight)).ToList())).ToList();
        return (torch.stack(rows), $"router rows of {plan.Layers[studentLayer].Blend}, by cluster");
    }

    /// <summary>A dense student MLP from MoE teacher layers: the weighted mean of all their experts (k-means with k = 1).</summary>
    private (Tensor, string) MeanOfExperts(LayerSource source, string part)
    {
        var members = Candidates(source).ToList();
        if (members.Count == 0)
            throw new NoTeacherSourceException($"the teacher has neither mlp.{part} nor experts in {source.Blend}");
        var style = StyleOf(members[0].Layer);
        var teacherPart = ExpertNaming.Part(part, style);
        var parts = members.Select(m => (Read(Require(ExpertNaming.ExpertName(m.Layer, m.Expert, teacherPart, style))), m.Weight)).ToList();
        return (Sum(parts), $"mean of {members.Count} experts of {source.Blend}");
    }

    /// <summary>The experts of the mapped teacher layers, weighted by their layer's blend weight.</summary>
    private IEnumerable<Member> Candidates(LayerSource source) =>
        source.Parts.SelectMany(p => ExpertIds(_teacherExperts, p.Layer).Select(e => new Member(p.Layer, e, p.Weight)));

    private static ILookup<int, ExpertTensor> ExpertsByLayer(SafetensorsCheckpoint checkpoint) =>
        checkpoint.Names.Select(ExpertNaming.ParseExpert).OfType<ExpertTensor>().ToLookup(e => e.Layer);

    private static IReadOnlyList<int> ExpertIds(ILookup<int, ExpertTensor> experts, int layer) =>
        experts[layer].Select(e => e.Expert).Distinct().Order().ToList();

    private ExpertStyle StyleOf(int teacherLayer) => _teacherExperts[teacherLayer].First().Style;

    /// <summary>The student layer's experts ↔ teacher experts, clustered once and cached.</summary>
    private ExpertLayer Experts(int studentLayer)
    {
        if (_experts.TryGetValue(studentLayer, out var cached))
            return cached;
        var source = plan.Layers[studentLayer];
        var wanted = ExpertIds(_studentExperts, studentLayer).Count;
        if (wanted == 0)
            wanted = 1; // a router without experts is not a checkpoint we can load; treat as one
        var candidates = Candidates(source).ToList();
        ExpertLayer layer;
        if (candidates.Count == 0)
        {
            layer = new ExpertLayer(new ExpertClusters(studentLayer, Enumerable.Repeat(new[] { "dense" }, wanted).ToList(), false), null, ExpertStyle.QwenMoe);
        }
        else
        {
            var style = StyleOf(candidates[0].Layer);
            IReadOnlyList<Member[]> members;
            var clustered = false;
            if (source.Parts.Length == 1 && candidates.Count == wanted)
            {
                members = candidates.Select(c => new[] { c }).ToList();
            }
            else if (candidates.Count < wanted)
            {
                // More student experts than teacher experts to split: repeat them in order.
                members = Enumerable.Range(0, wanted).Select(e => new[] { candidates[e % candidates.Count] }).ToList();
            }
            else
            {
                var points = Fingerprints(candidates, style, studentLayer);
                var clustering = KMeans.Cluster(points, candidates.Select(c => c.Weight).ToArray(), wanted, options.Seed + studentLayer);
                // Clusters in order of their first member, so the numbering does not depend on k-means' labels.
                members = clustering.Members(wanted).OrderBy(m => m.Length == 0 ? int.MaxValue : m.Min())
                    .Select(m => m.Select(i => candidates[i]).ToArray()).ToList();
                clustered = true;
            }

            var report = new ExpertClusters(studentLayer, members.Select(m => m.Select(c => $"{c.Layer}.{c.Expert}").ToArray()).ToList(), clustered);
            layer = new ExpertLayer(report, members, style);
        }

        _experts[studentLayer] = layer;
        return layer;
    }

    /// <summary>
    /// Each candidate expert as a vector of the same sampled entries of every part (seeded, shared
    /// by all candidates): a cheap stand-in for the whole weights that keeps their distances. Only
    /// the sampled elements are read from the checkpoint, not the experts' full tensors.
    /// </summary>
    private double[,] Fingerprints(IReadOnlyList<Member> candidates, ExpertStyle style, int studentLayer)
    {
        var first = candidates[0];
        var parts = _teacherExperts[first.Layer].Where(e => e.Expert == first.Expert).Select(e => e.Part).Order(StringComparer.Ordinal).ToList();
        var random = new Random(unchecked((int)(options.Seed * 7919 + studentLayer)));
        var samples = parts.Select(part =>
        {
            var count = teacher.GetInfo(ExpertNaming.ExpertName(first.Layer, first.Expert, part, style)).Shape.Aggregate(1L, (a, b) => a * b);
            var take = (int)Math.Min(count, FingerprintEntries / parts.Count);
            return (Part: part, Indices: Enumerable.Range(0, take).Select(_ => random.NextInt64(count)).ToArray());
        }).ToList();
        var points = new double[candidates.Count, samples.Sum(s => s.Indices.Length)];
        for (var i = 0; i < candidates.Count; i++)
        {
            var column = 0;
            foreach (var (part, indices) in samples)
            {
                foreach (var value in teacher.ReadElements(Require(ExpertNaming.ExpertName(candidates[i].Layer, candidates[i].Expert, part, style)), indices))
                    points[i, column++] = value;
            }
        }

        return points;
    }
}
