using Distill.Mesh.Modeling.Extraction;
using Distill.Mesh.Specs.Runs;
using static TorchSharp.torch;

namespace Distill.Mesh.Clients.Extractor;

/// <summary>A run spec's extract section as the engine's extraction options (the trainer's extract stage and the extractor's job mode read the same).</summary>
public static class ExtractionSpecs
{
    public static ExtractionOptions ToOptions(ExtractSettings settings, long seed) => new()
    {
        Rank = settings.Rank,
        RankPattern = settings.RankPattern,
        Alpha = settings.Alpha,
        Svd = settings.Svd.Equals("randomized", StringComparison.OrdinalIgnoreCase) ? SvdMethod.Randomized : SvdMethod.Exact,
        Oversample = settings.Oversample,
        PowerIterations = settings.PowerIterations,
        Seed = seed,
        TargetModules = settings.TargetModules,
        IncludeLmHead = settings.IncludeLmHead,
        IncludeEmbeddings = settings.IncludeEmbeddings,
        AdapterDtype = settings.AdapterDtype.ToLowerInvariant() switch
        {
            "bfloat16" => ScalarType.BFloat16,
            "float16" => ScalarType.Float16,
            "float64" => ScalarType.Float64,
            _ => ScalarType.Float32,
        },
        Shards = settings.Shards,
    };

    /// <summary>The folders an extract stage works on: the teacher, the student (base) and where the adapter goes.</summary>
    public static (string Teacher, string Student, string Output) Folders(RunSpec spec, string? trainedModel)
    {
        var teacher = spec.Extract.Teacher ?? spec.Train.Teachers.FirstOrDefault()?.Model ?? throw new ArgumentException("extract.teacher is required");
        var student = spec.Extract.Student ?? trainedModel ?? spec.Train.Student.Model;
        return (teacher, student, Path.Combine(spec.Train.OutputDir, "extract"));
    }
}
