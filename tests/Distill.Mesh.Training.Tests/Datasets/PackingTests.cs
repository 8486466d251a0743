using Distill.Mesh.Modeling.Losses;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Datasets;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Training.Tests.Datasets;

public class PackingTests
{
    private static readonly TokenizedExample[] Examples =
    [
        new([256, 10, 11, 12, 13], [-100, -100, 11, 12, 13]),
        new([256, 20, 21], [-100, 20, 21]),
        new([256, 30, 31, 32], [256, 30, 31, 32]),
        new([256, 40, 41, 42, 43, 44], [-100, 40, 41, 42, 43, 44]),
    ];

    [Fact]
    public void Pack_FillsInOrder_AndMasksEachDocumentsFirstLabel()
    {
        var packed = Packing.Pack(Examples, maxLength: 12);

        Assert.Equal(2, packed.Count);
        Assert.Equal([256, 10, 11, 12, 13, 256, 20, 21, 256, 30, 31, 32], packed[0].InputIds);
        Assert.Equal([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2], packed[0].DocumentIds!);
        Assert.Equal([-100L, -100, 11, 12, 13, -100, 20, 21, -100, 30, 31, 32], packed[0].Labels);
        Assert.Equal(Examples[3].InputIds, packed[1].InputIds);
        Assert.Throws<ArgumentException>(() => Packing.Pack(Examples, maxLength: 5));
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("mistral")]
    public void PackedSequence_GivesEachDocumentItsUnpackedLogitsAndLoss(string family)
    {
        using var model = TinyModels.Create(family, seed: 3);
        var packed = Packing.Pack(Examples.Take(3), maxLength: 12);
        using var batch = Batching.Collate(packed, padTokenId: 0);

        using var logits = model.Forward(batch.InputIds, batch.AttentionMask, batch.PositionIds, documentIds: batch.DocumentIds)[0];

        Assert.Equal(new long[] { 0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3 }, batch.PositionIds!.data<long>().ToArray());
        double packedLoss = 0, separateLoss = 0;
        var offset = 0;
        foreach (var example in Examples.Take(3))
        {
            using var alone = model.Forward(torch.tensor(example.InputIds.Select(i => (long)i).ToArray()).unsqueeze(0))[0];
            TensorAssert.Close(alone, logits.narrow(0, offset, example.InputIds.Length), atol: 1e-5);
            using var labels = torch.tensor(example.Labels.Skip(1).ToArray());
            separateLoss += DistillationLoss.HardCrossEntropy(alone.narrow(0, 0, example.InputIds.Length - 1), labels).sum().item<float>();
            offset += example.InputIds.Length;
        }

        using var packedLabels = batch.Labels[0].narrow(0, 1, 11);
        packedLoss = DistillationLoss.HardCrossEntropy(logits.narrow(0, 0, 11), packedLabels).sum().item<float>();
        Assert.Equal(separateLoss, packedLoss, 3);
    }
}
