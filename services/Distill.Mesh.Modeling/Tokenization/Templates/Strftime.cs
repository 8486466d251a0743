using System.Globalization;
using System.Text;

namespace Distill.Mesh.Modeling.Tokenization.Templates;

/// <summary>
/// Python's <c>datetime.strftime</c> in the C locale (what <c>strftime_now</c> gives on a Linux
/// host), including glibc's <c>%-d</c> style "no padding" flag. Unknown directives are kept as written.
/// </summary>
internal static class Strftime
{
    public static string Format(DateTime time, string format)
    {
        var c = CultureInfo.InvariantCulture;
        var output = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                output.Append(format[i]);
                continue;
            }

            var noPad = format[i + 1] == '-' && i + 2 < format.Length;
            var code = format[noPad ? i + 2 : i + 1];
            string Pad(int value, int width) => noPad ? value.ToString(c) : value.ToString(c).PadLeft(width, '0');
            var hour12 = time.Hour % 12 == 0 ? 12 : time.Hour % 12;
            string? piece = code switch
            {
                'a' => time.ToString("ddd", c),
                'A' => time.ToString("dddd", c),
                'b' or 'h' => time.ToString("MMM", c),
                'B' => time.ToString("MMMM", c),
                'd' => Pad(time.Day, 2),
                'e' => noPad ? time.Day.ToString(c) : time.Day.ToString(c).PadLeft(2, ' '),
                'm' => Pad(time.Month, 2),
                'y' => Pad(time.Year % 100, 2),
                'Y' => time.Year.ToString(c),
                'H' => Pad(time.Hour, 2),
                'I' => Pad(hour12, 2),
                'M' => Pad(time.Minute, 2),
                'S' => Pad(time.Second, 2),
                'f' => (time.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", c),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'j' => Pad(time.DayOfYear, 3),
                'w' => ((int)time.DayOfWeek).ToString(c),
                'u' => (time.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)time.DayOfWeek).ToString(c),
                'U' => Pad((time.DayOfYear + 6 - (int)time.DayOfWeek) / 7, 2),
                'W' => Pad((time.DayOfYear + 6 - ((int)time.DayOfWeek + 6) % 7) / 7, 2),
                'F' => time.ToString("yyyy-MM-dd", c),
                'D' => time.ToString("MM/dd/yy", c),
                'T' => time.ToString("HH:mm:ss", c),
                'R' => time.ToString("HH:mm", c),
                'c' => time.ToString("ddd MMM ", c) + time.Day.ToString(c).PadLeft(2, ' ') + time.ToString(" HH:mm:ss yyyy", c),
                'x' => time.ToString("MM/dd/yy", c),
                'X' => time.ToString("HH:mm:ss", c),
                'z' or 'Z' => "",
                'n' => "\n",
                't' => "\t",
                '%' => "%",
                _ => null,
            };
            if (piece is null)
            {
                output.Append('%');
                continue;
            }

            output.Append(piece);
            i += noPad ? 2 : 1;
        }

        return output.ToString();
    }
}
