using Distill.Mesh.Specs.Configuration;

namespace Distill.Mesh.Specs.Runs;

/// <summary>Where a run spec will execute, which decides what must be checked.</summary>
/// <param name="CheckPaths">The model folders and datasets it names are on this machine (checked to exist).</param>
/// <param name="ThroughMesh">It runs on the mesh (a trainer service chooses the output folder; teachers may be services).</param>
/// <param name="PrecomputeThroughServices">Its precompute stage scores through the teachers' services (the trainer's), not in a teacher's own job.</param>
public sealed record RunValidation(bool CheckPaths, bool ThroughMesh, bool PrecomputeThroughServices = true);

/// <summary>
/// A whole run spec checked before anything is created: the stages (known, in order, each with what
/// it needs), the recipe (<see cref="TrainConfigValidator"/>), the stage sections and the service
/// addresses. All problems are reported at once, each naming its key.
/// </summary>
public static class RunSpecValidator
{
    public static List<string> Problems(ParsedRunSpec parsed, RunValidation validation)
    {
        var spec = parsed.Spec;
        var p = new TrainConfigValidator.ProblemList();
        CheckStages(spec, p);
        var trains = spec.Has(Stage.Train);
        if (trains || spec.Has(Stage.Precompute))
            p.List.AddRange(TrainConfigValidator.Problems(spec.Train, validation.CheckPaths && trains));
        if (validation.ThroughMesh && parsed.GivenKeys.Contains("output_dir"))
            p.Add("output_dir: a mesh run's outputs go to the trainer's runs folder (<runs>/<run id>); remove output_dir from the spec");

        if (spec.Mesh.Trainer is { } trainer)
            p.Address("mesh.trainer", trainer);
        if (spec.Mesh.Teacher is { } teacher)
            p.Address("mesh.teacher", teacher);
        var unserved = spec.Train.Teachers.Count(t => string.IsNullOrWhiteSpace(t.Endpoint));
        if (spec.Mesh.Teacher is not null && unserved > 1)
            p.Add($"mesh.teacher: one address for {unserved} teachers would serve every one of them the same model; give each teacher its own teachers[i].endpoint");

        if (spec.Has(Stage.Precompute))
        {
            p.Range("precompute.shards", spec.Precompute.Shards, 1, 4096);
            if (spec.Train.Teachers.Count == 0)
                p.Add("stages: precompute scores the dataset with the run's teachers; the spec has none");
            else if (validation.ThroughMesh && validation.PrecomputeThroughServices && unserved > 0 && spec.Mesh.Teacher is null)
                p.Add("stages: precompute fills a teacher service's cache; give the teachers endpoints (teachers[i].endpoint or mesh.teacher)");
            if (spec.Train.Signal.Format.Equals("dense", StringComparison.OrdinalIgnoreCase))
                p.Add("signal.format: precompute caches sparse signals (topk or sampled), not dense logits");
            if (spec.Train.Recipe != "kd")
                p.Add($"stages: precompute scores the fixed micro-batches of a kd run; recipe {spec.Train.Recipe} asks its teacher about sequences made during training");
        }

        if (spec.Has(Stage.Extract))
            CheckExtract(spec, validation, p);
        if (spec.Has(Stage.Evaluate))
        {
            p.Range("evaluate.max_examples", spec.Evaluate.MaxExamples, 1, 10_000_000);
            if (spec.Evaluate.Dataset is { } dataset && validation.CheckPaths && !File.Exists(dataset))
                p.Add($"evaluate.dataset: no file at '{dataset}'");
            if (spec.Evaluate.Dataset is null && spec.Train.Dataset.EvalFraction == 0)
                p.Add("evaluate: the run's dataset has no eval split (dataset.eval_fraction is 0); set evaluate.dataset or dataset.eval_fraction");
        }

        if (spec.Has(Stage.Publish) && spec.Train.Publish is not { Name.Length: > 0 })
            p.Add("publish: the publish stage needs publish.name (the registry artifact name)");
        if (!spec.Has(Stage.Publish) && spec.Train.Publish is { Name.Length: > 0 })
            p.Add("stages: the spec has a publish section but no publish stage; add publish to stages, or remove the section");
        return p.List;
    }

    private static void CheckStages(RunSpec spec, TrainConfigValidator.ProblemList p)
    {
        if (spec.Stages.Count == 0)
        {
            p.Add($"stages: give at least one of {string.Join(", ", Stage.Order)}");
            return;
        }

        foreach (var unknown in spec.Stages.Where(s => !Stage.Order.Contains(s)))
        {
            var suggestion = ConfigBinder.Suggest(unknown, Stage.Order);
            p.Add($"stages: '{unknown}' is not a stage ({string.Join(", ", Stage.Order)}){(suggestion is null ? "" : $"; did you mean '{suggestion}'?")}");
        }

        var known = spec.Stages.Where(s => Stage.Order.Contains(s)).ToList();
        if (known.Distinct().Count() != known.Count)
            p.Add($"stages: [{string.Join(", ", spec.Stages)}] names a stage twice");
        else if (!known.SequenceEqual(Stage.Order.Where(known.Contains)))
            p.Add($"stages: [{string.Join(", ", spec.Stages)}] are out of order; stages run as {string.Join(" → ", Stage.Order)}");
        var producesResult = known.Contains(Stage.Train) || known.Contains(Stage.Extract);
        if (known.Contains(Stage.Evaluate) && !producesResult)
            p.Add("stages: evaluate needs a train or extract stage before it (what would it evaluate?)");
        if (known.Contains(Stage.Publish) && !producesResult)
            p.Add("stages: publish needs a train or extract stage before it (what would it publish?)");
    }

    private static void CheckExtract(RunSpec spec, RunValidation validation, TrainConfigValidator.ProblemList p)
    {
        var extract = spec.Extract;
        var teacher = extract.Teacher ?? spec.Train.Teachers.FirstOrDefault()?.Model;
        var student = extract.Student ?? (spec.Has(Stage.Train) ? null : spec.Train.Student.Model);
        if (string.IsNullOrWhiteSpace(teacher))
            p.Add("extract.teacher is required (or a first teacher with a model folder)");
        else if (validation.CheckPaths)
            p.Folder("extract.teacher", teacher, "config.json");
        if (student is null && spec.Has(Stage.Train) && spec.Train.Student.Lora is not null)
            p.Add("extract: after a LoRA train stage there is no full student to extract into; set extract.student");
        else if (!string.IsNullOrWhiteSpace(student) && validation.CheckPaths)
            p.Folder("extract.student", student, "config.json");
        else if (student is not null && string.IsNullOrWhiteSpace(student))
            p.Add("extract.student is required (or student.model)");
        p.Range("extract.rank", extract.Rank, 1, 4096);
        foreach (var (module, rank) in extract.RankPattern)
            p.Range($"extract.rank_pattern.{module}", rank, 1, 4096);
        if (extract.Alpha is { } alpha)
            p.Positive("extract.alpha", alpha, max: 1e6);
        p.OneOf("extract.svd", extract.Svd, ConfigNames.SvdMethods);
        p.Range("extract.oversample", extract.Oversample, 0, 1024);
        p.Range("extract.power_iterations", extract.PowerIterations, 0, 64);
        p.OneOf("extract.adapter_dtype", extract.AdapterDtype, ConfigNames.AdapterDtypes);
        p.Range("extract.shards", extract.Shards, 1, 4096);
        if (extract.TargetModules is { } targets && (targets.Count == 0 || targets.Any(string.IsNullOrWhiteSpace)))
            p.Add("extract.target_modules: give module types (e.g. [q_proj, v_proj]) or leave it out for every linear weight");
    }
}
