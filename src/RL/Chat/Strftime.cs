using System.Globalization;
using System.Text;

namespace NativeReasoner.RL.Chat;

/// <summary>
/// Python's <c>datetime.strftime</c> in the C locale, for the <c>strftime_now</c> template global (Llama 3.x
/// templates print "Today Date: 26 Jul 2024"). glibc's "%-d" (no padding) is supported as on Linux.
/// </summary>
public static class Strftime
{
    public static string Format(DateTime t, string format)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c != '%' || i + 1 >= format.Length)
            {
                sb.Append(c);
                continue;
            }
            char d = format[++i];
            bool unpadded = false;
            if (d == '-' && i + 1 < format.Length)
            {
                unpadded = true;
                d = format[++i];
            }
            string Num(int v, int width) => unpadded ? v.ToString(CultureInfo.InvariantCulture)
                : v.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0');
            sb.Append(d switch
            {
                'd' => Num(t.Day, 2),
                'm' => Num(t.Month, 2),
                'Y' => t.Year.ToString(CultureInfo.InvariantCulture),
                'y' => Num(t.Year % 100, 2),
                'H' => Num(t.Hour, 2),
                'I' => Num(t.Hour % 12 == 0 ? 12 : t.Hour % 12, 2),
                'M' => Num(t.Minute, 2),
                'S' => Num(t.Second, 2),
                'f' => (t.Ticks % TimeSpan.TicksPerSecond / 10).ToString("D6", CultureInfo.InvariantCulture),
                'j' => Num(t.DayOfYear, 3),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'b' or 'h' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedMonthName(t.Month),
                'B' => CultureInfo.InvariantCulture.DateTimeFormat.GetMonthName(t.Month),
                'a' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedDayName(t.DayOfWeek),
                'A' => CultureInfo.InvariantCulture.DateTimeFormat.GetDayName(t.DayOfWeek),
                'w' => ((int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
                'u' => (t.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
                'F' => t.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                'T' => t.ToString("HH:mm:ss", CultureInfo.InvariantCulture),
                'D' => t.ToString("MM/dd/yy", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => throw new JinjaError($"strftime: directive '%{d}' is not supported"),
            });
        }
        return sb.ToString();
    }
}
