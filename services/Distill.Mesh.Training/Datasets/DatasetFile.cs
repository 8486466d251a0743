using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet.Serialization;

namespace Distill.Mesh.Training.Datasets;

/// <summary>Reads JSON (an array of objects, or one object), JSONL and Parquet dataset files.</summary>
public static class DatasetFile
{
    /// <summary>All rows of a file, chosen by its extension.</summary>
    public static async Task<IReadOnlyList<DatasetRecord>> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"no dataset file at '{path}'");
        var extension = Path.GetExtension(path).ToLowerInvariant();
        return extension switch
        {
            ".jsonl" => await ReadJsonLinesAsync(path, cancellationToken),
            ".json" => await ReadJsonAsync(path, cancellationToken),
            ".parquet" => await ReadParquetAsync(path, cancellationToken),
            _ => throw new DatasetFormatException($"{path}: unknown dataset extension '{extension}' (supported: .json, .jsonl, .parquet)"),
        };
    }

    private static async Task<IReadOnlyList<DatasetRecord>> ReadJsonLinesAsync(string path, CancellationToken cancellationToken)
    {
        var records = new List<DatasetRecord>();
        var number = 0;
        await foreach (var line in File.ReadLinesAsync(path, cancellationToken))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
                continue;
            JsonNode? node;
            try
            {
                node = JsonNode.Parse(line);
            }
            catch (JsonException e)
            {
                throw new DatasetFormatException($"{path}: line {number}: not valid JSON ({e.Message})", e);
            }

            records.Add(new DatasetRecord(path, $"line {number}", node as JsonObject
                ?? throw new DatasetFormatException($"{path}: line {number}: expected a JSON object")));
        }

        return records;
    }

    private static async Task<IReadOnlyList<DatasetRecord>> ReadJsonAsync(string path, CancellationToken cancellationToken)
    {
        JsonNode? root;
        try
        {
            await using var stream = File.OpenRead(path);
            root = await JsonNode.ParseAsync(stream, cancellationToken: cancellationToken);
        }
        catch (JsonException e)
        {
            throw new DatasetFormatException($"{path}: not valid JSON ({e.Message}); JSON Lines files need the .jsonl extension", e);
        }

        return root switch
        {
            JsonObject single => [new DatasetRecord(path, "record 1", single)],
            JsonArray array => array.Select((item, i) => new DatasetRecord(path, $"record {i + 1}", item as JsonObject
                ?? throw new DatasetFormatException($"{path}: record {i + 1}: expected a JSON object"))).ToList(),
            _ => throw new DatasetFormatException($"{path}: expected a JSON array of objects"),
        };
    }

    private static async Task<IReadOnlyList<DatasetRecord>> ReadParquetAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = File.OpenRead(path);
            var result = await ParquetSerializer.DeserializeUntypedAsync(stream, cancellationToken: cancellationToken);
            return result.Data.Select((row, i) => new DatasetRecord(path, $"row {i + 1}", JsonSerializer.SerializeToNode(row)!.AsObject())).ToList();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or InvalidOperationException)
        {
            throw new DatasetFormatException($"{path}: not a readable Parquet file ({e.Message})", e);
        }
    }
}
