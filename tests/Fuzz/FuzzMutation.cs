// Mutation operators after libFuzzer's MutationDispatcher (bit flips, interesting values, range erase/copy/insert,
// cross-over) plus JSON-aware ones: the readers under test all read JSON, so swapping one value for a value of
// another kind or an extreme number reaches far more checks than random bytes, which mostly break the syntax.
using System.Text;

namespace NativeReasoner.Tests.Fuzz;

/// <summary>
/// One mutation of an input: the operator <see cref="Kind"/> and three raw numbers it interprets (positions, lengths,
/// choices). Plain numbers so that CsCheck can shrink a failing sequence towards fewer and simpler mutations.
/// </summary>
public readonly record struct FuzzMutation(int Kind, uint A, uint B, uint C)
{
    public const int KindCount = 11;

    /// <summary>Values a reader is most likely to mishandle, for the JSON-aware operators.</summary>
    private static readonly string[] InterestingValues =
    [
        "0", "-1", "1", "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807",
        "9223372036854775808", "18446744073709551616", "1e308", "1e400", "-1e400", "1.5", "-0.0", "1e-400",
        "null", "true", "false", "\"\"", "\"x\"", "\"\\ud800\"", "\"\\u0000\"", "[]", "[1]", "[-1,2]", "[null]",
        "{}", "{\"a\":1}", "[[[[[[[[[[]]]]]]]]]]", "\"NaN\"", "\"Infinity\"", "100000000", "65536",
    ];

    /// <summary>Bytes that change the syntax or the meaning of JSON and of UTF-8.</summary>
    private static readonly byte[] InterestingBytes =
        [0, 0xFF, 0x80, 0xC0, 0xED, (byte)'"', (byte)'\\', (byte)'{', (byte)'}', (byte)'[', (byte)']', (byte)',',
            (byte)':', (byte)'-', (byte)'9', (byte)'e', (byte)'\n', (byte)'%', (byte)'{'];

    /// <summary>Applies the mutation to <paramref name="input"/>; <paramref name="other"/> is a second seed for
    /// cross-over. Never fails: positions wrap around the input's length.</summary>
    public byte[] Apply(byte[] input, byte[] other)
    {
        int n = input.Length;
        switch (Kind)
        {
            case 0 when n > 0: // flip one bit
                {
                    var r = (byte[])input.Clone();
                    r[A % n] ^= (byte)(1 << (int)(B % 8));
                    return r;
                }
            case 1 when n > 0: // set one byte to an interesting value
                {
                    var r = (byte[])input.Clone();
                    r[A % n] = InterestingBytes[B % InterestingBytes.Length];
                    return r;
                }
            case 2 when n > 0: // erase a range (up to 64 bytes)
                {
                    int at = (int)(A % n), len = Math.Min(n - at, 1 + (int)(B % 64));
                    return [.. input.AsSpan(0, at), .. input.AsSpan(at + len)];
                }
            case 3 when n > 0: // copy a range of the input to another place
                {
                    int from = (int)(A % n), len = Math.Min(n - from, 1 + (int)(B % 64)), to = (int)(C % (n + 1));
                    return [.. input.AsSpan(0, to), .. input.AsSpan(from, len), .. input.AsSpan(to)];
                }
            case 4: // truncate
                return n == 0 ? input : input[..(int)(A % n)];
            case 5: // insert an interesting value as text
                {
                    int at = (int)(A % (n + 1));
                    var value = Encoding.UTF8.GetBytes(InterestingValues[B % InterestingValues.Length]);
                    return [.. input.AsSpan(0, at), .. value,
                    .. input.AsSpan(at)];
                }
            case 6: // replace a JSON number with an interesting value
                return ReplaceToken(input, A, strings: false, InterestingValues[B % InterestingValues.Length]);
            case 7: // replace a JSON string (key or value) with an interesting value
                return ReplaceToken(input, A, strings: true, InterestingValues[B % InterestingValues.Length]);
            case 8: // replace the value after a colon (any kind, nested ones whole) with an interesting value
                return ReplaceValueAfterColon(input, A, InterestingValues[B % InterestingValues.Length]);
            case 9 when other.Length > 0: // cross-over: a range of the other seed in place of a range of this one
                {
                    int at = (int)(A % (n + 1)), cut = Math.Min(n - at, (int)(C % 64));
                    int from = (int)(B % other.Length), len = Math.Min(other.Length - from, 1 + (int)(C % 256));
                    return [.. input.AsSpan(0, at), .. other.AsSpan(from, len), .. input.AsSpan(at + cut)];
                }
            case 10 when n > 0: // repeat a range many times (absurd sizes, deep nesting)
                {
                    int from = (int)(A % n), len = Math.Min(n - from, 1 + (int)(B % 8)), times = 2 + (int)(C % 200);
                    var repeated = new List<byte>(input.Length + len * times);
                    repeated.AddRange(input.AsSpan(0, from + len).ToArray());
                    for (int i = 0; i < times; i++) repeated.AddRange(input.AsSpan(from, len).ToArray());
                    repeated.AddRange(input.AsSpan(from + len).ToArray());
                    return repeated.ToArray();
                }
            default:
                return input;
        }
    }

    private static bool IsNumberStart(byte b) => b is (byte)'-' || (b >= '0' && b <= '9');

    private static int SkipNumber(byte[] s, int i)
    {
        while (i < s.Length && (s[i] is (byte)'-' or (byte)'+' or (byte)'.' or (byte)'e' or (byte)'E'
                                || (s[i] >= '0' && s[i] <= '9'))) i++;
        return i;
    }

    private static int SkipString(byte[] s, int i)
    {
        for (i++; i < s.Length; i++)
        {
            if (s[i] == '\\') i++;
            else if (s[i] == '"') return i + 1;
        }
        return s.Length;
    }

    /// <summary>Replaces the k-th JSON string (or number) token, k = <paramref name="pick"/> modulo their count.
    /// </summary>
    private static byte[] ReplaceToken(byte[] s, uint pick, bool strings, string replacement)
    {
        var spans = new List<(int Start, int End)>();
        for (int i = 0; i < s.Length;)
        {
            if (s[i] == '"')
            {
                int end = SkipString(s, i);
                if (strings) spans.Add((i, end));
                i = end;
            }
            else if (IsNumberStart(s[i]))
            {
                int end = SkipNumber(s, i);
                if (!strings) spans.Add((i, end));
                i = end;
            }
            else i++;
        }
        if (spans.Count == 0) return s;
        var (a, b) = spans[(int)(pick % spans.Count)];
        return [.. s.AsSpan(0, a), .. Encoding.UTF8.GetBytes(replacement), .. s.AsSpan(b)];
    }

    private static byte[] ReplaceValueAfterColon(byte[] s, uint pick, string replacement)
    {
        var colons = new List<int>();
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '"') i = SkipString(s, i) - 1;
            else if (s[i] == ':') colons.Add(i);
        }
        if (colons.Count == 0) return s;
        int start = colons[(int)(pick % colons.Count)] + 1;
        while (start < s.Length && s[start] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t') start++;
        int end = SkipValue(s, start);
        return [.. s.AsSpan(0, start), .. Encoding.UTF8.GetBytes(replacement), .. s.AsSpan(end)];
    }

    /// <summary>The end of the JSON value starting at <paramref name="i"/> (objects and arrays whole).</summary>
    private static int SkipValue(byte[] s, int i)
    {
        if (i >= s.Length) return i;
        if (s[i] == '"') return SkipString(s, i);
        if (s[i] is (byte)'{' or (byte)'[')
        {
            int depth = 0;
            for (; i < s.Length; i++)
            {
                if (s[i] == '"') { i = SkipString(s, i) - 1; continue; }
                if (s[i] is (byte)'{' or (byte)'[') depth++;
                else if (s[i] is (byte)'}' or (byte)']' && --depth == 0) return i + 1;
            }
            return s.Length;
        }
        while (i < s.Length && s[i] is not ((byte)',' or (byte)'}' or (byte)']' or (byte)'\n')) i++;
        return i;
    }
}
