using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace NativeReasoner.Server;

/// <summary>
/// Reads a <c>POST /v1/chat/completions</c> body into the chat client's conversation and options: messages
/// (system/developer, user, assistant with reasoning_content and tool_calls, tool results), tools and tool_choice,
/// reasoning_effort, chat_template_kwargs (extra template variables such as enable_thinking) and the shared fields
/// of <see cref="GenerationRequest.ReadCommon"/>. Every refusal names the field.
/// </summary>
internal static class ChatCompletionRequest
{
    public static GenerationRequest Parse(JsonElement root, NativeReasonerServerOptions limits, string servedModel)
    {
        var (options, stream, includeUsage) = GenerationRequest.ReadCommon(root, limits, servedModel);
        var messages = ReadMessages(root);
        options.Tools = ReadTools(root);
        options.ToolMode = ReadToolChoice(root);
        if (JsonFields.String(root, "reasoning_effort") is { } effort)
            options.Reasoning = new ReasoningOptions { Effort = Effort(effort) };
        if (JsonFields.Object(root, "chat_template_kwargs") is { } kwargs)
        {
            options.AdditionalProperties = new AdditionalPropertiesDictionary();
            foreach (var p in kwargs.EnumerateObject()) options.AdditionalProperties[p.Name] = TemplateValue(p.Value);
        }
        return new GenerationRequest(messages, options, stream, includeUsage);
    }

    private static ReasoningEffort Effort(string effort) => effort switch
    {
        "none" => ReasoningEffort.None,
        "minimal" or "low" => ReasoningEffort.Low,
        "medium" => ReasoningEffort.Medium,
        "high" => ReasoningEffort.High,
        "xhigh" => ReasoningEffort.ExtraHigh,
        _ => throw OpenAIRequestException.BadField("reasoning_effort",
            $"must be one of none, minimal, low, medium, high, xhigh; got '{effort}'"),
    };

    /// <summary>Booleans and strings as themselves (the template tests them), anything else as JSON.</summary>
    private static object? TemplateValue(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Null => null,
        _ => v.Clone(),
    };

    private static List<AiChatMessage> ReadMessages(JsonElement root)
    {
        var array = JsonFields.Array(root, "messages")
                    ?? throw OpenAIRequestException.BadField("messages", "is required (an array of messages)");
        var list = new List<AiChatMessage>();
        int i = 0;
        foreach (var m in array.EnumerateArray())
        {
            string path = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw JsonFields.Wrong(path, "an object", m);
            list.Add(ReadMessage(m, path));
        }
        if (list.Count == 0) throw OpenAIRequestException.BadField("messages", "must hold at least one message");
        return list;
    }

    private static AiChatMessage ReadMessage(JsonElement m, string path)
    {
        var role = JsonFields.RequiredString(m, "role", path);
        var text = ReadContent(m, path + ".content");
        switch (role)
        {
            case "system" or "developer":
                return new AiChatMessage(ChatRole.System, text ?? "");
            case "user":
                return new AiChatMessage(ChatRole.User, text ?? "");
            case "tool":
                {
                    var callId = JsonFields.RequiredString(m, "tool_call_id", path);
                    return new AiChatMessage(ChatRole.Tool, [new FunctionResultContent(callId, text ?? "")]);
                }
            case "assistant":
                {
                    var contents = new List<AIContent>();
                    if (JsonFields.String(m, "reasoning_content", path) is { Length: > 0 } reasoning)
                        contents.Add(new TextReasoningContent(reasoning));
                    if (text is { Length: > 0 }) contents.Add(new TextContent(text));
                    if (JsonFields.Array(m, "tool_calls", path) is { } calls)
                    {
                        int j = 0;
                        foreach (var c in calls.EnumerateArray())
                            contents.Add(ReadToolCall(c, $"{path}.tool_calls[{j++}]"));
                    }
                    return new AiChatMessage(ChatRole.Assistant, contents);
                }
            default:
                throw OpenAIRequestException.BadField(path + ".role",
                    $"must be one of system, developer, user, assistant, tool; got '{role}'");
        }
    }

    /// <summary>A string, or an array of text parts (<c>{"type": "text", "text": ...}</c>), or null.</summary>
    private static string? ReadContent(JsonElement m, string path)
    {
        if (JsonFields.Get(m, "content") is not { } content) return null;
        if (content.ValueKind == JsonValueKind.String) return content.GetString();
        if (content.ValueKind != JsonValueKind.Array)
            throw JsonFields.Wrong(path, "a string or an array of parts", content);
        var sb = new StringBuilder();
        int i = 0;
        foreach (var part in content.EnumerateArray())
        {
            string partPath = $"{path}[{i++}]";
            if (part.ValueKind != JsonValueKind.Object) throw JsonFields.Wrong(partPath, "an object", part);
            var type = JsonFields.RequiredString(part, "type", partPath);
            if (type != "text")
                throw OpenAIRequestException.BadField(partPath + ".type",
                    $"only text parts are supported, got '{type}'");
            sb.Append(JsonFields.RequiredString(part, "text", partPath));
        }
        return sb.ToString();
    }

    private static FunctionCallContent ReadToolCall(JsonElement c, string path)
    {
        if (c.ValueKind != JsonValueKind.Object) throw JsonFields.Wrong(path, "an object", c);
        var id = JsonFields.RequiredString(c, "id", path);
        var function = JsonFields.Object(c, "function", path)
                       ?? throw OpenAIRequestException.BadField(path + ".function", "is required");
        var name = JsonFields.RequiredString(function, "name", path + ".function");
        var argumentsText = JsonFields.String(function, "arguments", path + ".function") ?? "{}";
        Dictionary<string, object?> arguments;
        try
        {
            using var doc = JsonDocument.Parse(argumentsText);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException("not an object");
            arguments = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        }
        catch (JsonException)
        {
            throw OpenAIRequestException.BadField(path + ".function.arguments", "must be a JSON object in a string");
        }
        return new FunctionCallContent(id, name, arguments);
    }

    private static List<AITool>? ReadTools(JsonElement root)
    {
        if (JsonFields.Array(root, "tools") is not { } tools) return null;
        var list = new List<AITool>();
        int i = 0;
        foreach (var t in tools.EnumerateArray())
        {
            string path = $"tools[{i++}]";
            if (t.ValueKind != JsonValueKind.Object) throw JsonFields.Wrong(path, "an object", t);
            var type = JsonFields.RequiredString(t, "type", path);
            if (type != "function")
                throw OpenAIRequestException.BadField(path + ".type",
                    $"only function tools are supported, got '{type}'");
            var f = JsonFields.Object(t, "function", path)
                    ?? throw OpenAIRequestException.BadField(path + ".function", "is required");
            var name = JsonFields.RequiredString(f, "name", path + ".function");
            var description = JsonFields.String(f, "description", path + ".function");
            var parameters = JsonFields.Object(f, "parameters", path + ".function")?.Clone()
                             ?? JsonDocument.Parse("""{"type": "object", "properties": {}}""").RootElement;
            list.Add(AIFunctionFactory.CreateDeclaration(name, description, parameters));
        }
        return list.Count > 0 ? list : null;
    }

    private static ChatToolMode? ReadToolChoice(JsonElement root)
    {
        if (JsonFields.Get(root, "tool_choice") is not { } choice) return null;
        if (choice.ValueKind == JsonValueKind.String)
            return choice.GetString() switch
            {
                "none" => ChatToolMode.None,
                "auto" => ChatToolMode.Auto,
                "required" => ChatToolMode.RequireAny,
                var s => throw OpenAIRequestException.BadField("tool_choice",
                    $"must be none, auto, required or a function object; got '{s}'"),
            };
        if (choice.ValueKind != JsonValueKind.Object)
            throw JsonFields.Wrong("tool_choice", "a string or an object", choice);
        var function = JsonFields.Object(choice, "function", "tool_choice")
                       ?? throw OpenAIRequestException.BadField("tool_choice.function", "is required");
        return ChatToolMode.RequireSpecific(JsonFields.RequiredString(function, "name", "tool_choice.function"));
    }
}
