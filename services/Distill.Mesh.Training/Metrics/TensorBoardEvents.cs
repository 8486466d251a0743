using System.Text;
using Google.Protobuf;

namespace Distill.Mesh.Training.Metrics;

/// <summary>
/// The few TensorBoard protos an event file needs, encoded with protobuf's wire writer (field
/// numbers from tensorflow/core/util/event.proto and framework/summary.proto): Event
/// {wall_time 1, step 2, file_version 3, summary 5}; Summary {value 1}; Summary.Value {tag 1,
/// simple_value 2, tensor 8, metadata 9}; SummaryMetadata {plugin_data 1 {plugin_name 1}};
/// TensorProto {dtype 1 (DT_STRING = 7), tensor_shape 2, string_val 8}.
/// </summary>
public static class TensorBoardEvents
{
    /// <summary>The first event of every file.</summary>
    public static byte[] FileVersion(double wallTime) => Event(wallTime, 0, o =>
    {
        o.WriteTag(3, WireFormat.WireType.LengthDelimited);
        o.WriteString("brain.Event:2");
    });

    /// <summary>An event with one simple_value per tag.</summary>
    public static byte[] Scalars(double wallTime, long step, IEnumerable<(string Tag, double Value)> values) => Event(wallTime, step, o =>
        WriteSummary(o, values.Select(v => Message(value =>
        {
            value.WriteTag(1, WireFormat.WireType.LengthDelimited);
            value.WriteString(v.Tag);
            value.WriteTag(2, WireFormat.WireType.Fixed32);
            value.WriteFloat((float)v.Value);
        }))));

    /// <summary>A text summary (the text plugin's format: a scalar DT_STRING tensor of markdown).</summary>
    public static byte[] Text(double wallTime, long step, string tag, string markdown) => Event(wallTime, step, o =>
        WriteSummary(o, [Message(value =>
        {
            value.WriteTag(1, WireFormat.WireType.LengthDelimited);
            value.WriteString(tag);
            value.WriteTag(8, WireFormat.WireType.LengthDelimited);
            value.WriteBytes(ByteString.CopyFrom(Message(tensor =>
            {
                tensor.WriteTag(1, WireFormat.WireType.Varint);
                tensor.WriteEnum(7);
                tensor.WriteTag(2, WireFormat.WireType.LengthDelimited);
                tensor.WriteBytes(ByteString.Empty);
                tensor.WriteTag(8, WireFormat.WireType.LengthDelimited);
                tensor.WriteBytes(ByteString.CopyFrom(Encoding.UTF8.GetBytes(markdown)));
            })));
            value.WriteTag(9, WireFormat.WireType.LengthDelimited);
            value.WriteBytes(ByteString.CopyFrom(Message(metadata =>
            {
                metadata.WriteTag(1, WireFormat.WireType.LengthDelimited);
                metadata.WriteBytes(ByteString.CopyFrom(Message(plugin =>
                {
                    plugin.WriteTag(1, WireFormat.WireType.LengthDelimited);
                    plugin.WriteString("text");
                })));
            })));
        })]));

    private static byte[] Event(double wallTime, long step, Action<CodedOutputStream> what) => Message(o =>
    {
        o.WriteTag(1, WireFormat.WireType.Fixed64);
        o.WriteDouble(wallTime);
        if (step != 0)
        {
            o.WriteTag(2, WireFormat.WireType.Varint);
            o.WriteInt64(step);
        }

        what(o);
    });

    private static void WriteSummary(CodedOutputStream o, IEnumerable<byte[]> values)
    {
        o.WriteTag(5, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(Message(summary =>
        {
            foreach (var value in values)
            {
                summary.WriteTag(1, WireFormat.WireType.LengthDelimited);
                summary.WriteBytes(ByteString.CopyFrom(value));
            }
        })));
    }

    private static byte[] Message(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        using (var output = new CodedOutputStream(buffer, leaveOpen: true))
            write(output);
        return buffer.ToArray();
    }
}
