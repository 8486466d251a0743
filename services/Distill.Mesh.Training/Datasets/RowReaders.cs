using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet;
using Parquet.Serialization;

namespace Distill.Mesh.Training.Datasets;

/// <summary>
/// Where a window of rows starts in a file: <paramref name="Offset"/> is the reader's own position
/// (a byte offset in JSONL, a row group in Parquet, an index in a JSON array) and <paramref name="Row"/>
/// the number of the first row there (JSONL: the 1-based line; otherwise the 1-based row).
/// </summary>
public readonly record struct RowPosition(long Offset, long Row);

/// <summary>One row read from a file, not yet parsed: JSONL keeps the line's text until the row is used.</summary>
internal readonly record struct RawRow(long Row, string? Json, JsonObject? Fields);

/// <summary>
/// Reads a dataset file window by window, so memory follows the window, not the file. Positions
/// are stable across runs (a checkpoint stores one), and <see cref="Fingerprint"/> tells when the file
/// under a stored position changed.
/// </summary>
internal abstract class RowReader
{
    protected RowReader(string path)
    {
        Path = path;
        var file = new FileInfo(path);
        if (!file.Exists)
            throw new FileNotFoundException($"no dataset file at '{path}'");
        Length = file.Length;
        Fingerprint = Fingerprinted(path, file.Length);
    }

    /// <summary>The file's size in bytes.</summary>
    public long Length { get; }

    public string Path { get; }

    /// <summary>The file's length and a hash of its first and last MiB: a stored position is only valid for the same file (a copy of it is the same file).</summary>
    public string Fingerprint { get; }

    /// <summary>
    /// Length + XxHash64 of the first and last MiB and of 64 blocks of 64 KiB spread evenly between
    /// (the whole file when it is smaller): about 6 MiB read however large the file is.
    /// </summary>
    private static string Fingerprinted(string path, long length)
    {
        const int edge = 1 << 20, block = 1 << 16, blocks = 64;
        var hash = new XxHash64();
        using var stream = File.OpenRead(path);
        void Hash(long at, long count)
        {
            var buffer = new byte[count];
            stream.Seek(at, SeekOrigin.Begin);
            stream.ReadExactly(buffer);
            hash.Append(buffer);
        }

        if (length <= 2 * edge + blocks * block)
        {
            Hash(0, length);
        }
        else
        {
            Hash(0, edge);
            var stride = (length - 2 * edge - block) / (blocks - 1);
            for (var i = 0; i < blocks; i++)
                Hash(edge + i * stride, block);
            Hash(length - edge, edge);
        }

        return $"{length}:{Convert.ToHexStringLower(hash.GetCurrentHash())}";
    }

    /// <summary>Whether a stored position can be where a window starts (JSONL: the start of a line).</summary>
    public virtual bool CanStartAt(RowPosition at) => at.Offset >= 0 && at.Row >= 1;

    /// <summary>The position of the first row.</summary>
    public virtual RowPosition Start => new(0, 1);

    /// <summary>What "row N" is called in messages.</summary>
    public abstract string RowName { get; }

    /// <summary>Up to <paramref name="max"/> rows from <paramref name="at"/> and the position after them; no rows at the end of the file.</summary>
    public abstract (List<RawRow> Rows, RowPosition Next) Read(RowPosition at, int max);

    /// <summary>The row's fields, parsed when it is used.</summary>
    public DatasetRecord Record(RawRow row)
    {
        var location = $"{RowName} {row.Row}";
        if (row.Fields is { } fields)
            return new DatasetRecord(Path, location, fields);
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(row.Json!);
        }
        catch (JsonException e)
        {
            // System.Text.Json counts lines within the row (always 0 here): give the byte in the row instead.
            var reason = e.Message.Split(" LineNumber:")[0].TrimEnd(' ', '.');
            throw new DatasetFormatException($"{Path}: {location}: not valid JSON at byte {e.BytePositionInLine ?? 0} of the row ({reason})", e);
        }

        return new DatasetRecord(Path, location, node as JsonObject ?? throw new DatasetFormatException($"{Path}: {location}: expected a JSON object"));
    }

    /// <summary>The reader for a file, by its extension.</summary>
    public static RowReader Open(string path) => System.IO.Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".jsonl" => new JsonLinesReader(path),
        ".parquet" => new ParquetRowReader(path),
        ".json" => new JsonArrayReader(path),
        var extension => throw new DatasetFormatException($"{path}: unknown dataset extension '{extension}' (supported: .json, .jsonl, .parquet)"),
    };
}

/// <summary>JSON Lines read from byte offsets; blank lines are skipped (they keep their line numbers).</summary>
internal sealed class JsonLinesReader(string path) : RowReader(path)
{
    /// <summary>A longer line is refused (a hostile file could otherwise take all memory in one row).</summary>
    public const int MaxLineBytes = 64 << 20;

    public override string RowName => "line";

    public override bool CanStartAt(RowPosition at)
    {
        if (!base.CanStartAt(at) || at.Offset > Length)
            return false;
        if (at.Offset == 0)
            return true;
        using var stream = File.OpenRead(Path);
        stream.Seek(at.Offset - 1, SeekOrigin.Begin);
        return stream.ReadByte() == '\n';
    }

    public override (List<RawRow> Rows, RowPosition Next) Read(RowPosition at, int max)
    {
        // Written by hand: StreamReader hides the byte offset of a line, which a resumable position needs.
        var rows = new List<RawRow>();
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        stream.Seek(at.Offset, SeekOrigin.Begin);
        var buffer = new byte[1 << 16];
        var line = new MemoryStream();
        var (offset, number) = (at.Offset, at.Row);
        var lineStart = offset;
        while (rows.Count < max)
        {
            var read = stream.Read(buffer, 0, buffer.Length);
            if (read == 0)
            {
                if (line.Length > 0)
                {
                    Add(line, number);
                    number++;
                }

                return (rows, new RowPosition(offset, number));
            }

            var start = 0;
            for (var i = 0; i < read && rows.Count < max; i++)
            {
                if (buffer[i] != (byte)'\n')
                    continue;
                line.Write(buffer, start, i - start);
                Add(line, number);
                number++;
                start = i + 1;
                lineStart = offset + start;
            }

            if (rows.Count >= max)
                return (rows, new RowPosition(lineStart, number));
            line.Write(buffer, start, read - start);
            if (line.Length > MaxLineBytes)
                throw new DatasetFormatException($"{Path}: line {number}: longer than {MaxLineBytes >> 20} MiB; is this a JSON Lines file?");
            offset += read;
        }

        return (rows, new RowPosition(lineStart, number));

        void Add(MemoryStream bytes, long row)
        {
            var span = bytes.GetBuffer().AsSpan(0, (int)bytes.Length);
            if (row == 1 && span.StartsWith(Encoding.UTF8.Preamble))
                span = span[Encoding.UTF8.Preamble.Length..];
            var chars = new char[span.Length];
            if (System.Text.Unicode.Utf8.ToUtf16(span, chars, out var valid, out var written, replaceInvalidSequences: false) != System.Buffers.OperationStatus.Done)
                throw new DatasetFormatException($"{Path}: line {row}: not UTF-8 (byte {valid} of the line)");
            var text = new string(chars, 0, written).TrimEnd('\r');

            bytes.SetLength(0);
            if (!string.IsNullOrWhiteSpace(text))
                rows.Add(new RawRow(row, text, null));
        }
    }
}

/// <summary>Parquet read one row group at a time (a window is a row group: memory follows the writer's row-group size).</summary>
internal sealed class ParquetRowReader : RowReader
{
    private readonly long[] _groupRows;

    public ParquetRowReader(string path) : base(path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            var reader = ParquetReader.CreateAsync(stream, leaveStreamOpen: true).GetAwaiter().GetResult();
            try
            {
                _groupRows = Enumerable.Range(0, reader.RowGroupCount).Select(g => reader.OpenRowGroupReader(g).RowCount).ToArray();
            }
            finally
            {
                reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or InvalidOperationException)
        {
            throw new DatasetFormatException($"{path}: not a readable Parquet file ({e.Message})", e);
        }
    }

    public override string RowName => "row";

    public override (List<RawRow> Rows, RowPosition Next) Read(RowPosition at, int max)
    {
        if (at.Offset >= _groupRows.Length)
            return ([], at);
        try
        {
            using var stream = File.OpenRead(Path);
            var group = ParquetSerializer.DeserializeUntypedAsync(stream, rowGroupIndex: (int)at.Offset).GetAwaiter().GetResult();
            var rows = group.Data.Select((row, i) => new RawRow(at.Row + i, null, JsonSerializer.SerializeToNode(row)!.AsObject())).ToList();
            return (rows, new RowPosition(at.Offset + 1, at.Row + _groupRows[at.Offset]));
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or InvalidOperationException)
        {
            throw new DatasetFormatException($"{Path}: row group {at.Offset}: not readable ({e.Message})", e);
        }
    }
}

/// <summary>A JSON document (an array of objects, or one object) is one value: it is read whole, then served in windows.</summary>
internal sealed class JsonArrayReader(string path) : RowReader(path)
{
    private IReadOnlyList<DatasetRecord>? _records;

    public override string RowName => "record";

    public override (List<RawRow> Rows, RowPosition Next) Read(RowPosition at, int max)
    {
        _records ??= DatasetFile.ReadAsync(Path).GetAwaiter().GetResult();
        var rows = _records.Skip((int)at.Offset).Take(max).Select((r, i) => new RawRow(at.Row + i, null, r.Fields)).ToList();
        return (rows, new RowPosition(at.Offset + rows.Count, at.Row + rows.Count));
    }
}
