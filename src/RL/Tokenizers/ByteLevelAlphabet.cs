// Source: the byte-to-unicode table of GPT-2's encoder.py (openai/gpt-2) as used by Hugging Face tokenizers'
// ByteLevel pre-tokenizer and decoder (tokenizers/src/pre_tokenizers/byte_level.rs).
namespace NativeReasoner.RL.Tokenizers;

/// <summary>
/// The 256 printable characters that stand for the 256 byte values in a byte-level BPE vocabulary: printable
/// Latin-1 bytes stand for themselves, the others (controls, space, …) are moved to U+0100 and up, so a space
/// (0x20) reads as 'Ġ' (U+0120) and a newline as 'Ċ' (U+010A).
/// </summary>
public static class ByteLevelAlphabet
{
    /// <summary>Byte value → its character.</summary>
    public static ReadOnlySpan<char> ByteToChar => Table.Forward;

    /// <summary>The byte a character stands for, or −1 when it is not one of the 256.</summary>
    public static int CharToByte(char c) => c < Table.Backward.Length ? Table.Backward[c] : -1;

    private static class Table
    {
        public static readonly char[] Forward = BuildForward();
        public static readonly short[] Backward = BuildBackward(Forward);

        private static bool PrintsAsItself(int b) =>
            b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;

        private static char[] BuildForward()
        {
            var map = new char[256];
            int next = 0;
            for (int b = 0; b < 256; b++)
                map[b] = PrintsAsItself(b) ? (char)b : (char)(256 + next++);
            return map;
        }

        private static short[] BuildBackward(char[] forward)
        {
            var back = new short[256 + 68 + 1];
            Array.Fill(back, (short)-1);
            for (int b = 0; b < 256; b++) back[forward[b]] = (short)b;
            return back;
        }
    }
}
