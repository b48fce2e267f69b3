using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using NativeReasoner.RL;

namespace NativeReasoner.Cli;

/// <summary>`nr tokenize`: the ids and token pieces a model directory's tokenizer makes of a text.</summary>
public static class TokenizeCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model")
        {
            Description = "Model directory (its tokenizer.json [+ " +
            "tokenizer_config.json]).", Required = true
        };
        var text = new Option<string>("--text") { Description = "The text to tokenize.", Required = true };
        var addSpecial = new Option<bool>("--add-special-tokens")
        {
            Description = "Add what the tokenizer's config " +
            "adds around a sequence (BOS for DeepSeek and Llama)."
        };
        var plainSpecial = new Option<bool>("--special-as-text")
        {
            Description = "Encode special-token strings in " +
            "the text as plain text, not as their ids."
        };
        var json = new Option<bool>("--json")
        {
            Description = "Print one JSON object: ids, pieces and the text of " +
            "each token."
        };
        var command = new Command("tokenize", "Show the token ids and pieces of a text.") { model, text, addSpecial,
            plainSpecial, json };
        command.SetAction(parse => Run(parse.GetValue(model)!, parse.GetValue(text)!, parse.GetValue(addSpecial),
            !parse.GetValue(plainSpecial), parse.GetValue(json), Console.Out, Console.Error));
        return command;
    }

    public static int Run(string modelDirectory, string text, bool addSpecialTokens, bool parseSpecialTokens, bool json,
        TextWriter output, TextWriter error)
    {
        ITokenizer tokenizer;
        int[] ids;
        try
        {
            tokenizer = TokenizerLoader.Load(modelDirectory);
            ids = tokenizer.Encode(text, addSpecialTokens, parseSpecialTokens);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException
                                  or UnauthorizedAccessException)
        {
            error.WriteLine($"nr tokenize: {e.Message}");
            return 1;
        }
        // piece: the vocabulary string (byte-level: 'Ġ' = space); text: what the token alone decodes to
        var pieces = ids.Select(i => tokenizer.IdToToken(i) ?? "").ToArray();
        var texts = ids.Select(i => tokenizer.Decode([i])).ToArray();
        if (json)
        {
            var options = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            output.WriteLine(JsonSerializer.Serialize(new { count = ids.Length, ids, pieces, texts }, options));
            return 0;
        }
        output.WriteLine($"{ids.Length} tokens");
        for (int k = 0; k < ids.Length; k++)
            output.WriteLine($"{ids[k],8}  {Escape(pieces[k])}  {Escape(texts[k])}");
        return 0;
    }

    // Control characters would break the table: show them as escapes.
    private static string Escape(string s) =>
        string.Concat(s.Select(c => c switch
        {
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            < ' ' => $"\\x{(int)c:x2}",
            _ => c.ToString()
        }));
}
