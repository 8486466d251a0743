using System.Buffers.Binary;
using System.Text;
using Distill.Mesh.Modeling.Checkpoints;
using Distill.Mesh.Testing;
using TorchSharp;

namespace Distill.Mesh.Modeling.Tests.Checkpoints;

/// <summary>
/// A fuzz corpus: the shared sample files and a few written here, each mutated many ways (bytes
/// flipped, numbers swapped for extreme ones, fields duplicated, dtypes misspelt, bytes that are
/// not UTF-8, header lengths and file ends cut). Every mutant must open cleanly or be refused with
/// a <see cref="CheckpointFormatException"/>: no other exception, no hang. Deterministic seeds.
/// </summary>
public class SafetensorsFuzzTests
{
    private const int Mutants = 2400;

    private static readonly string[] Numbers = ["-1", "0", "1", "4294967296", "9223372036854775807", "-9223372036854775808", "1e308", "1.5", "18446744073709551616", "[]", "null", "\"7\""];
    private static readonly string[] DTypes = ["F32 ", " F32", "+9", "9", "U8,U32", "f32", "F3", "BF16\u0000", "F8_E4M3", "BOOL", "\u00c9", "", "F32\"", "I64"];

    [Fact]
    public void MutatedHeaders_OpenOrAreRefusedWithAFormatError_NeverAnythingElse()
    {
        using var dir = new TempFolder();
        var seeds = Seeds(dir).ToList();
        var random = new Random(20261202);
        var unexpected = new List<string>();
        int opened = 0, refused = 0;
        for (var n = 0; n < Mutants; n++)
        {
            var (seedName, seed) = seeds[n % seeds.Count];
            var (how, mutant) = Mutate(seed, random);
            var path = dir.Combine($"mutant-{n}.safetensors");
            File.WriteAllBytes(path, mutant);
            try
            {
                using var file = SafetensorsFile.Open(path);
                // Whatever opens can be read whole.
                foreach (var tensor in file.Tensors)
                    _ = file.GetBytes(tensor.Name).Length;
                opened++;
            }
            catch (CheckpointFormatException)
            {
                refused++;
            }
            catch (Exception e)
            {
                unexpected.Add($"{seedName} {how}: {e.GetType().Name}: {e.Message}");
            }
            finally
            {
                File.Delete(path);
            }
        }

        Assert.True(unexpected.Count == 0, $"{unexpected.Count} of {Mutants} mutants threw something else:\n{string.Join("\n", unexpected.Take(20))}");
        // The corpus exercises both outcomes (a mutator that always breaks or never breaks tests nothing).
        Assert.True(refused > Mutants / 4 && opened > 20, $"opened {opened}, refused {refused}");
    }

    private static IEnumerable<(string Name, byte[] Bytes)> Seeds(TempFolder dir)
    {
        foreach (var file in Directory.GetFiles(SharedData.PathOf("safetensors"), "*.safetensors").Order(StringComparer.Ordinal))
            yield return (Path.GetFileName(file), File.ReadAllBytes(file));
        var written = dir.Combine("written.safetensors");
        SafetensorsWriter.Write(written,
        [
            KeyValuePair.Create("model.layers.0.self_attn.q_proj.weight", torch.ones(4, 4)),
            KeyValuePair.Create("model.norm.weight", torch.ones(4, dtype: torch.ScalarType.BFloat16)),
            KeyValuePair.Create("empty", torch.zeros(0, 3)),
            KeyValuePair.Create("scalar", torch.tensor(2L)),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        yield return ("written", File.ReadAllBytes(written));
    }

    private static (string How, byte[] Bytes) Mutate(byte[] seed, Random random)
    {
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(seed);
        var header = Encoding.UTF8.GetString(seed, 8, headerLength);
        var data = seed[(8 + headerLength)..];
        switch (random.Next(9))
        {
            case 0:
            {
                var bytes = (byte[])seed.Clone();
                var at = 8 + random.Next(headerLength);
                bytes[at] = (byte)random.Next(256);
                return ($"byte {at} set to {bytes[at]}", bytes);
            }

            case 1:
            {
                var digits = System.Text.RegularExpressions.Regex.Matches(header, "-?[0-9]+");
                if (digits.Count == 0)
                    goto default;
                var match = digits[random.Next(digits.Count)];
                var number = Numbers[random.Next(Numbers.Length)];
                return ($"number {match.Value} → {number}", Assemble(header[..match.Index] + number + header[(match.Index + match.Length)..], data));
            }

            case 2:
            {
                var dtypes = System.Text.RegularExpressions.Regex.Matches(header, "\"dtype\":\"([^\"]*)\"");
                if (dtypes.Count == 0)
                    goto default;
                var group = dtypes[random.Next(dtypes.Count)].Groups[1];
                var dtype = DTypes[random.Next(DTypes.Length)];
                return ($"dtype {group.Value} → {dtype}", Assemble(header[..group.Index] + dtype + header[(group.Index + group.Length)..], data));
            }

            case 3:
            {
                // A field given twice, with another value.
                var field = new[] { "\"dtype\":\"F64\",", "\"shape\":[1],", "\"data_offsets\":[0,0]," }[random.Next(3)];
                var at = header.IndexOf("{\"", 1, StringComparison.Ordinal);
                var entry = header.IndexOf(":{", Math.Max(at, 0), StringComparison.Ordinal);
                if (entry < 0)
                    goto default;
                return ($"field {field} duplicated", Assemble(header[..(entry + 2)] + field + header[(entry + 2)..], data));
            }

            case 4:
            {
                // Bytes that are not UTF-8 inside a string or a name.
                var bytes = Encoding.UTF8.GetBytes(header).ToList();
                var quote = bytes.IndexOf((byte)'"', random.Next(Math.Max(1, bytes.Count - 1)));
                if (quote < 0)
                    goto default;
                byte[][] invalid = [[0xC3, 0x28], [0xFF], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xC0, 0xAF]];
                var bad = invalid[random.Next(invalid.Length)];
                bytes.InsertRange(quote + 1, bad);
                return ($"invalid UTF-8 {Convert.ToHexString(bad)} after byte {quote}", AssembleBytes([.. bytes], data));
            }

            case 5:
            {
                var bytes = (byte[])seed.Clone();
                var length = new[] { 0UL, 1UL, (ulong)headerLength - 1, (ulong)headerLength + 1, (ulong)seed.Length, ulong.MaxValue, 1UL << 63, (ulong)random.NextInt64() }[random.Next(8)];
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
                return ($"header length {length}", bytes);
            }

            case 6:
            {
                var cut = random.Next(seed.Length);
                return ($"cut at {cut}", seed[..cut]);
            }

            case 7:
            {
                // Random JSON-ish text in place of a slice of the header.
                var start = random.Next(headerLength);
                var length = random.Next(Math.Min(16, headerLength - start) + 1);
                const string Alphabet = "{}[]\",:0-9e\\u";
                var junk = new string(Enumerable.Range(0, random.Next(1, 8)).Select(_ => Alphabet[random.Next(Alphabet.Length)]).ToArray());
                return ($"[{start}..+{length}] → {junk}", Assemble(header[..start] + junk + header[(start + length)..], data));
            }

            default:
            {
                // Extra or missing data bytes.
                var extra = random.Next(-Math.Min(data.Length, 8), 9);
                var resized = extra >= 0 ? [.. data, .. new byte[extra]] : data[..^(-extra)];
                return ($"data {extra:+#;-#;0} bytes", AssembleBytes(Encoding.UTF8.GetBytes(header), resized));
            }
        }
    }

    private static byte[] Assemble(string header, byte[] data) => AssembleBytes(Encoding.UTF8.GetBytes(header), data);

    private static byte[] AssembleBytes(byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }
}
