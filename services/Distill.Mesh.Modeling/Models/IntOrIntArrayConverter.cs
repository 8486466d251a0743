using System.Text.Json;
using System.Text.Json.Serialization;

namespace Distill.Mesh.Modeling.Models;

/// <summary>Reads HF's "one id or a list of ids" fields; writes a single id back as a number.</summary>
public sealed class IntOrIntArrayConverter : JsonConverter<int[]?>
{
    public override int[]? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType switch
        {
            JsonTokenType.Null => null,
            JsonTokenType.Number => [reader.GetInt32()],
            JsonTokenType.StartArray => JsonSerializer.Deserialize<int[]>(ref reader, options),
            _ => throw new JsonException($"expected an integer or a list of integers, got {reader.TokenType}"),
        };

    public override void Write(Utf8JsonWriter writer, int[]? value, JsonSerializerOptions options)
    {
        if (value is null)
            writer.WriteNullValue();
        else if (value.Length == 1)
            writer.WriteNumberValue(value[0]);
        else
            JsonSerializer.Serialize(writer, value, options);
    }
}
