using System.Globalization;
using System.Text;

namespace Kiln.Chat.Jinja;

/// <summary>
/// Python's time.strftime for strftime_now, in the C locale (English names), with glibc's "-" flag for no
/// padding ("%-d"). Templates use it for today's date ("%d %b %Y" is "26 Jul 2024").
/// </summary>
internal static class Strftime
{
    public static string Format(DateTime time, string format)
    {
        var result = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                result.Append(format[i]);
                continue;
            }
            var pad = true;
            if (format[i + 1] == '-' && i + 2 < format.Length)
            {
                pad = false;
                i++;
            }
            var code = format[++i];
            string Number(int value, int width) => pad ? value.ToString(new string('0', width), CultureInfo.InvariantCulture) : value.ToString(CultureInfo.InvariantCulture);
            result.Append(code switch
            {
                'a' => time.ToString("ddd", CultureInfo.InvariantCulture),
                'A' => time.ToString("dddd", CultureInfo.InvariantCulture),
                'b' or 'h' => time.ToString("MMM", CultureInfo.InvariantCulture),
                'B' => time.ToString("MMMM", CultureInfo.InvariantCulture),
                'd' => Number(time.Day, 2),
                'e' => pad ? time.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2) : Number(time.Day, 1),
                'H' => Number(time.Hour, 2),
                'I' => Number(time.Hour % 12 == 0 ? 12 : time.Hour % 12, 2),
                'j' => Number(time.DayOfYear, 3),
                'm' => Number(time.Month, 2),
                'M' => Number(time.Minute, 2),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'S' => Number(time.Second, 2),
                'w' => ((int)time.DayOfWeek).ToString(CultureInfo.InvariantCulture),
                'y' => Number(time.Year % 100, 2),
                'Y' => time.Year.ToString(CultureInfo.InvariantCulture),
                'F' => time.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                'T' => time.ToString("HH:mm:ss", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => throw new JinjaError($"strftime_now(): format code {ValueText.Repr("%" + code)} is not supported"),
            });
        }
        return result.ToString();
    }
}
