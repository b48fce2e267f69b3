using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using TurnMessage = NativeReasoner.RL.Chat.ChatMessage;

namespace NativeReasoner.Serving;

/// <summary>
/// Turns a Microsoft.Extensions.AI conversation into the model's prompt text. Through a chat template the
/// messages become the OpenAI-style dicts <c>transformers</c> passes: role, content, reasoning_content, tool_calls
/// (<c>{"type": "function", "id", "function": {"name", "arguments"}}</c>, arguments as a dict) and one "tool"
/// message per function result; <see cref="ChatOptions.Tools"/> become the <c>tools</c> variable and
/// <see cref="ChatOptions.AdditionalProperties"/> extra template variables (enable_thinking, …). A directory with
/// only a prompt_template.json takes plain user/assistant text.
/// </summary>
public static class ChatRequestRenderer
{
    public static string Render(ChatPrompt prompt, IEnumerable<AiChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages.ToList();
        if (list.Count == 0) throw new ArgumentException("the conversation has no messages", nameof(messages));
        if (prompt.Template is not { } template)
        {
            if (options?.Tools is { Count: > 0 })
                throw new NotSupportedException(
                    $"tools need a chat template; this model directory only has a {PromptTemplate.FileName}");
            return prompt.Render(list.Select(m => new TurnMessage(m.Role.Value, TextOf(m))).ToList());
        }
        var values = new List<object?>();
        foreach (var m in list) AddMessage(values, m);
        var tools = ToolValues(options?.Tools);
        Dictionary<string, object?>? extra = null;
        if (options?.AdditionalProperties is { Count: > 0 } props)
        {
            extra = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, value) in props) extra[key] = ToTemplateValue(value);
        }
        return template.RenderValues(values, addGenerationPrompt: true, tools, extra);
    }

    private static void AddMessage(List<object?> values, AiChatMessage m)
    {
        var results = m.Contents.OfType<FunctionResultContent>().ToList();
        foreach (var r in results)
        {
            var tool = JinjaValue.NewDict();
            tool["role"] = "tool";
            tool["tool_call_id"] = r.CallId;
            tool["content"] = r.Result switch
            {
                null => "",
                string s => s,
                // Function invocation hands back results as JSON; a JSON string is the text itself.
                JsonElement { ValueKind: JsonValueKind.String } e => e.GetString()!,
                _ => JsonSerializer.Serialize(r.Result, AIJsonUtilities.DefaultOptions),
            };
            values.Add(tool);
        }
        var calls = m.Contents.OfType<FunctionCallContent>().ToList();
        string text = TextOf(m);
        // A message holding only function results has been rendered as the tool messages above.
        if (results.Count > 0 && calls.Count == 0 && text.Length == 0) return;
        var d = JinjaValue.NewDict();
        d["role"] = m.Role.Value;
        d["content"] = text;
        var reasoning = string.Concat(m.Contents.OfType<TextReasoningContent>().Select(r => r.Text));
        if (reasoning.Length > 0) d["reasoning_content"] = reasoning;
        if (calls.Count > 0)
        {
            var toolCalls = new List<object?>();
            foreach (var c in calls)
            {
                var function = JinjaValue.NewDict();
                function["name"] = c.Name;
                function["arguments"] = ToTemplateValue(c.Arguments ?? new Dictionary<string, object?>());
                var call = JinjaValue.NewDict();
                call["type"] = "function";
                call["id"] = c.CallId;
                call["function"] = function;
                toolCalls.Add(call);
            }
            d["tool_calls"] = toolCalls;
        }
        values.Add(d);
    }

    /// <summary>The tools as the OpenAI function schema the templates iterate over; null when none.</summary>
    private static List<object?>? ToolValues(IList<AITool>? tools)
    {
        if (tools is not { Count: > 0 }) return null;
        var list = new List<object?>();
        foreach (var tool in tools)
        {
            if (tool is not AIFunctionDeclaration f)
                throw new NotSupportedException(
                    $"tool '{tool.Name}' is a {tool.GetType().Name}; only functions (AIFunctionDeclaration) can be " +
                    "rendered into a chat template");
            var node = new JsonObject
            {
                ["type"] = "function",
                ["function"] = new JsonObject
                {
                    ["name"] = f.Name,
                    ["description"] = f.Description,
                    ["parameters"] = JsonNode.Parse(f.JsonSchema.GetRawText()),
                },
            };
            list.Add(JinjaJson.FromJson(node));
        }
        return list;
    }

    /// <summary>Any .NET value (JsonElement, dictionaries, primitives) as a template value, through JSON.</summary>
    private static object? ToTemplateValue(object? value) => value switch
    {
        null => null,
        string or bool => value,
        _ => JinjaJson.FromJson(JsonSerializer.SerializeToNode(value, AIJsonUtilities.DefaultOptions)),
    };

    private static string TextOf(AiChatMessage m)
    {
        var sb = new StringBuilder();
        foreach (var c in m.Contents)
            if (c is TextContent t) sb.Append(t.Text);
        return sb.ToString();
    }
}
