using System.CommandLine;
using System.Text.Json;
using Distill.Mesh.Modeling.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Cli.Commands;

/// <summary>
/// <c>distill kd-loss --student S.json --teacher T.json [--labels L.json] --loss fkl ...</c>: the
/// loss between two logits arrays ([batch, seq, vocab] nested JSON; labels [batch, seq] used as
/// given, no shift), in float64 — for parity checks against other frameworks.
/// </summary>
internal static class KdLossCommand
{
    public static Command Create()
    {
        var student = new Option<string>("--student") { Description = "student logits, [batch, seq, vocab] JSON", Required = true };
        var teacher = new Option<string>("--teacher") { Description = "teacher logits, [batch, seq, vocab] JSON", Required = true };
        var labels = new Option<string?>("--labels") { Description = "labels [batch, seq] JSON (−100 = ignored); without it every position counts" };
        var loss = new Option<string>("--loss") { Description = string.Join("|", DivergenceNames.ByName.Keys), DefaultValueFactory = _ => "fkl" };
        var beta = new Option<double>("--beta") { DefaultValueFactory = _ => 0.5 };
        var alpha = new Option<double>("--alpha") { DefaultValueFactory = _ => 0.1 };
        var ratio = new Option<double>("--symmetric-ratio") { DefaultValueFactory = _ => 0.5 };
        var temperature = new Option<double>("--temperature") { DefaultValueFactory = _ => 1.0 };
        var t2 = new Option<bool>("--t2") { Description = "multiply the soft loss by T²" };
        var kdRatio = new Option<double>("--kd-ratio") { Description = "total = (1 − r)·CE + r·KD (needs --labels)", DefaultValueFactory = _ => 0.5 };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("kd-loss", "Compute a distillation loss between two logits arrays (float64)") { student, teacher, labels, loss, beta, alpha, ratio, temperature, t2, kdRatio, json };
        command.SetAction((parse, output) =>
        {
            var s = ReadLogits(parse.GetValue(student)!);
            var t = ReadLogits(parse.GetValue(teacher)!);
            if (!s.shape.SequenceEqual(t.shape))
                throw new ArgumentException($"student logits [{string.Join(", ", s.shape)}] and teacher logits [{string.Join(", ", t.shape)}] differ in shape");
            var (batch, length, vocab) = (s.shape[0], s.shape[1], s.shape[2]);
            var y = parse.GetValue(labels) is { } labelPath ? ReadLabels(labelPath, batch, length, vocab) : torch.zeros(batch, length, dtype: ScalarType.Int64);
            var options = new DistillationLossOptions
            {
                Kind = DivergenceNames.Parse(parse.GetValue(loss)!),
                Beta = parse.GetValue(beta),
                Alpha = parse.GetValue(alpha),
                SymmetricRatio = parse.GetValue(ratio),
                Temperature = parse.GetValue(temperature),
                ScaleByTemperatureSquared = parse.GetValue(t2),
                KdRatio = parse.GetValue(kdRatio),
            };
            var flatStudent = s.reshape(-1, vocab);
            var flatLabels = y.reshape(-1);
            using var perPosition = DistillationLoss.PerPosition(flatStudent, new DenseTeacherLogits(t.reshape(-1, vocab)), options);
            using var parts = DistillationLoss.Compute(flatStudent, new DenseTeacherLogits(t.reshape(-1, vocab)), flatLabels, options);
            var valid = flatLabels.ne(options.IgnoreIndex);
            var result = new
            {
                Loss = DivergenceNames.NameOf(options.Kind),
                Kd = parts.Kd.item<double>(),
                Ce = parse.GetValue(labels) is null ? (double?)null : parts.Ce.item<double>(),
                Total = parse.GetValue(labels) is null ? (double?)null : parts.Total.item<double>(),
                ValidPositions = valid.sum().item<long>(),
                PerPosition = perPosition.masked_fill(valid.logical_not(), double.NaN).reshape(batch, length).to_type(ScalarType.Float64)
                    .data<double>().ToArray().Chunk((int)length).Select(row => row.Select(v => double.IsNaN(v) ? (double?)null : v).ToArray()).ToArray(),
            };
            if (parse.GetValue(json))
            {
                CommandRunner.WriteJson(output, result);
                return 0;
            }

            output.WriteLine($"{result.Loss}: kd {result.Kd:G10} over {result.ValidPositions} positions{(result.Ce is null ? "" : $", ce {result.Ce:G10}, total {result.Total:G10}")}");
            return 0;
        });
        return command;
    }

    private static Tensor ReadLogits(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Array || root.GetArrayLength() == 0)
            throw new ArgumentException($"{path}: expected a non-empty [batch][seq][vocab] array of numbers");
        var batch = root.GetArrayLength();
        var length = root[0].ValueKind == JsonValueKind.Array ? root[0].GetArrayLength() : -1;
        var vocab = length > 0 && root[0][0].ValueKind == JsonValueKind.Array ? root[0][0].GetArrayLength() : -1;
        if (length <= 0 || vocab <= 0)
            throw new ArgumentException($"{path}: expected a [batch][seq][vocab] array of numbers");
        var values = new double[batch * length * vocab];
        var i = 0;
        for (var b = 0; b < batch; b++)
        {
            if (root[b].GetArrayLength() != length)
                throw new ArgumentException($"{path}: batch row {b} has {root[b].GetArrayLength()} positions, expected {length}");
            for (var t = 0; t < length; t++)
            {
                var row = root[b][t];
                if (row.ValueKind != JsonValueKind.Array || row.GetArrayLength() != vocab)
                    throw new ArgumentException($"{path}: [{b}][{t}] must hold {vocab} numbers");
                foreach (var v in row.EnumerateArray())
                    values[i++] = v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw new ArgumentException($"{path}: [{b}][{t}] holds a non-number");
            }
        }

        return torch.tensor(values, dtype: ScalarType.Float64).reshape(batch, length, vocab);
    }

    private static Tensor ReadLabels(string path, long batch, long length, long vocab)
    {
        var labels = JsonSerializer.Deserialize<long[][]>(File.ReadAllText(path))
            ?? throw new ArgumentException($"{path}: expected a [batch][seq] array of integers");
        if (labels.Length != batch || labels.Any(r => r.Length != length))
            throw new ArgumentException($"{path}: labels must be [{batch}, {length}] to match the logits");
        if (labels.SelectMany(r => r).Any(l => l != -100 && (l < 0 || l >= vocab)))
            throw new ArgumentException($"{path}: labels must be −100 or in [0, {vocab})");
        return torch.tensor(labels.SelectMany(r => r).ToArray()).reshape(batch, length);
    }
}
