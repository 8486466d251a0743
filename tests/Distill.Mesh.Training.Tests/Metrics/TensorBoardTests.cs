using System.Buffers.Binary;
using System.Text;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Metrics;
using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Training.Tests.Metrics;

/// <summary>
/// Event files read back by a reader written here from the formats' definitions (bitwise CRC-32C,
/// protobuf wire format), independent of the writer's CRC and protobuf libraries.
/// </summary>
public sealed class TensorBoardTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public void Crc32C_OfTheCheckString_IsTheStandardCheckValue()
    {
        Assert.Equal(0xE3069283u, Crc32C("123456789"u8));
        var unmasked = Crc32C("123456789"u8);
        Assert.Equal(unchecked(((unmasked >> 15) | (unmasked << 17)) + 0xa282ead8u), TfRecordWriter.MaskedCrc("123456789"u8));
    }

    [Fact]
    public void Logger_WritesFramedEvents_WithEveryScalarOfEachStep_AndTheConfigAsText()
    {
        var events = new[]
        {
            new TrainEvent(1, 2, 2.5, 2.0, 0.5, 1e-3, 0.75, 1234.5, 64),
            new TrainEvent(2, 2, 1.25, 1.0, 0.25, 5e-4, 0.5, 1500, 64, new EvalResult(Math.E, 0.125, 0.625, 100)),
        };
        string file;
        using (var logger = new TensorBoardLogger(_dir.Path))
        {
            logger.Start([], "{\n  \"recipe\": \"kd\"\n}");
            Assert.Null(logger.EventFile); // opened at the first step: a run failing before it leaves none
            foreach (var e in events)
                logger.Log(e);
            logger.Flush(events);
            file = logger.EventFile!;
        }

        Assert.Contains(".tfevents.", Path.GetFileName(file));
        Assert.Equal(Path.Combine(_dir.Path, TensorBoardLogger.Folder), Path.GetDirectoryName(file));
        var records = ReadRecords(File.ReadAllBytes(file));
        Assert.Equal(4, records.Count);
        var decoded = records.Select(Fields).ToList();
        Assert.Equal("brain.Event:2", Encoding.UTF8.GetString(Bytes(decoded[0], 3)));
        Assert.InRange(BitConverter.Int64BitsToDouble((long)Value(decoded[0], 1)), DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 600, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);

        // The config: a text-plugin summary (DT_STRING tensor) holding the JSON.
        var configValue = Fields(Bytes(Fields(Bytes(decoded[1], 5)), 1));
        Assert.Equal("config", Encoding.UTF8.GetString(Bytes(configValue, 1)));
        var tensor = Fields(Bytes(configValue, 8));
        Assert.Equal(7ul, Value(tensor, 1));
        Assert.Contains("\"recipe\": \"kd\"", Encoding.UTF8.GetString(Bytes(tensor, 8)));
        Assert.Equal("text", Encoding.UTF8.GetString(Bytes(Fields(Bytes(Fields(Bytes(configValue, 9)), 1)), 1)));

        for (var i = 0; i < events.Length; i++)
        {
            var fields = decoded[2 + i];
            Assert.Equal((ulong)events[i].Step, Value(fields, 2));
            var scalars = Fields(Bytes(fields, 5)).Where(f => f.Number == 1).Select(v => Fields(v.Bytes!))
                .ToDictionary(v => Encoding.UTF8.GetString(Bytes(v, 1)), v => BitConverter.Int32BitsToSingle((int)Value(v, 2)));
            var expected = new Dictionary<string, float>
            {
                ["train/loss"] = (float)events[i].Loss, ["train/kd_loss"] = (float)events[i].KdLoss, ["train/ce_loss"] = (float)events[i].CeLoss,
                ["train/learning_rate"] = (float)events[i].LearningRate, ["train/grad_norm"] = (float)events[i].GradNorm,
                ["train/tokens_per_second"] = (float)events[i].TokensPerSecond,
            };
            if (i == 1)
            {
                expected["eval/loss"] = 1f; // ln(e)
                expected["eval/perplexity"] = (float)Math.E;
                expected["eval/kl_to_teacher"] = 0.125f;
                expected["eval/top1_agreement"] = 0.625f;
            }

            Assert.Equal(expected.OrderBy(p => p.Key), scalars.OrderBy(p => p.Key));
        }
    }

    [Fact]
    public void ReadRecords_ACorruptedByte_FailsTheChecksum()
    {
        using (var logger = new TensorBoardLogger(_dir.Path))
            logger.Log(new TrainEvent(1, 1, 1, 1, 0, 1e-3, 1, 1, 1));
        var bytes = File.ReadAllBytes(Directory.GetFiles(_dir.Combine(TensorBoardLogger.Folder)).Single());
        bytes[^6] ^= 0x01;

        Assert.Throws<InvalidDataException>(() => ReadRecords(bytes));
    }

    /// <summary>TFRecord: length, masked CRC of it, data, masked CRC of the data; both CRCs verified.</summary>
    private static List<byte[]> ReadRecords(byte[] file)
    {
        var records = new List<byte[]>();
        var at = 0;
        while (at < file.Length)
        {
            var header = file.AsSpan(at, 8);
            if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 8)) != Masked(Crc32C(header)))
                throw new InvalidDataException($"length CRC at byte {at}");
            var length = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(header));
            var data = file.AsSpan(at + 12, length).ToArray();
            if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 12 + length)) != Masked(Crc32C(data)))
                throw new InvalidDataException($"data CRC of the record at byte {at}");
            records.Add(data);
            at += 16 + length;
        }

        return records;
    }

    private static uint Masked(uint crc) => unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);

    /// <summary>CRC-32C bit by bit (reflected Castagnoli polynomial 0x82F63B78).</summary>
    private static uint Crc32C(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }

        return ~crc;
    }

    private sealed record Field(int Number, ulong Value, byte[]? Bytes);

    /// <summary>A protobuf message's fields: varints, fixed64/fixed32 as their raw bits, length-delimited as bytes.</summary>
    private static List<Field> Fields(byte[] message)
    {
        var fields = new List<Field>();
        var at = 0;
        ulong Varint()
        {
            ulong value = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = message[at++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                    return value;
            }
        }

        while (at < message.Length)
        {
            var key = Varint();
            var number = (int)(key >> 3);
            switch (key & 7)
            {
                case 0:
                    fields.Add(new Field(number, Varint(), null));
                    break;
                case 1:
                    fields.Add(new Field(number, BinaryPrimitives.ReadUInt64LittleEndian(message.AsSpan(at)), null));
                    at += 8;
                    break;
                case 2:
                    var length = (int)Varint();
                    fields.Add(new Field(number, 0, message.AsSpan(at, length).ToArray()));
                    at += length;
                    break;
                case 5:
                    fields.Add(new Field(number, BinaryPrimitives.ReadUInt32LittleEndian(message.AsSpan(at)), null));
                    at += 4;
                    break;
                default:
                    throw new InvalidDataException($"wire type {key & 7}");
            }
        }

        return fields;
    }

    private static ulong Value(List<Field> fields, int number) => fields.Single(f => f.Number == number).Value;

    private static byte[] Bytes(List<Field> fields, int number) => fields.Single(f => f.Number == number).Bytes!;

    public void Dispose() => _dir.Dispose();
}
