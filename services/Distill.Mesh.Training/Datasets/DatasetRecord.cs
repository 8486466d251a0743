using System.Text.Json.Nodes;

namespace Distill.Mesh.Training.Datasets;

/// <summary>One row of a dataset file, with where it came from (for error messages).</summary>
/// <param name="Source">File path.</param>
/// <param name="Location">"line 12" (JSONL), "record 3" (JSON array) or "row 7" (Parquet).</param>
/// <param name="Fields">The row's fields.</param>
public sealed record DatasetRecord(string Source, string Location, JsonObject Fields);

/// <summary>A dataset row is malformed; the message names the file, the row and why.</summary>
public sealed class DatasetFormatException(string message, Exception? inner = null) : Exception(message, inner);
