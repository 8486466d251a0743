using System.Text.Json.Nodes;

namespace Distill.Mesh.Training.Datasets;

/// <summary>The row layouts recognised, in detection order.</summary>
public enum DatasetLayout
{
    /// <summary><c>messages</c>: [{role, content}] (OpenAI / HF chat).</summary>
    Chat,

    /// <summary><c>conversations</c>: [{from, value}] (ShareGPT).</summary>
    ShareGpt,

    /// <summary><c>instruction</c>, optional <c>input</c>, <c>output</c> (or <c>response</c>) (Alpaca).</summary>
    Alpaca,

    /// <summary><c>prompt</c> and <c>completion</c>.</summary>
    PromptCompletion,

    /// <summary><c>text</c> (pre-training style: every token trained on).</summary>
    Text,
}

/// <summary>Detects a dataset's layout from its rows' fields.</summary>
public static class DatasetLayouts
{
    /// <summary>The layout of a row; null when it has none of the known fields.</summary>
    public static DatasetLayout? Of(JsonObject fields) =>
        fields.ContainsKey("messages") ? DatasetLayout.Chat
        : fields.ContainsKey("conversations") ? DatasetLayout.ShareGpt
        : fields.ContainsKey("instruction") ? DatasetLayout.Alpaca
        : fields.ContainsKey("prompt") && fields.ContainsKey("completion") ? DatasetLayout.PromptCompletion
        : fields.ContainsKey("text") ? DatasetLayout.Text
        : null;

    /// <summary>The layout of a dataset, from its first row; every later row is checked when it is converted.</summary>
    public static DatasetLayout Detect(IReadOnlyList<DatasetRecord> records, IReadOnlyDictionary<string, string>? columns = null)
    {
        if (records.Count == 0)
            throw new DatasetFormatException("the dataset has no rows");
        var first = records[0];
        return Of(first.Fields) ?? throw new DatasetFormatException(
            $"{first.Source}: {first.Location}: no known layout in fields [{string.Join(", ", first.Fields.Select(f => f.Key))}] " +
            "(expected messages, conversations, instruction/output, prompt/completion or text" +
            (columns is { Count: > 0 } ? $"; dataset.columns maps {string.Join(", ", columns.Select(c => $"{c.Key} ← {c.Value}"))})" : "; dataset.columns can map other names)"));
    }
}
