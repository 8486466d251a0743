namespace Distill.Mesh.Training.Datasets;

/// <summary>
/// dataset.columns: the dataset's own column names read as the layout fields (e.g. prompt ← question).
/// A row without a mapped column keeps its fields (optional fields such as input may be absent; a
/// missing required one is then named by the layout).
/// </summary>
public static class ColumnMap
{
    /// <summary>The row with each mapped column renamed to its layout field (in place).</summary>
    public static DatasetRecord Apply(DatasetRecord record, IReadOnlyDictionary<string, string> columns)
    {
        foreach (var (field, column) in columns)
        {
            if (field == column || !record.Fields.TryGetPropertyValue(column, out var value))
                continue;
            record.Fields.Remove(column);
            record.Fields[field] = value;
        }

        return record;
    }
}
