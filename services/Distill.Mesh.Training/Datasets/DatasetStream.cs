using System.Text.Json.Nodes;
using Distill.Mesh.Modeling.Tokenization;
using Distill.Mesh.Specs.Configuration;

namespace Distill.Mesh.Training.Datasets;

/// <summary>
/// A dataset read as a stream: one or more files (a mixture), each drawn from with probability
/// weight / total, every file read window by window (memory follows the window, not the file), rows
/// shuffled within their window, a file that runs out starting its next epoch. Each row is held out
/// for evaluation with probability eval_fraction by a hash of (seed, file, row), in every epoch alike,
/// so no held-out row is ever trained on. The order is a pure function of the seed and the files:
/// <see cref="SaveState"/> and <see cref="Restore"/> resume it at the exact next example.
/// </summary>
public sealed class DatasetStream
{
    private const int StateVersion = 1;

    private readonly List<Source> _sources;
    private readonly double[] _cumulative;
    private readonly int _seed;
    private readonly int _vocabulary;
    private readonly int? _packTo;
    private readonly string _order;
    private long _draw;
    private (TokenizedExample Example, JsonObject Before)? _pending;

    private DatasetStream(List<Source> sources, int seed, int vocabulary, int? packTo, string order, IReadOnlyList<TokenizedExample> eval)
    {
        _sources = sources;
        var total = sources.Sum(s => s.Weight);
        var sum = 0.0;
        _cumulative = sources.Select(s => sum += s.Weight / total).ToArray();
        _seed = seed;
        _vocabulary = vocabulary;
        _packTo = packTo;
        _order = order;
        Eval = eval;
        Initial = SaveState();
    }

    /// <summary>The held-out examples evaluated (the first held-out rows of each file, at most eval_max_examples in all, shared by weight).</summary>
    public IReadOnlyList<TokenizedExample> Eval { get; }

    /// <summary>The state before the first training example.</summary>
    public JsonObject Initial { get; }

    /// <summary>Opens the config's dataset (dataset.sources, or dataset.path alone) and collects its evaluation examples.</summary>
    /// <param name="config">The run.</param>
    /// <param name="tokenizer">The student's tokenizer.</param>
    /// <param name="vocabulary">Ids the models share: an example with an id beyond it is refused, naming its row.</param>
    public static DatasetStream Open(TrainConfig config, TextTokenizer tokenizer, int vocabulary)
    {
        var dataset = config.Dataset;
        var files = dataset.Sources.Count > 0
            ? dataset.Sources.Select(s => (s.Path, s.Weight, s.Columns ?? dataset.Columns)).ToList()
            : [(dataset.Path, 1.0, dataset.Columns)];
        var options = new ExampleOptions
        {
            MaxLength = dataset.MaxLength,
            TrainOnInputs = dataset.TrainOnInputs,
            ChatFormat = Recipes.TrainingFactory.ChatFormat(dataset.ChatFormat),
        };
        var quotas = Quotas(files.Select(f => f.Item2).ToList(), dataset.EvalFraction > 0 ? dataset.EvalMaxExamples : 0);
        var sources = new List<Source>();
        var eval = new List<TokenizedExample>();
        for (var i = 0; i < files.Count; i++)
        {
            var (path, weight, columns) = files[i];
            var source = new Source(i, RowReader.Open(path), weight, columns, config.Seed, dataset.EvalFraction, dataset.ShuffleBuffer);
            var builder = new ExampleBuilder(tokenizer, source.DetectLayout(), options);
            source.Builder = builder;
            eval.AddRange(source.HeldOut(quotas[i]).Select(builder.Build).Where(e => e.InputIds.Length >= 2).Select(e => Checked(e, vocabulary, source)));
            sources.Add(source);
        }

        // The settings a stored position depends on (a fork that changed one would resume somewhere meaningless).
        var order = string.Join(' ', new object[] { config.Seed, dataset.EvalFraction, dataset.ShuffleBuffer, dataset.MaxLength, dataset.Packing, dataset.TrainOnInputs }
            .Concat(files.Select(f => (object)f.Item2)).Select(v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)));
        return new DatasetStream(sources, config.Seed, vocabulary, dataset.Packing ? dataset.MaxLength : null, order, eval);
    }

    /// <summary>The next training example (with packing: the next packed sequence).</summary>
    public TokenizedExample Next()
    {
        if (_packTo is not { } maxLength)
            return Take();
        var parts = new List<TokenizedExample> { Take() };
        var length = parts[0].InputIds.Length;
        // Examples are truncated to max_length, so the first always fits; the one that does not is left for the next sequence.
        while (length + Peek().InputIds.Length <= maxLength)
        {
            var part = Take();
            parts.Add(part);
            length += part.InputIds.Length;
        }

        return Packing.Pack(parts, maxLength).Single();
    }

    /// <summary>Where the stream stands: the next example is the one this state restores to.</summary>
    public JsonObject SaveState() => (JsonObject?)_pending?.Before.DeepClone() ?? Current();

    /// <summary>Continues from a state <see cref="SaveState"/> gave (for the same files and config).</summary>
    /// <exception cref="DatasetFormatException">The state is for other files, or a file changed since.</exception>
    public void Restore(JsonObject state)
    {
        try
        {
            if (state["version"]?.GetValue<int>() != StateVersion || state["sources"] is not JsonArray saved || saved.Count != _sources.Count)
                throw new DatasetFormatException($"the checkpoint's data position is for another dataset ({_sources.Count} file(s) here); start the run in a new output_dir");
            if (state["order"]?.GetValue<string>() != _order)
                throw new DatasetFormatException($"the checkpoint's data position was taken with other data-order settings ({state["order"]} then, {_order} now: " +
                    "seed, eval_fraction, shuffle_buffer, max_length, packing and the files' weights fix the order); a fork must keep them, or start without a checkpoint");
            for (var i = 0; i < _sources.Count; i++)
                _sources[i].Restore(saved[i]!.AsObject());
            _draw = state["draw"]!.GetValue<long>() is >= 0 and var draw ? draw : throw new FormatException("a negative draw counter");
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new DatasetFormatException($"the checkpoint's data position is damaged ({e.Message}); start the run in a new output_dir", e);
        }

        _pending = null;
    }

    private JsonObject Current() => new()
    {
        ["version"] = StateVersion,
        ["order"] = _order,
        ["draw"] = _draw,
        ["sources"] = new JsonArray([.. _sources.Select(s => (JsonNode)s.State())]),
    };

    private TokenizedExample Peek()
    {
        if (_pending is null)
        {
            var before = Current();
            _pending = (Read(), before);
        }

        return _pending.Value.Example;
    }

    private TokenizedExample Take()
    {
        var example = Peek();
        _pending = null;
        return example;
    }

    private TokenizedExample Read()
    {
        // Rows that tokenise to fewer than two tokens teach nothing and are skipped (the draw moves on).
        while (true)
        {
            var source = _sources[Pick(Unit(Mix(_seed, -1, _draw++)))];
            var record = source.Next();
            var example = source.Builder!.Build(record);
            if (example.InputIds.Length >= 2)
                return Checked(example, _vocabulary, source, record);
        }
    }

    private int Pick(double u)
    {
        var index = Array.FindIndex(_cumulative, c => u < c);
        return index < 0 ? _cumulative.Length - 1 : index;
    }

    private static TokenizedExample Checked(TokenizedExample example, int vocabulary, Source source, DatasetRecord? record = null)
    {
        var beyond = example.InputIds.Where(id => id >= vocabulary).Distinct().Take(5).ToList();
        return beyond.Count == 0 ? example
            : throw new Teachers.IncompatibleTeacherException($"{source.Reader.Path}{(record is null ? "" : $": {record.Location}")}: token ids {string.Join(", ", beyond)} are outside the {vocabulary} ids the models share");
    }

    /// <summary>Shares <paramref name="total"/> among the files by weight (largest remainder).</summary>
    internal static int[] Quotas(IReadOnlyList<double> weights, int total)
    {
        var sum = weights.Sum();
        var exact = weights.Select(w => total * w / sum).ToArray();
        var quotas = exact.Select(e => (int)Math.Floor(e)).ToArray();
        foreach (var i in Enumerable.Range(0, weights.Count).OrderByDescending(i => exact[i] - quotas[i]).ThenBy(i => i).Take(total - quotas.Sum()))
            quotas[i]++;
        return quotas;
    }

    /// <summary>A 64-bit mix of (seed, stream, counter): SplitMix64's finaliser (deterministic on every platform, unlike HashCode).</summary>
    internal static ulong Mix(int seed, long stream, long counter)
    {
        var z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)stream * 0xBF58476D1CE4E5B9UL ^ (ulong)counter * 0x94D049BB133111EBUL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }

    /// <summary>A hash's top 53 bits as a number in [0, 1).</summary>
    internal static double Unit(ulong hash) => (hash >> 11) * (1.0 / (1UL << 53));

    /// <summary>One file of the stream and its cursor: epoch, window start, position in the shuffled window.</summary>
    private sealed class Source(int index, RowReader reader, double weight, IReadOnlyDictionary<string, string> columns, int seed, double evalFraction, int window)
    {
        private int _epoch;
        private RowPosition _at = reader.Start;
        private int _position;
        private (int Epoch, RowPosition At, List<RawRow> Rows, RowPosition Next)? _window;

        public RowReader Reader => reader;

        public double Weight => weight;

        public ExampleBuilder? Builder { get; set; }

        public DatasetLayout DetectLayout()
        {
            var (rows, _) = reader.Read(reader.Start, 1);
            return rows.Count == 0
                ? throw new DatasetFormatException($"{reader.Path}: the dataset has no rows")
                : DatasetLayouts.Detect([Mapped(rows[0])], columns);
        }

        /// <summary>The first <paramref name="count"/> held-out rows in file order (fewer when the file has fewer).</summary>
        public IEnumerable<DatasetRecord> HeldOut(int count)
        {
            var (found, at) = (0, reader.Start);
            while (found < count)
            {
                var (rows, next) = reader.Read(at, window);
                if (rows.Count == 0)
                    yield break;
                foreach (var row in rows.Where(r => IsHeldOut(r.Row)).Take(count - found))
                {
                    found++;
                    yield return Mapped(row);
                }

                at = next;
            }
        }

        public DatasetRecord Next()
        {
            var wrapped = 0;
            while (true)
            {
                var rows = Window();
                if (_position < rows.Count)
                    return Mapped(rows[_position++]);
                if (_window!.Value.Next == _at)
                {
                    // The end of the file: the next epoch starts over (a whole pass without a training row is an error).
                    if (++wrapped > 1)
                        throw new DatasetFormatException($"{reader.Path}: no training rows (every row is empty or held out by dataset.eval_fraction)");
                    (_epoch, _at) = (_epoch + 1, reader.Start);
                }
                else
                {
                    _at = _window.Value.Next;
                }

                _position = 0;
            }
        }

        public JsonObject State() => new()
        {
            ["file"] = Path.GetFileName(reader.Path),
            ["fingerprint"] = reader.Fingerprint,
            ["epoch"] = _epoch,
            ["offset"] = _at.Offset,
            ["row"] = _at.Row,
            ["position"] = _position,
        };

        public void Restore(JsonObject state)
        {
            if (state["fingerprint"]?.GetValue<string>() != reader.Fingerprint)
                throw new DatasetFormatException($"{reader.Path}: the file changed since the checkpoint (its size or content differs), so the checkpoint's position in it means nothing now; " +
                    "restore the file or start the run in a new output_dir");
            var (epoch, offset, row, position) = (state["epoch"]!.GetValue<int>(), state["offset"]!.GetValue<long>(), state["row"]!.GetValue<long>(), state["position"]!.GetValue<int>());
            var at = new RowPosition(offset, row);
            if (epoch < 0 || position < 0 || !reader.CanStartAt(at))
                throw new FormatException($"no window can start there in {reader.Path} (epoch {epoch}, offset {offset}, row {row}, position {position})");
            (_epoch, _at, _position) = (epoch, at, position);
            if (position > Window().Count)
                throw new FormatException($"position {position} is beyond the {Window().Count} training rows of the window at row {row} of {reader.Path}");
        }

        /// <summary>The training rows of the window at the cursor, shuffled by (seed, file, epoch, window).</summary>
        private List<RawRow> Window()
        {
            if (_window is not { } cached || cached.Epoch != _epoch || cached.At != _at)
            {
                var (rows, next) = reader.Read(_at, window);
                var training = rows.Where(r => !IsHeldOut(r.Row)).ToList();
                _window = (_epoch, _at, Batching.Shuffle(training, (int)Mix(seed, index, _epoch * 1_000_000_007L + _at.Row)), next);
            }

            return _window.Value.Rows;
        }

        private bool IsHeldOut(long row) => evalFraction > 0 && Unit(Mix(seed, 1_000 + index, row)) < evalFraction;

        private DatasetRecord Mapped(RawRow row) => ColumnMap.Apply(reader.Record(row), columns);
    }
}
