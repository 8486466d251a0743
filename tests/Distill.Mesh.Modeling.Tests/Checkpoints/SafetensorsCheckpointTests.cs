using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Testing;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Tests.Checkpoints;

public class SafetensorsCheckpointTests
{
    private static List<KeyValuePair<string, Tensor>> SampleTensors() =>
        Enumerable.Range(0, 5).Select(i => KeyValuePair.Create($"layers.{i}.weight", torch.full(10, 10, i, dtype: ScalarType.Float32))).ToList();

    [Fact]
    public void Fingerprint_TellsAFineTuneFromItsBase_AndIgnoresWhereTheFolderIs()
    {
        using var dir = new TempFolder();
        // One tensor under 1 MiB (hashed whole), one over it (sampled).
        using var generator = new Generator(10);
        var small = randn(16, 16, generator: generator);
        var large = randn(1024, 512, generator: generator);
        SafetensorsCheckpoint.Save(dir.Combine("base"), [KeyValuePair.Create("a.weight", small), KeyValuePair.Create("b.weight", large)]);
        File.WriteAllText(dir.Combine("base", "config.json"), "{}");
        SafetensorsCheckpoint.Save(dir.Combine("copy"), [KeyValuePair.Create("a.weight", small), KeyValuePair.Create("b.weight", large)]);
        File.WriteAllText(dir.Combine("copy", "config.json"), "{}");
        var tuned = small.clone();
        tuned[3, 4] = tuned[3, 4] + 1e-3f;
        SafetensorsCheckpoint.Save(dir.Combine("tuned"), [KeyValuePair.Create("a.weight", tuned), KeyValuePair.Create("b.weight", large)]);
        File.WriteAllText(dir.Combine("tuned", "config.json"), "{}");
        var tunedLarge = large * 1.001f;
        SafetensorsCheckpoint.Save(dir.Combine("tuned-large"), [KeyValuePair.Create("a.weight", small), KeyValuePair.Create("b.weight", tunedLarge)]);
        File.WriteAllText(dir.Combine("tuned-large", "config.json"), "{}");

        var fingerprint = SafetensorsCheckpoint.Fingerprint(dir.Combine("base"));
        Assert.Equal(fingerprint, SafetensorsCheckpoint.Fingerprint(dir.Combine("copy")));
        Assert.NotEqual(fingerprint, SafetensorsCheckpoint.Fingerprint(dir.Combine("tuned")));
        Assert.NotEqual(fingerprint, SafetensorsCheckpoint.Fingerprint(dir.Combine("tuned-large")));
    }

    [Fact]
    public void Save_AboveShardSize_WritesShardsAndIndexThatLoadBack()
    {
        using var dir = new TempFolder();
        var tensors = SampleTensors();

        SafetensorsCheckpoint.Save(dir.Path, tensors, maxShardBytes: 900);

        var shards = Directory.GetFiles(dir.Path, "model-*.safetensors").Select(f => Path.GetFileName(f)!).Order().ToArray();
        Assert.Equal(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"], shards);
        var index = JsonNode.Parse(File.ReadAllText(dir.Combine(SafetensorsCheckpoint.IndexFileName)))!;
        Assert.Equal(5 * 400, index["metadata"]!["total_size"]!.GetValue<long>());
        Assert.Equal("model-00003-of-00003.safetensors", index["weight_map"]!["layers.4.weight"]!.GetValue<string>());

        using var checkpoint = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Equal(tensors.Select(t => t.Key).Order(), checkpoint.Names.Order());
        foreach (var (name, expected) in tensors)
        {
            using var actual = checkpoint.ReadTensor(name);
            TensorAssert.Equal(expected, actual, name);
        }
    }

    [Fact]
    public void Save_SingleFileAfterSharded_RemovesStaleShardsAndIndex()
    {
        using var dir = new TempFolder();
        SafetensorsCheckpoint.Save(dir.Path, SampleTensors(), maxShardBytes: 900);

        SafetensorsCheckpoint.Save(dir.Path, SampleTensors());

        Assert.Equal([SafetensorsCheckpoint.SingleFileName], Directory.GetFiles(dir.Path).Select(f => Path.GetFileName(f)!));
    }

    [Fact]
    public void Open_IndexNamingMissingShard_ThrowsNamingIt()
    {
        using var dir = new TempFolder();
        SafetensorsCheckpoint.Save(dir.Path, SampleTensors(), maxShardBytes: 900);
        File.Delete(dir.Combine("model-00002-of-00003.safetensors"));

        var error = Assert.Throws<CheckpointFormatException>(() => SafetensorsCheckpoint.Open(dir.Path));

        Assert.Contains("missing: model-00002-of-00003.safetensors", error.Message);
    }

    [Fact]
    public void Open_IndexMappingTensorToWrongShard_Throws()
    {
        using var dir = new TempFolder();
        SafetensorsCheckpoint.Save(dir.Path, SampleTensors(), maxShardBytes: 900);
        var indexPath = dir.Combine(SafetensorsCheckpoint.IndexFileName);
        var index = JsonNode.Parse(File.ReadAllText(indexPath))!;
        index["weight_map"]!["layers.0.weight"] = "model-00003-of-00003.safetensors";
        File.WriteAllText(indexPath, index.ToJsonString());

        var error = Assert.Throws<CheckpointFormatException>(() => SafetensorsCheckpoint.Open(dir.Path));

        Assert.Contains("'layers.0.weight' is mapped to model-00003-of-00003.safetensors, which does not contain it", error.Message);
    }

    [Fact]
    public void Open_IndexWithPathInShardName_IsRejected()
    {
        using var dir = new TempFolder();
        File.WriteAllText(dir.Combine(SafetensorsCheckpoint.IndexFileName), "{\"weight_map\":{\"a\":\"../../etc/passwd\"}}");

        var error = Assert.Throws<CheckpointFormatException>(() => SafetensorsCheckpoint.Open(dir.Path));

        Assert.Contains("must be a plain file name", error.Message);
    }
}
