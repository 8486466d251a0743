using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Modeling.Generation;
using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Modeling.Models;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Training.Datasets;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Teachers;

/// <summary>A teacher model loaded in this process.</summary>
public sealed class InProcessTeacher : ITeacherSignal, ITeacherGenerator
{
    private readonly TeacherDescription _description;

    public InProcessTeacher(CausalLanguageModel model, TextTokenizer tokenizer, string fingerprint, IReadOnlySet<int>? stopTokens = null)
    {
        Model = model;
        StopTokens = stopTokens ?? (model.Config.EosTokenId ?? []).ToHashSet();
        Tokenizer = tokenizer;
        model.eval();
        foreach (var parameter in model.parameters())
            parameter.requires_grad = false;
        _description = new TeacherDescription(fingerprint, tokenizer.Hash, model.Config.VocabSize, tokenizer.VocabularySize, model.Config.MaxPositionEmbeddings);
    }

    public CausalLanguageModel Model { get; }

    public TextTokenizer Tokenizer { get; }

    /// <summary>Where the teacher's own generations stop (its generation config's EOS ids).</summary>
    public IReadOnlySet<int> StopTokens { get; }

    /// <summary>Loads a teacher from an HF folder (weights and tokenizer).</summary>
    public static InProcessTeacher Load(string folder, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var model = CausalLanguageModel.FromPretrained(folder, dtype, device);
        return new(model, TokenizerLoader.Load(folder), Fingerprint(folder), GenerationConfig.Load(folder).StopTokens(model.Config));
    }

    /// <summary>SHA-256 of config.json and every weight's name, dtype and shape.</summary>
    public static string Fingerprint(string folder) => SafetensorsCheckpoint.Fingerprint(folder);

    public TeacherDescription Describe() => _description;

    /// <summary>One short forward pass (kernel selection and first allocations happen here, not in a client's request).</summary>
    public void WarmUp(int tokens = 16)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var length = Math.Min(tokens, Math.Max(2, Model.Config.MaxPositionEmbeddings));
        var ids = torch.arange(length, dtype: ScalarType.Int64, device: Model.Device).remainder(Model.Config.VocabSize).unsqueeze(0);
        Model.Hidden(ids, torch.ones_like(ids), null, null, null);
    }

    public Task<ITeacherRows> ScoreAsync(Batch batch, SignalRequest request, CancellationToken cancellationToken = default) =>
        Task.FromResult(Score(batch, request));

    public Task<IReadOnlyList<IReadOnlyList<int>>> GenerateAsync(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options, CancellationToken cancellationToken = default) =>
        Task.Run(() => (IReadOnlyList<IReadOnlyList<int>>)TextGenerator.Generate(Model, prompts, options with { StopTokenIds = StopTokens.Union(options.StopTokenIds).ToHashSet() }, cancellationToken: cancellationToken)
            .Select(g => g.Tokens).ToList(), cancellationToken);

    /// <summary>Scores synchronously (for callers already on a worker thread); the rows own their tensors.</summary>
    public ITeacherRows Score(Batch batch, SignalRequest request)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var hidden = Model.Hidden(batch.InputIds.to(Model.Device), batch.AttentionMask.to(Model.Device), batch.PositionIds?.to(Model.Device), null, batch.DocumentIds?.to(Model.Device));
        // Position t predicts token t + 1: the last position predicts nothing in the batch.
        var rows = hidden.narrow(1, 0, hidden.shape[1] - 1).reshape(-1, hidden.shape[^1]).contiguous();
        var head = Model.OutputWeight.narrow(0, 0, request.Vocabulary);
        var softcap = Model.Config.FinalLogitSoftcap;
        var dense = new ProjectedTeacherRows(rows, head, softcap: softcap);
        return request.Format switch
        {
            SignalFormat.Dense => new ProjectedTeacherRows(rows.DetachFromDisposeScope(), head.DetachFromDisposeScope(), owns: true, softcap: softcap),
            SignalFormat.TopK => new TargetRows(Sparse(dense, request, logits => TopKTeacherSignal.FromLogits(logits, request.K, request.Temperature, request.Mode)).Detached(), owns: true),
            SignalFormat.Sampled => new TargetRows(SampledSignal(dense, request).Detached(), owns: true),
            _ => throw new ArgumentOutOfRangeException(nameof(request)),
        };
    }

    /// <summary>Builds a sparse signal a block of positions at a time, so full logits never exist whole.</summary>
    private static TeacherTarget Sparse(ProjectedTeacherRows dense, SignalRequest request, Func<Tensor, TeacherTarget> make)
    {
        var block = ChunkedDistillationLoss.DefaultBlockSize(request.Vocabulary);
        var parts = new List<TeacherTarget>();
        for (long start = 0; start < dense.Rows; start += block)
        {
            using var scope = torch.NewDisposeScope();
            var logits = ((DenseTeacherLogits)dense.Block(start, Math.Min(block, dense.Rows - start))).Logits;
            var part = make(logits);
            parts.Add(part switch
            {
                TopKTeacherSignal t => new TopKTeacherSignal(t.Ids.MoveToOuterDisposeScope(), t.LogProbs.MoveToOuterDisposeScope(), t.Mode),
                SampledTeacherSignal s => new SampledTeacherSignal(s.Ids.MoveToOuterDisposeScope(), s.Weights.MoveToOuterDisposeScope(), s.LogProbs.MoveToOuterDisposeScope()),
                _ => throw new InvalidOperationException(),
            });
        }

        return parts[0] switch
        {
            TopKTeacherSignal first => new TopKTeacherSignal(torch.cat(parts.Select(p => ((TopKTeacherSignal)p).Ids).ToList(), 0),
                torch.cat(parts.Select(p => ((TopKTeacherSignal)p).LogProbs).ToList(), 0), first.Mode),
            _ => new SampledTeacherSignal(torch.cat(parts.Select(p => ((SampledTeacherSignal)p).Ids).ToList(), 0),
                torch.cat(parts.Select(p => ((SampledTeacherSignal)p).Weights).ToList(), 0),
                torch.cat(parts.Select(p => ((SampledTeacherSignal)p).LogProbs).ToList(), 0)),
        };
    }

    private static TeacherTarget SampledSignal(ProjectedTeacherRows dense, SignalRequest request)
    {
        using var generator = new Generator((ulong)request.Seed);
        return Sparse(dense, request, logits => SampledTeacherSignal.FromLogits(logits, request.Samples, request.Temperature, generator));
    }

    public void Dispose() => Model.Dispose();
}
